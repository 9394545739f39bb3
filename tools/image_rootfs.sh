#!/bin/bash
# Rebuild docker/Dockerfile's final stage in a folder from Debian's mirror, and measure it.
#
#   sudo tools/image_rootfs.sh [ROOTFS]      # default /tmp/fastkernel-rootfs; takes minutes
#
# For machines without a Docker daemon or a registry to pull debian:bookworm-slim from (the
# one the figures in docs/remote.md come from): the base is what Debian's slim image is made
# of (debootstrap --variant=minbase, then the slim trimming of debuerreotype, which builds the
# official image), and the final stage's steps run in a chroot. The build stage (`pip wheel`)
# runs on this host with Debian's /usr/bin/python3, which must be Debian 12's Python 3.11 as
# in the image. Then it prints the folder's size and runs tools/image_measure.py (the kernel
# started inside the chroot as uid 1000: idle RSS, and the entry point in launcher mode).
#
# Needs root, debootstrap, unshare (util-linux), network access to the Debian mirror ($MIRROR)
# and to PyPI, and the repository's .venv (`make .venv/.test-installed`) for the measuring
# client. Not part of `make test`. tests/unit/test_image_recipe.py checks that this script and
# the Dockerfile install the same packages in the same way; change both together.
set -euo pipefail

ROOTFS=${1:-/tmp/fastkernel-rootfs}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
REPO=$(cd "$(dirname "$0")/.." && pwd)

# The Dockerfile's final stage, step for step (the test compares these with docker/Dockerfile).
APT_PACKAGES="python3 python3-venv tini"
VENV=/opt/fastkernel
PIP_INSTALL='pip install --no-cache-dir --no-index --find-links /wheels "fastkernel[remote]"'
PIP_UNINSTALL='pip uninstall --yes pip setuptools'
USERADD='useradd --create-home --uid 1000 --gid users --shell /bin/bash jovyan'

[ "$(id -u)" = 0 ] || { echo "image_rootfs.sh: run as root (debootstrap, chroot)" >&2; exit 1; }
[ ! -e "$ROOTFS" ] || { echo "image_rootfs.sh: $ROOTFS exists; remove it first" >&2; exit 1; }
WORK=$(mktemp -d /tmp/fastkernel-image-build.XXXXXX)  # the build stage's wheels; removed on exit

