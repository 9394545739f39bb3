"""The kernel's settings, and the quick way to them for a plain ``-f FILE`` start.

:class:`KernelSettings` holds every option with its default; the traitlets application
(cli.py) takes its trait defaults from here and fills one from the command line and the
config files. A start with no config file and no option but ``-f FILE`` (the kernelspec's own
argv) needs neither, so :func:`quick_settings` reads it without importing traitlets: about a
third of the kernel's start otherwise.
"""

from __future__ import annotations

import os
import sys
from typing import NamedTuple

CONFIG_FILES = ("fastkernel_config.py", "fastkernel_config.json")
_FILE_OPTIONS = ("-f", "--f", "--connection-file")


class KernelSettings(NamedTuple):
    """Every option of the kernel (see docs/configuration.md for what each means)."""

    connection_file: str = ""
    allow_insecure: bool = False
    max_message_bytes: int = 256 * 1024 * 1024
    replay_history: int = 65536
    stream_flush_interval: float = 0.05
    stop_on_error_reply: str = "error"
    output_cache_entries: int = 1000
    output_cache_bytes: int = 512 * 2**20
    capture_fd_output: bool = True
    exit_with_parent: bool = True
    terminate_children: bool = True
    terminate_children_grace: float = 1.0
    output_limit: int = 0
    history_enabled: bool = True
    history_file: str = ""
    history_store_output: bool = False
    history_max_sessions: int = 1000
    history_max_rows: int = 100_000
    max_stream_message: int = 1 << 20
    max_stream_rate: int = 300
    registration_timeout: float = 10.0
    traceback_mode: str = "Context"
    traceback_colors: str = "auto"
    traceback_hide_libraries: bool = False
    log_level: int = 20  # logging.INFO
    # Launcher mode (gateway_provisioners / Enterprise Gateway; transport/launcher.py): on when
    # response_address is given. The kernel binds its own ports and reports them there.
    response_address: str = ""
    kernel_id: str = ""
    public_key: str = ""
    port_range: str = ""
    transport_encryption: str = ""
    ip: str = ""


DEFAULTS = KernelSettings()


def jupyter_config_dirs() -> list[str]:
    """Jupyter's config path (as jupyter_core orders it), without importing jupyter_core."""
    dirs: list[str] = []
    if os.environ.get("JUPYTER_CONFIG_PATH"):
        dirs.extend(p for p in os.environ["JUPYTER_CONFIG_PATH"].split(os.pathsep) if p)
    dirs.append(os.environ.get("JUPYTER_CONFIG_DIR") or os.path.join(os.path.expanduser("~"), ".jupyter"))
    dirs.append(os.path.join(sys.prefix, "etc", "jupyter"))
    dirs.extend(["/usr/local/etc/jupyter", "/etc/jupyter"])
    return dirs


def has_config_file() -> bool:
    """Whether any fastkernel_config.py/.json exists in the config path."""
    return any(os.path.exists(os.path.join(d, name)) for d in jupyter_config_dirs() for name in CONFIG_FILES)


def _connection_file(argv: list[str]) -> str | None:
    """The FILE of ``-f FILE`` / ``--f=FILE`` / ``--connection-file FILE``, if that is all of ``argv``."""
    if len(argv) == 2 and argv[0] in _FILE_OPTIONS and not argv[1].startswith("-"):
        return argv[1]
    if len(argv) == 1 and "=" in argv[0]:
        option, value = argv[0].split("=", 1)
        if option in _FILE_OPTIONS and value:
            return value
    return None


def quick_settings(argv: list[str]) -> KernelSettings | None:
    """Settings for ``argv`` when it is only a connection file option and no config file exists.

    None means "ask the full command line parser" (cli.py): any other option, ``--help``, no
    ``-f`` at all (the kernel makes its own connection file), or a config file to read.
    """
    path = _connection_file(argv)
    if path is None or has_config_file():
        return None
    return DEFAULTS._replace(connection_file=path)
