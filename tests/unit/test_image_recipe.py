"""docker/Dockerfile and tools/image_rootfs.sh, which rebuilds its final stage to measure it,
install the same thing in the same way (docs/remote.md, "The kernel image").

Nothing here builds an image: that takes minutes and Debian's mirror (tools/image_rootfs.sh).
"""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "docker" / "Dockerfile"
ROOTFS_SCRIPT = ROOT / "tools" / "image_rootfs.sh"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    found = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, arguments = line.strip().partition(" ")
            found.append((keyword.upper(), " ".join(arguments.split())))
    return found


def final_stage() -> list[tuple[str, str]]:
    steps = instructions(DOCKERFILE.read_text())
    last_from = max(index for index, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


def script_settings() -> dict[str, str]:
    """The script's NAME=value lines at the top level, unquoted as the shell would."""
    settings = {}
    for match in re.finditer(r"^([A-Z_]+)=(\S.*)$", ROOTFS_SCRIPT.read_text(), re.MULTILINE):
        words = shlex.split(match.group(2), comments=True)
        if len(words) == 1:
            settings[match.group(1)] = words[0]
    return settings


def runs() -> list[str]:
    return [arguments for keyword, arguments in final_stage() if keyword == "RUN"]


def image_env() -> dict[str, str]:
    env = {}
    for keyword, arguments in final_stage():
        if keyword == "ENV":
            env.update(word.split("=", 1) for word in shlex.split(arguments))
    return env


def measure_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("image_measure", ROOT / "tools" / "image_measure.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_final_stage_apt_installs_the_scripts_packages() -> None:
    installs = [
        re.search(r"apt-get install -y --no-install-recommends ([a-z0-9. +-]+?) &&", run) for run in runs()
    ]
    (packages,) = [match.group(1).split() for match in installs if match]
    assert packages == script_settings()["APT_PACKAGES"].split()
    assert "tini" in packages


def test_the_venv_is_made_and_filled_as_the_script_does() -> None:
    settings = script_settings()
    venv = settings["VENV"]
    (install,) = [run for run in runs() if "pip install" in run]
    assert f"python3 -m venv {venv} " in install
    assert f"{venv}/bin/{settings['PIP_INSTALL']}" in install
    assert f"{venv}/bin/{settings['PIP_UNINSTALL']}" in install
    assert install.startswith("--mount=type=bind,from=build,source=/wheels,target=/wheels ")


def test_the_user_and_the_entry_point_are_the_scripts() -> None:
    settings = script_settings()
    assert any(run.startswith(settings["USERADD"] + " ") for run in runs())
    steps = final_stage()
    assert ("COPY", "docker/start-fastkernel.sh /usr/local/bin/start-fastkernel") in steps
    assert "/usr/local/bin/start-fastkernel" in ROOTFS_SCRIPT.read_text()
    assert ("USER", "1000:100") in steps
    assert ("ENTRYPOINT", '["tini", "--", "start-fastkernel"]') in steps


def test_the_venvs_python_is_the_one_the_entry_point_runs() -> None:
    # start-fastkernel runs `python -m fastkernel`: the venv's bin comes first on PATH.
    venv = script_settings()["VENV"]
    assert image_env()["PATH"].split(":")[0] == f"{venv}/bin"
    assert "exec python -m fastkernel" in (ROOT / "docker" / "start-fastkernel.sh").read_text()


def test_the_measuring_tool_runs_the_kernel_with_the_images_environment() -> None:
    tool_env = dict(entry.split("=", 1) for entry in measure_tool().IMAGE_ENV)
    assert {name: tool_env.get(name) for name in image_env()} == image_env()
    assert ("WORKDIR", tool_env["HOME"]) in final_stage()
