"""Build and install the fastkernel kernelspec (kernel.json and logos)."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from fastkernel import PROTOCOL_VERSION

DEFAULT_NAME = "fastkernel"
DEFAULT_DISPLAY_NAME = "Python 3 (fastkernel)"
RESOURCES = Path(__file__).parent / "resources"


def kernel_json(
    python: str = sys.executable, display_name: str = DEFAULT_DISPLAY_NAME, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """The kernel.json content for a kernel that runs ``python -m fastkernel``."""
    spec: dict[str, Any] = {
        "argv": [python, "-m", "fastkernel", "-f", "{connection_file}"],
        "display_name": display_name,
        "language": "python",
        "interrupt_mode": "signal",
        "kernel_protocol_version": PROTOCOL_VERSION,
        # jupyter_client 8.9+ provisions CurveZMQ keys for kernels that declare this
        # (transport_encryption "auto" or "required"; see docs/security.md).
        "metadata": {"debugger": True, "supported_encryption": ["curve"]},
    }
    if env:
        spec["env"] = env
    return spec


def write_spec_dir(target: Path, spec: dict[str, Any]) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    (target / "kernel.json").write_text(json.dumps(spec, indent=1) + "\n", encoding="utf-8")
    for logo in ("logo-32x32.png", "logo-64x64.png"):
        shutil.copy(RESOURCES / logo, target / logo)
    return target


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m fastkernel install",
        description="Install the fastkernel kernelspec so that Jupyter frontends can start it. "
        "The spec runs the Python interpreter that runs this command.",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--user", action="store_true", help="install for the current user (~/.local/share/jupyter)"
    )
    where.add_argument("--sys-prefix", action="store_true", help=f"install into sys.prefix ({sys.prefix})")
    where.add_argument("--prefix", metavar="P", help="install into the prefix P (P/share/jupyter/kernels)")
    p.add_argument("--name", default=DEFAULT_NAME, help=f"kernelspec name (default {DEFAULT_NAME!r})")
    p.add_argument(
        "--display-name", default=DEFAULT_DISPLAY_NAME, help="name shown in the frontend's launcher"
    )
    p.add_argument(
        "--env",
        nargs=2,
        action="append",
        metavar=("K", "V"),
        default=[],
        help="set environment variable K to V in the kernel (repeatable)",
    )
    _remote_options(p)
    return p


def _remote_options(p: argparse.ArgumentParser) -> None:
    remote = p.add_argument_group(
        "remote kernels",
        "A kernelspec for a gateway_provisioners provisioner (jupyter_server, Enterprise Gateway), "
        "install it where the gateway runs. See docs/remote.md.",
    )
    kind = remote.add_mutually_exclusive_group()
    kind.add_argument("--ssh-hosts", nargs="+", metavar="HOST", help="kernels run over SSH on these hosts")
    kind.add_argument("--kubernetes-image", metavar="IMAGE", help="kernels run in pods of this image")
    kind.add_argument("--docker-image", metavar="IMAGE", help="kernels run in containers of this image")
    kind.add_argument("--yarn", action="store_true", help="kernels run in a YARN cluster (spark-submit)")
    remote.add_argument(
        "--remote-python",
        metavar="PATH",
        help="the Python with fastkernel on the SSH/YARN hosts (default: this one, same path there)",
    )
    remote.add_argument("--yarn-endpoint", metavar="URL", help="the YARN ResourceManager's REST URL")
    remote.add_argument(
        "--spark-home", default="/opt/spark", help="SPARK_HOME for --yarn (default /opt/spark)"
    )


def _remote_kind(args: argparse.Namespace) -> str | None:
    if args.ssh_hosts:
        return "ssh"
    if args.kubernetes_image:
        return "kubernetes"
    if args.docker_image:
        return "docker"
    return "yarn" if args.yarn else None


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    from jupyter_client.kernelspec import KernelSpecManager  # install-time only

    kind = _remote_kind(args)
    name, display_name = args.name, args.display_name
    if kind is not None:
        from fastkernel import remotespec

        name = name if name != DEFAULT_NAME else f"{DEFAULT_NAME}-{kind}"
        if display_name == DEFAULT_DISPLAY_NAME:
            display_name = f"Python 3 (fastkernel, {remotespec.LABELS[kind]})"
    spec = kernel_json(display_name=display_name, env=dict(args.env) or None)
    if kind is not None:
        spec = remotespec.remote_kernel_json(
            spec,
            kind,
            python=args.remote_python or sys.executable,
            hosts=args.ssh_hosts,
            image=args.kubernetes_image or args.docker_image,
            spark_home=args.spark_home,
            yarn_endpoint=args.yarn_endpoint,
        )
    prefix = sys.prefix if args.sys_prefix else args.prefix
    with tempfile.TemporaryDirectory() as tmp:
        source = write_spec_dir(Path(tmp) / name, spec)
        if kind is not None:
            remotespec.write_remote_files(source, kind)
        dest = KernelSpecManager().install_kernel_spec(
            str(source), kernel_name=name, user=args.user, prefix=prefix
        )
    if kind is not None:  # paths inside the spec dir, known once it is installed
        installed = Path(dest) / "kernel.json"
        installed.write_text(remotespec.fill_spec_dir(installed.read_text(encoding="utf-8"), dest))
    print(f"Installed kernelspec {name} in {dest}")
    return 0