cleanup() {
    # Whatever is still mounted inside the rootfs, deepest first.
    for mountpoint in "$ROOTFS/wheels" "$ROOTFS/proc"; do
        if mountpoint -q "$mountpoint"; then umount "$mountpoint"; fi
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

apparent_mib() { du -sx --apparent-size --block-size=1K "$1" | awk '{printf "%.1f", $1/1024}'; }
in_root() { chroot "$ROOTFS" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"; }

echo "== debootstrap --variant=minbase $SUITE"
debootstrap --variant=minbase ${DEBOOTSTRAP_CACHE:+--cache-dir="$DEBOOTSTRAP_CACHE"} "$SUITE" "$ROOTFS" "$MIRROR" >"$WORK/debootstrap.log" \
    || { tail -20 "$WORK/debootstrap.log" >&2; exit 1; }

echo "== the slim image's trimming (debuerreotype's minimizing config and slimify)"
# The official image's sources: the release, its updates and security.
rm -f "$ROOTFS/etc/apt/sources.list"
cat >"$ROOTFS/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${MIRROR%/debian}/debian-security
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
# No services start during installs; apt keeps no .deb nor package caches, no translations.
printf '#!/bin/sh\nexit 101\n' >"$ROOTFS/usr/sbin/policy-rc.d"
chmod 0755 "$ROOTFS/usr/sbin/policy-rc.d"
echo 'force-unsafe-io' >"$ROOTFS/etc/dpkg/dpkg.cfg.d/docker-apt-speedup"
cat >"$ROOTFS/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
echo 'Acquire::GzipIndexes "true";' >"$ROOTFS/etc/apt/apt.conf.d/docker-gzip-indexes"
echo 'Acquire::Languages "none";' >"$ROOTFS/etc/apt/apt.conf.d/docker-no-languages"
echo 'Apt::AutoRemove::SuggestsImportant "false";' >"$ROOTFS/etc/apt/apt.conf.d/docker-autoremove-suggests"
# The slim variant: docs (but copyrights), man and info pages, translations are not installed
# (dpkg path-exclude, so later installs skip them too) and are removed from the base.
SLIM_EXCLUDE=(/usr/share/doc/ /usr/share/groff/ /usr/share/info/ /usr/share/linda/
    /usr/share/lintian/overrides/ /usr/share/locale/ /usr/share/man/)
SLIM_INCLUDE=('/usr/share/doc/*/copyright' /usr/share/locale/locale.alias /usr/share/locale/languages
    /usr/share/locale/all_languages '/usr/share/locale/currency/*' '/usr/share/locale/l10n/*')
{
    echo '# The "slim" variant: files containers do not need are not installed.'
    for dir in "${SLIM_EXCLUDE[@]}"; do echo "path-exclude $dir*"; done
    for pattern in "${SLIM_INCLUDE[@]}"; do echo "path-include $pattern"; done
} >"$ROOTFS/etc/dpkg/dpkg.cfg.d/docker"
keep=()  # the includes, and directories (removed below once empty)
for pattern in "${SLIM_INCLUDE[@]}"; do keep+=(-path "$pattern" -o); done
for dir in "${SLIM_EXCLUDE[@]}"; do
    [ -d "$ROOTFS$dir" ] || continue
    in_root find "$dir" -mindepth 1 -depth -not \( "${keep[@]}" -type d \) -delete
    in_root find "$dir" -mindepth 1 -depth -type d -empty -delete
done
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/var/cache/apt/archives/*.deb
BASE_MIB=$(apparent_mib "$ROOTFS")

echo "== build stage on this host: pip wheel .[remote] (PyPI only, as in a docker build)"
mkdir -p "$WORK/src"
cp -r "$REPO/pyproject.toml" "$REPO/README.md" "$REPO/src" "$WORK/src/"
/usr/bin/python3 -m venv "$WORK/build"
(cd "$WORK/src" && env -u PIP_FIND_LINKS PIP_CONFIG_FILE=/dev/null \
    "$WORK/build/bin/pip" wheel --quiet --no-cache-dir --wheel-dir "$WORK/wheels" ".[remote]")

echo "== final stage in the chroot"
mount -t proc proc "$ROOTFS/proc"
in_root sh -c "apt-get update -qq && apt-get install -y -qq --no-install-recommends $APT_PACKAGES >/dev/null && rm -rf /var/lib/apt/lists/*"
APT_MIB=$(apparent_mib "$ROOTFS")
mkdir "$ROOTFS/wheels"
mount --bind -o ro "$WORK/wheels" "$ROOTFS/wheels"
in_root sh -c "python3 -m venv $VENV && $VENV/bin/$PIP_INSTALL --quiet && $VENV/bin/$PIP_UNINSTALL --quiet"
umount "$ROOTFS/wheels"
rmdir "$ROOTFS/wheels"
install -m 0755 "$REPO/docker/start-fastkernel.sh" "$ROOTFS/usr/local/bin/start-fastkernel"
in_root $USERADD
umount "$ROOTFS/proc"
# What a container's runtime provides or an image leaves out: logs of the build, resolv.conf.
rm -f "$ROOTFS"/var/log/apt/* "$ROOTFS"/var/log/dpkg.log "$ROOTFS"/var/log/alternatives.log \
    "$ROOTFS"/var/cache/ldconfig/aux-cache
: >"$ROOTFS/etc/resolv.conf"

echo "== size"
echo "python3: $(in_root python3 --version), packages: $(in_root dpkg-query -W -f='.\n' | wc -l)"
echo "apparent: $(apparent_mib "$ROOTFS") MiB (du -sx --apparent-size)"
echo "          the slim base alone $BASE_MIB MiB, with $APT_PACKAGES $APT_MIB MiB"
echo "on disk:  $(du -sx --block-size=1K "$ROOTFS" | awk '{printf "%.1f", $1/1024}') MiB (du -sx)"
echo "venv:     $(apparent_mib "$ROOTFS$VENV") MiB apparent," \
    "of which .pyc $(find "$ROOTFS$VENV" -name '*.pyc' -printf '%s\n' | awk '{s+=$1} END {printf "%.1f", s/1048576}') MiB"
echo "tar:      $(tar -C "$ROOTFS" --numeric-owner -cf - . | wc -c | awk '{printf "%.1f", $1/1048576}') MiB uncompressed," \
    "$(tar -C "$ROOTFS" --numeric-owner -cf - . | gzip -6 | wc -c | awk '{printf "%.1f", $1/1048576}') MiB gzip -6 (a registry's layer size)"

echo "== the kernel in the rootfs"
mount -t proc proc "$ROOTFS/proc"
"$REPO/.venv/bin/python" "$REPO/tools/image_measure.py" "$ROOTFS"
umount "$ROOTFS/proc"
