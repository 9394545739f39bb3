"""Kernelspecs for remote kernels: gateway_provisioners' provisioners (and Enterprise Gateway's).

Each spec names its provisioner in ``metadata.kernel_provisioner`` and passes the launcher
arguments the provisioners substitute (``{kernel_id}``, ``{response_address}``, ...) to
``python -m fastkernel`` itself (launcher mode, transport/launcher.py):

- ``ssh``: the distributed provisioner runs the argv over SSH on one of ``remote_hosts``;
- ``kubernetes`` / ``docker``: the provisioner runs gateway_provisioners' own launch script (copied
  into the spec's ``scripts`` directory) on the gateway, which starts a pod or container of the
  image; the image's entry point (docker/start-fastkernel.sh) runs fastkernel with the launcher
  arguments it is given in the environment;
- ``yarn``: the spec's ``bin/run.sh`` submits ``launch_fastkernel.py`` with spark-submit in
  cluster mode, and the YARN provisioner finds the node it runs on.

See docs/remote.md for worked examples.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path
from typing import Any

PROVISIONERS = {
    "ssh": "distributed-provisioner",
    "kubernetes": "kubernetes-provisioner",
    "docker": "docker-provisioner",
    "yarn": "yarn-provisioner",
}
LABELS = {"ssh": "SSH", "kubernetes": "Kubernetes", "docker": "Docker", "yarn": "YARN"}
SPEC_DIR = "@SPEC_DIR@"  # replaced by the installed spec's directory (kernelspec.main)
LAUNCH_ARGS = [
    "--kernel-id",
    "{kernel_id}",
    "--response-address",
    "{response_address}",
    "--public-key",
    "{public_key}",
    "--port-range",
    "{port_range}",
    # Substituted by gateway_provisioners 0.5+ ("auto", "required" or empty); an older gateway
    # leaves the placeholder, which the kernel reads as off.
    "--transport-encryption",
    "{transport_encryption}",
]
CONTAINER_SCRIPTS = {"kubernetes": "launch_kubernetes.py", "docker": "launch_docker.py"}

RUN_SH = """#!/usr/bin/env bash
# Submit fastkernel to YARN in cluster mode; the YARN provisioner finds the node it runs on.
# SPARK_HOME and SPARK_OPTS come from kernel.json's env (edit them there).
if [ -z "${SPARK_HOME}" ] || [ ! -x "${SPARK_HOME}/bin/spark-submit" ]; then
  echo "SPARK_HOME (${SPARK_HOME}) has no bin/spark-submit: set it in kernel.json's env" >&2
  exit 1
fi
exec "${SPARK_HOME}/bin/spark-submit" ${SPARK_OPTS} "$(dirname "$0")/../scripts/launch_fastkernel.py" "$@"
"""
LAUNCH_FASTKERNEL_PY = """# spark-submit runs a Python file: this one is `python -m fastkernel ARGS`.
from fastkernel.app import main

main()
"""


def remote_kernel_json(
    base: dict[str, Any],
    kind: str,
    *,
    python: str,
    hosts: list[str] | None = None,
    image: str | None = None,
    spark_home: str = "/opt/spark",
    yarn_endpoint: str | None = None,
) -> dict[str, Any]:
    """``base`` (kernelspec.kernel_json) turned into a spec for ``kind``'s provisioner."""
    spec = dict(base)
    config: dict[str, Any] = {}
    if kind == "ssh":
        config["remote_hosts"] = list(hosts or [])
        spec["argv"] = [python, "-m", "fastkernel", *LAUNCH_ARGS]
    elif kind in CONTAINER_SCRIPTS:
        config["image_name"] = image
        # The launch script runs on the gateway (this Python); fastkernel runs in the image.
        spec["argv"] = [python, f"{SPEC_DIR}/scripts/{CONTAINER_SCRIPTS[kind]}", *LAUNCH_ARGS]
    elif kind == "yarn":
        if yarn_endpoint:
            config["yarn_endpoint"] = yarn_endpoint
        spec["argv"] = [f"{SPEC_DIR}/bin/run.sh", *LAUNCH_ARGS]
        spec["env"] = {
            **spec.get("env", {}),
            "SPARK_HOME": spark_home,
            "PYSPARK_PYTHON": python,
            "SPARK_OPTS": "--master yarn --deploy-mode cluster --name ${KERNEL_ID:-fastkernel} "
            "--conf spark.yarn.submit.waitAppCompletion=false "
            f"--conf spark.yarn.appMasterEnv.PYSPARK_PYTHON={python}",
        }
    else:
        raise ValueError(f"unknown remote kernel kind {kind!r}")
    metadata = dict(spec.get("metadata", {}))
    metadata["kernel_provisioner"] = {"provisioner_name": PROVISIONERS[kind], "config": config}
    spec["metadata"] = metadata
    spec["interrupt_mode"] = "signal"  # the provisioner sends it through the comm port
    return spec


def write_remote_files(target: Path, kind: str) -> None:
    """The files a ``kind`` spec runs besides fastkernel: launch scripts, run.sh."""
    if kind in CONTAINER_SCRIPTS:
        source = _gateway_launchers() / kind / "scripts"
        shutil.copytree(source, target / "scripts", ignore=shutil.ignore_patterns("__pycache__"))
    elif kind == "yarn":
        (target / "bin").mkdir(parents=True, exist_ok=True)
        (target / "scripts").mkdir(parents=True, exist_ok=True)
        run_sh = target / "bin" / "run.sh"
        run_sh.write_text(RUN_SH, encoding="utf-8")
        run_sh.chmod(run_sh.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        (target / "scripts" / "launch_fastkernel.py").write_text(LAUNCH_FASTKERNEL_PY, encoding="utf-8")


def _gateway_launchers() -> Path:
    """gateway_provisioners' kernel-launchers directory (its container launch scripts)."""
    try:
        import gateway_provisioners
    except ImportError:
        raise SystemExit(
            "error: Kubernetes and Docker kernelspecs run gateway_provisioners' launch scripts: "
            "install it where the gateway runs (pip install gateway_provisioners), then retry"
        ) from None
    return Path(os.path.dirname(gateway_provisioners.__file__)) / "kernel-launchers"


def fill_spec_dir(spec_json: str, installed: str) -> str:
    """kernel.json's text with the installed directory in place of SPEC_DIR."""
    return spec_json.replace(SPEC_DIR, installed)
