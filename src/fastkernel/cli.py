"""The command line and config files, for any start but the plain ``-f FILE`` one (settings.py).

A traitlets Application: ``--help``, aliases and flags, ``fastkernel_config.py`` in the Jupyter
config path; it turns them into :class:`~fastkernel.settings.KernelSettings`.
"""

from __future__ import annotations

import logging
from typing import Any

from traitlets import Bool, CaselessStrEnum, Float, Integer, Unicode
from traitlets.config import Application

from fastkernel import __version__
from fastkernel.logs import log
from fastkernel.settings import DEFAULTS, KernelSettings, jupyter_config_dirs


class FastKernelApp(Application):
    """Run a fastkernel process for the connection file given with ``-f``."""

    name = "fastkernel"
    version = __version__
    description = """fastkernel: a fast, hardened Jupyter kernel for Python.

    Frontends start it as `python -m fastkernel -f CONNECTION_FILE`. Without -f it creates a
    connection file in the Jupyter runtime directory and logs how to connect to it.
    Install its kernelspec with `python -m fastkernel install --help`.
    Configuration also comes from fastkernel_config.py in the Jupyter config path."""

    examples = (
        "python -m fastkernel -f kernel-1234.json    # serve a frontend's connection file\n"
        "python -m fastkernel                        # make a connection file, log how to connect\n"
        "python -m fastkernel install --user         # install the kernelspec for this user\n"
        "python -m fastkernel install --help         # --sys-prefix, --prefix, --name, --env K V, ...\n"
        "python -m fastkernel --kernel-id ID --response-address IP:PORT --public-key KEY \\\n"
        "    --port-range 0..0 --transport-encryption required   # launcher mode (docs/remote.md)"
    )

    connection_file = Unicode("", help="JSON connection file written by the frontend.").tag(config=True)
    allow_insecure = Bool(
        DEFAULTS.allow_insecure,
        help="Allow an empty key in the connection file (messages are then not signed), and a "
        "connection file that other users may read or write.",
    ).tag(config=True)
    max_message_bytes = Integer(
        DEFAULTS.max_message_bytes, help="Largest incoming message in bytes; a peer sending more is dropped."
    ).tag(config=True)
    replay_history = Integer(
        DEFAULTS.replay_history, help="How many recent message signatures are remembered to refuse replays."
    ).tag(config=True)
    stream_flush_interval = Float(
        DEFAULTS.stream_flush_interval,
        help="Seconds that stdout/stderr writes are coalesced before being sent.",
    ).tag(config=True)
    stop_on_error_reply = CaselessStrEnum(
        ["error", "aborted"],
        DEFAULTS.stop_on_error_reply,
        help="Reply status for execute requests skipped after an error: 'error' or the legacy 'aborted'.",
    ).tag(config=True)
    output_cache_entries = Integer(
        DEFAULTS.output_cache_entries,
        min=0,
        help="Most results kept in Out and _N (oldest evicted first); 0 keeps none, not even in _.",
    ).tag(config=True)
    output_cache_bytes = Integer(
        DEFAULTS.output_cache_bytes,
        min=0,
        help="Most estimated bytes of results kept in Out and _N (oldest evicted first); "
        "a larger single result is shown and kept in _ only.",
    ).tag(config=True)
    capture_fd_output = Bool(
        DEFAULTS.capture_fd_output,
        help="Send what is written to file descriptors 1 and 2 (subprocesses, os.system, C code) "
        "to the running cell; the kernel's own log still goes to the real stderr.",
    ).tag(config=True)
    exit_with_parent = Bool(
        DEFAULTS.exit_with_parent,
        help="Stop when the process that launched the kernel ends (the JPY_PARENT_PID frontend, "
        "or the parent process, checked once a second).",
    ).tag(config=True)
    terminate_children = Bool(
        DEFAULTS.terminate_children,
        help="At shutdown and restart, end the processes that cells started (SIGTERM to each, "
        "then SIGKILL after terminate_children_grace).",
    ).tag(config=True)
    terminate_children_grace = Float(
        DEFAULTS.terminate_children_grace,
        min=0.0,
        help="Seconds child processes get to exit after SIGTERM before SIGKILL.",
    ).tag(config=True)
    output_limit = Integer(
        DEFAULTS.output_limit,
        min=0,
        help="Most stdout/stderr characters shown per cell: past it, the head and the tail are "
        "kept and a line says how many characters were left out. 0: no limit.",
    ).tag(config=True)
    history_enabled = Bool(
        DEFAULTS.history_enabled,
        help="Keep the input history (history_request, jupyter console's up arrow); False: none.",
    ).tag(config=True)
    history_file = Unicode(
        DEFAULTS.history_file,
        help="SQLite file of the input history, shared by kernels; ':memory:' keeps this session's "
        "only. Default: fastkernel/history.sqlite in the Jupyter data dir.",
    ).tag(config=True)
    history_store_output = Bool(
        DEFAULTS.history_store_output,
        help="Also keep the text/plain of each cell's result in the history file.",
    ).tag(config=True)
    history_max_sessions = Integer(
        DEFAULTS.history_max_sessions,
        min=0,
        help="Most kernel sessions kept in the history file, oldest deleted first; 0: any.",
    ).tag(config=True)
    history_max_rows = Integer(
        DEFAULTS.history_max_rows,
        min=0,
        help="Most inputs kept in the history file, oldest sessions deleted first; 0: any.",
    ).tag(config=True)
    max_stream_message = Integer(
        DEFAULTS.max_stream_message,
        min=1,
        help="Most characters in one stream message; longer output is split.",
    ).tag(config=True)
    max_stream_rate = Integer(
        DEFAULTS.max_stream_rate,
        min=0,
        help="Stream messages a second (and burst) past which a flush sends one message per stream, "
        "so output switching between stdout and stderr stays under jupyter_server's iopub rate "
        "limit; order within each stream is kept. 0: no bound.",
    ).tag(config=True)
    registration_timeout = Float(
        DEFAULTS.registration_timeout,
        min=0.1,
        help="Seconds the kernel waits for the launcher to acknowledge its ports when started "
        "with a JEP 66 registration file (a connection file with registration_port); it exits "
        "with an error after that.",
    ).tag(config=True)
    response_address = Unicode(
        DEFAULTS.response_address,
        help="Launcher mode (gateway_provisioners, Enterprise Gateway): the gateway's IP:PORT to "
        "send the kernel's encrypted connection info to. See docs/remote.md.",
    ).tag(config=True)
    kernel_id = Unicode(DEFAULTS.kernel_id, help="Launcher mode: the kernel id the gateway gave.").tag(
        config=True
    )
    public_key = Unicode(
        DEFAULTS.public_key,
        help="Launcher mode: the gateway's RSA public key (base64 DER) that seals the connection info.",
    ).tag(config=True)
    port_range = Unicode(
        DEFAULTS.port_range,
        help="Launcher mode: LOW..HIGH, the ports the kernel may bind (its five sockets and the comm "
        "port); 0..0 or empty: any.",
    ).tag(config=True)
    transport_encryption = Unicode(
        DEFAULTS.transport_encryption,
        help="Launcher mode: 'auto' or 'required' makes the sockets CurveZMQ servers and sends the "
        "keys with the connection info; empty, 'disabled' or an unsubstituted {placeholder}: off.",
    ).tag(config=True)
    ip = Unicode(
        DEFAULTS.ip,
        help="Launcher mode: the address to bind. Default: the address the gateway reaches this host "
        "at (every interface when Jupyter started the kernel on the gateway's host, else the SSH "
        "connection's, else the one that routes to the response address).",
    ).tag(config=True)
    # Options of the stock launchers that mean nothing to fastkernel (no Spark context is made).
    spark_context_initialization_mode = Unicode(
        "none", help="Accepted for compatibility with the stock launchers, and ignored."
    ).tag(config=True)
    cluster_type = Unicode("", help="Accepted for compatibility with the stock launchers, and ignored.").tag(
        config=True
    )
    kernel_class_name = Unicode(
        "", help="Accepted for compatibility with the stock launchers, and ignored."
    ).tag(config=True)

    traceback_mode = CaselessStrEnum(
        ["Minimal", "Plain", "Context", "Verbose", "Docs"],
        DEFAULTS.traceback_mode,
        help="How errors are shown (%xmode changes it in a session): Minimal (the exception line), "
        "Plain (Python's layout), Context (source lines around each frame), Verbose (and the "
        "frames' variables), Docs (and the functions' docstrings).",
    ).tag(config=True)
    traceback_colors = CaselessStrEnum(
        ["auto", "on", "off"],
        DEFAULTS.traceback_colors,
        help="ANSI colours in tracebacks: auto (on unless the NO_COLOR environment variable is set), "
        "on, off.",
    ).tag(config=True)
    traceback_hide_libraries = Bool(
        DEFAULTS.traceback_hide_libraries,
        help="Fold frames of installed libraries and the standard library that lie between user "
        "frames into one line with their count.",
    ).tag(config=True)

    aliases = {
        "f": "FastKernelApp.connection_file",
        "connection-file": "FastKernelApp.connection_file",
        "max-message-bytes": "FastKernelApp.max_message_bytes",
        "replay-history": "FastKernelApp.replay_history",
        "stream-flush-interval": "FastKernelApp.stream_flush_interval",
        "output-limit": "FastKernelApp.output_limit",
        "max-stream-message": "FastKernelApp.max_stream_message",
        "max-stream-rate": "FastKernelApp.max_stream_rate",
        "stop-on-error-reply": "FastKernelApp.stop_on_error_reply",
        "output-cache-entries": "FastKernelApp.output_cache_entries",
        "output-cache-bytes": "FastKernelApp.output_cache_bytes",
        "history-file": "FastKernelApp.history_file",
        "history-max-sessions": "FastKernelApp.history_max_sessions",
        "history-max-rows": "FastKernelApp.history_max_rows",
        "terminate-children-grace": "FastKernelApp.terminate_children_grace",
        "registration-timeout": "FastKernelApp.registration_timeout",
        "traceback-mode": "FastKernelApp.traceback_mode",
        "xmode": "FastKernelApp.traceback_mode",
        "traceback-colors": "FastKernelApp.traceback_colors",
        "log-level": "Application.log_level",
        "response-address": "FastKernelApp.response_address",
        "kernel-id": "FastKernelApp.kernel_id",
        "public-key": "FastKernelApp.public_key",
        "port-range": "FastKernelApp.port_range",
        "transport-encryption": "FastKernelApp.transport_encryption",
        "ip": "FastKernelApp.ip",
        "spark-context-initialization-mode": "FastKernelApp.spark_context_initialization_mode",
        "cluster-type": "FastKernelApp.cluster_type",
        "kernel-class-name": "FastKernelApp.kernel_class_name",
    }
    flags = {
        "allow-insecure": (
            {"FastKernelApp": {"allow_insecure": True}},
            "Accept an empty key (messages are neither signed nor verified) and a connection file "
            "that other users may read or write.",
        ),
        "debug": ({"Application": {"log_level": logging.DEBUG}}, "Log at DEBUG level."),
        "no-history": ({"FastKernelApp": {"history_enabled": False}}, "Keep no input history."),
        "history-store-output": (
            {"FastKernelApp": {"history_store_output": True}},
            "Also keep the text/plain of each result in the history file.",
        ),
        "no-exit-with-parent": (
            {"FastKernelApp": {"exit_with_parent": False}},
            "Keep running when the process that launched the kernel ends.",
        ),
        "no-terminate-children": (
            {"FastKernelApp": {"terminate_children": False}},
            "Leave the processes that cells started running at shutdown.",
        ),
        "hide-library-frames": (
            {"FastKernelApp": {"traceback_hide_libraries": True}},
            "Fold library frames between user frames in tracebacks into one line.",
        ),
        "no-capture-fd-output": (
            {"FastKernelApp": {"capture_fd_output": False}},
            "Leave file descriptors 1 and 2 alone: output of subprocesses and C code is not sent.",
        ),
    }

    def _log_level_default(self) -> int:
        return DEFAULTS.log_level

    def _log_default(self) -> logging.Logger:
        return log.logger()  # the kernel's own: to the real stderr (fastkernel.logs)

    def initialize(self, argv: Any = None) -> None:
        self.parse_command_line(argv)
        cli_config = self.config.copy()
        for path in reversed(jupyter_config_dirs()):
            self.load_config_file("fastkernel_config", path=path)
        self.update_config(cli_config)  # type: ignore[arg-type]  # the command line wins over config files

    def settings(self) -> KernelSettings:
        """The parsed command line and config files, as the kernel's settings."""
        values = {name: getattr(self, name) for name in KernelSettings._fields if name != "log_level"}
        level: Any = self.log_level  # traitlets has already turned a name into its number
        return KernelSettings(**values, log_level=int(level))


