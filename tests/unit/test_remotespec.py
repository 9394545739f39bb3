"""The remote kernelspecs `python -m fastkernel install --ssh-hosts/--kubernetes-image/...` writes."""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.kernelspec import KernelSpec

from fastkernel.cli import parse_settings
from fastkernel.kernelspec import main

LAUNCH_PLACEHOLDERS = [
    "{kernel_id}",
    "{response_address}",
    "{public_key}",
    "{port_range}",
    "{transport_encryption}",
]


def install(tmp_path: Path, *options: str) -> tuple[Path, dict[str, Any]]:
    assert main(["--prefix", str(tmp_path), *options]) == 0
    (spec_dir,) = (tmp_path / "share" / "jupyter" / "kernels").iterdir()
    return spec_dir, json.loads((spec_dir / "kernel.json").read_text())


def substitute(argv: list[str], **values: str) -> list[str]:
    """As gateway_provisioners' RemoteProvisionerBase.pre_launch fills a kernelspec's argv."""
    return [re.sub(r"{([A-Za-z0-9_]+)}", lambda m: values.get(m.group(1), m.group()), arg) for arg in argv]


def test_ssh_spec_runs_fastkernel_itself_on_the_hosts(tmp_path: Path) -> None:
    spec_dir, spec = install(
        tmp_path, "--ssh-hosts", "node1", "node2", "--remote-python", "/opt/py/bin/python"
    )
    assert spec_dir.name == "fastkernel-ssh"
    assert spec["display_name"] == "Python 3 (fastkernel, SSH)"
    assert spec["metadata"]["kernel_provisioner"] == {
        "provisioner_name": "distributed-provisioner",
        "config": {"remote_hosts": ["node1", "node2"]},
    }
    assert spec["argv"][:3] == ["/opt/py/bin/python", "-m", "fastkernel"]
    assert [arg for arg in spec["argv"] if arg.startswith("{")] == LAUNCH_PLACEHOLDERS
    assert "curve" in KernelSpec(**spec).metadata["supported_encryption"]
    assert spec["interrupt_mode"] == "signal"  # the provisioner sends it to the comm port


@pytest.mark.parametrize("encryption", ["", "required"])
def test_the_ssh_command_line_parses_as_the_kernel_reads_it(tmp_path: Path, encryption: str) -> None:
    # The distributed provisioner joins the argv into one unquoted shell command.
    _, spec = install(tmp_path, "--ssh-hosts", "node1")
    argv = substitute(
        spec["argv"],
        kernel_id="k-1",
        response_address="10.0.0.5:8877",
        public_key="MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC+/=",
        port_range="40000..41000",
        transport_encryption=encryption,
    )
    settings = parse_settings(shlex.split(" ".join(argv))[3:])
    assert (settings.kernel_id, settings.response_address) == ("k-1", "10.0.0.5:8877")
    assert settings.public_key == "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC+/="
    assert (settings.port_range, settings.transport_encryption) == ("40000..41000", encryption)


@pytest.mark.parametrize(
    ("option", "kind", "script"),
    [
        ("--kubernetes-image", "kubernetes", "launch_kubernetes.py"),
        ("--docker-image", "docker", "launch_docker.py"),
    ],
)
def test_container_specs_run_the_gateways_launch_script_with_the_image(
    tmp_path: Path, option: str, kind: str, script: str
) -> None:
    spec_dir, spec = install(tmp_path, option, "example.org/fastkernel:1")
    assert spec["metadata"]["kernel_provisioner"] == {
        "provisioner_name": f"{kind}-provisioner",
        "config": {"image_name": "example.org/fastkernel:1"},
    }
    assert spec["argv"][1] == str(spec_dir / "scripts" / script)
    assert (spec_dir / "scripts" / script).is_file()
    assert [arg for arg in spec["argv"] if arg.startswith("{")] == LAUNCH_PLACEHOLDERS


def test_yarn_spec_submits_fastkernel_with_spark(tmp_path: Path) -> None:
    spec_dir, spec = install(tmp_path, "--yarn", "--yarn-endpoint", "http://rm:8088/ws/v1/cluster")
    assert spec["metadata"]["kernel_provisioner"] == {
        "provisioner_name": "yarn-provisioner",
        "config": {"yarn_endpoint": "http://rm:8088/ws/v1/cluster"},
    }
    run_sh = spec_dir / "bin" / "run.sh"
    assert spec["argv"][0] == str(run_sh) and os.access(run_sh, os.X_OK)
    assert (spec_dir / "scripts" / "launch_fastkernel.py").is_file()
    assert spec["env"]["SPARK_HOME"] == "/opt/spark"
    assert "--master yarn --deploy-mode cluster" in spec["env"]["SPARK_OPTS"]


def test_one_remote_kind_at_a_time(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--prefix", str(tmp_path), "--ssh-hosts", "a", "--docker-image", "b"])
    assert "not allowed with argument" in capsys.readouterr().err


def test_enterprise_gateways_option_spellings_are_read() -> None:
    # Enterprise Gateway 3.3's kernelspecs: --RemoteProcessProxy.kernel-id {kernel_id}, ...
    settings = parse_settings(
        ["--RemoteProcessProxy.kernel-id", "k-2", "--RemoteProcessProxy.response-address", "10.0.0.5:8877"]
        + ["--RemoteProcessProxy.public-key", "MIGf", "--RemoteProcessProxy.port-range", "0..0"]
        + ["--RemoteProcessProxy.spark-context-initialization-mode", "none"]
    )
    assert (settings.kernel_id, settings.response_address, settings.public_key) == (
        "k-2",
        "10.0.0.5:8877",
        "MIGf",
    )
    assert settings.port_range == "0..0"
