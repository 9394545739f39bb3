"""Settings: the quick `-f FILE` start and the full command line agree on every option."""

from __future__ import annotations

from pathlib import Path

import pytest

from fastkernel.cli import FastKernelApp, parse_settings
from fastkernel.settings import DEFAULTS, KernelSettings, quick_settings


@pytest.fixture(autouse=True)
def config_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Jupyter config path of our own (none of the machine's config files)."""
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("JUPYTER_CONFIG_PATH", str(tmp_path / "config-path"))
    monkeypatch.setattr("fastkernel.settings.jupyter_config_dirs", lambda: [str(tmp_path / "config")])
    return tmp_path / "config"


@pytest.mark.parametrize(
    "argv", [["-f", "k.json"], ["--f", "k.json"], ["-f=k.json"], ["--f=k.json"], ["--connection-file=k.json"]]
)
def test_a_connection_file_alone_is_read_without_traitlets(argv: list[str]) -> None:
    assert quick_settings(argv) == DEFAULTS._replace(connection_file="k.json")


@pytest.mark.parametrize(
    "argv",
    [[], ["--debug"], ["-f", "k.json", "--debug"], ["-f"], ["--help"], ["-f", "--output-limit=5"], ["--f="]],
)
def test_anything_else_goes_to_the_full_command_line(argv: list[str]) -> None:
    assert quick_settings(argv) is None


@pytest.mark.parametrize("name", ["fastkernel_config.py", "fastkernel_config.json"])
def test_a_config_file_goes_to_the_full_command_line(config_dirs: Path, name: str) -> None:
    config_dirs.mkdir()
    (config_dirs / name).write_text("")
    assert quick_settings(["-f", "k.json"]) is None


def test_both_ways_give_the_same_settings_for_a_plain_start() -> None:
    assert parse_settings(["-f", "k.json"]) == quick_settings(["-f", "k.json"])


def test_every_option_has_a_trait_with_the_same_default() -> None:
    app = FastKernelApp()
    for name in KernelSettings._fields:
        if name != "log_level":
            assert getattr(app, name) == getattr(DEFAULTS, name), name


def test_options_and_config_files_reach_the_settings(config_dirs: Path) -> None:
    config_dirs.mkdir()
    (config_dirs / "fastkernel_config.py").write_text("c.FastKernelApp.output_limit = 123\n")
    settings = parse_settings(["-f", "k.json", "--max-stream-rate=7", "--debug"])
    assert (settings.output_limit, settings.max_stream_rate, settings.log_level) == (123, 7, 10)