# Launcher options a gateway may substitute with nothing: its SSH command line is one unquoted
# string, so ``--transport-encryption {transport_encryption}`` arrives as a bare option.
_MAY_BE_EMPTY = ("--transport-encryption", "--port-range", "--spark-context-initialization-mode")
# Enterprise Gateway's kernelspecs spell the launcher options --RemoteProcessProxy.kernel-id, ...
_EG_PREFIX = "--RemoteProcessProxy."


def _launcher_args(argv: list[str]) -> list[str]:
    """``argv`` with Enterprise Gateway's option spellings made plain, and an empty value after
    each bare ``_MAY_BE_EMPTY`` option."""
    plain = ["--" + arg[len(_EG_PREFIX) :] if arg.startswith(_EG_PREFIX) else arg for arg in argv]
    filled: list[str] = []
    for index, arg in enumerate(plain):
        filled.append(arg)
        following = plain[index + 1] if index + 1 < len(plain) else None
        if arg in _MAY_BE_EMPTY and (following is None or following.startswith("--")):
            filled.append("")
    return filled


def parse_settings(argv: list[str]) -> KernelSettings:
    """Settings from ``argv`` and the config files (exits for --help and bad options)."""
    app = FastKernelApp()
    app.initialize(_launcher_args(argv))
    return app.settings()
