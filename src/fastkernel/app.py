"""The kernel application: CLI, configuration, logging; the one place that wires parts together."""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from traitlets import Bool, CaselessStrEnum, Float, Integer, Unicode
from traitlets.config import Application

from fastkernel import __version__

log = logging.getLogger("fastkernel")


def jupyter_config_dirs() -> list[str]:
    """Jupyter's config path (as jupyter_core orders it), without importing jupyter_core."""
    dirs: list[str] = []
    if os.environ.get("JUPYTER_CONFIG_PATH"):
        dirs.extend(p for p in os.environ["JUPYTER_CONFIG_PATH"].split(os.pathsep) if p)
    dirs.append(os.environ.get("JUPYTER_CONFIG_DIR") or os.path.join(os.path.expanduser("~"), ".jupyter"))
    dirs.append(os.path.join(sys.prefix, "etc", "jupyter"))
    dirs.extend(["/usr/local/etc/jupyter", "/etc/jupyter"])
    return dirs


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
        "python -m fastkernel install --help         # --sys-prefix, --prefix, --name, --env K V, ..."
    )

    connection_file = Unicode("", help="JSON connection file written by the frontend.").tag(config=True)
    allow_insecure = Bool(
        False,
        help="Allow an empty key in the connection file (messages are then not signed), and a "
        "connection file that other users may read or write.",
    ).tag(config=True)
    max_message_bytes = Integer(
        256 * 1024 * 1024, help="Largest incoming message in bytes; a peer sending more is dropped."
    ).tag(config=True)
    replay_history = Integer(
        65536, help="How many recent message signatures are remembered to refuse replays."
    ).tag(config=True)
    stream_flush_interval = Float(
        0.05, help="Seconds that stdout/stderr writes are coalesced before being sent."
    ).tag(config=True)
    stop_on_error_reply = CaselessStrEnum(
        ["error", "aborted"],
        "error",
        help="Reply status for execute requests skipped after an error: 'error' or the legacy 'aborted'.",
    ).tag(config=True)
    output_cache_entries = Integer(
        1000,
        min=0,
        help="Most results kept in Out and _N (oldest evicted first); 0 keeps none, not even in _.",
    ).tag(config=True)
    output_cache_bytes = Integer(
        512 * 2**20,
        min=0,
        help="Most estimated bytes of results kept in Out and _N (oldest evicted first); "
        "a larger single result is shown and kept in _ only.",
    ).tag(config=True)
    capture_fd_output = Bool(
        True,
        help="Send what is written to file descriptors 1 and 2 (subprocesses, os.system, C code) "
        "to the running cell; the kernel's own log still goes to the real stderr.",
    ).tag(config=True)
    exit_with_parent = Bool(
        True,
        help="Stop when the process that launched the kernel ends (the JPY_PARENT_PID frontend, "
        "or the parent process, checked once a second).",
    ).tag(config=True)
    terminate_children = Bool(
        True,
        help="At shutdown and restart, end the processes that cells started (SIGTERM to each, "
        "then SIGKILL after terminate_children_grace).",
    ).tag(config=True)
    terminate_children_grace = Float(
        1.0, min=0.0, help="Seconds child processes get to exit after SIGTERM before SIGKILL."
    ).tag(config=True)
    output_limit = Integer(
        0,
        min=0,
        help="Most stdout/stderr characters shown per cell: past it, the head and the tail are "
        "kept and a line says how many characters were left out. 0: no limit.",
    ).tag(config=True)
    history_enabled = Bool(
        True, help="Keep the input history (history_request, jupyter console's up arrow); False: none."
    ).tag(config=True)
    history_file = Unicode(
        "",
        help="SQLite file of the input history, shared by kernels; ':memory:' keeps this session's "
        "only. Default: fastkernel/history.sqlite in the Jupyter data dir.",
    ).tag(config=True)
    history_store_output = Bool(
        False, help="Also keep the text/plain of each cell's result in the history file."
    ).tag(config=True)
    history_max_sessions = Integer(
        1000, min=0, help="Most kernel sessions kept in the history file, oldest deleted first; 0: any."
    ).tag(config=True)
    history_max_rows = Integer(
        100_000, min=0, help="Most inputs kept in the history file, oldest sessions deleted first; 0: any."
    ).tag(config=True)
    max_stream_message = Integer(
        1 << 20, min=1, help="Most characters in one stream message; longer output is split."
    ).tag(config=True)
    max_stream_rate = Integer(
        300,
        min=0,
        help="Stream messages a second (and burst) past which a flush sends one message per stream, "
        "so output switching between stdout and stderr stays under jupyter_server's iopub rate "
        "limit; order within each stream is kept. 0: no bound.",
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
        "log-level": "Application.log_level",
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
        "no-capture-fd-output": (
            {"FastKernelApp": {"capture_fd_output": False}},
            "Leave file descriptors 1 and 2 alone: output of subprocesses and C code is not sent.",
        ),
    }

    def _log_level_default(self) -> int:
        return logging.INFO

    def _log_default(self) -> logging.Logger:
        # Log to the real stderr: sys.stderr is replaced by a kernel stream later.
        if not log.handlers:
            handler = logging.StreamHandler(sys.__stderr__)
            handler.setFormatter(
                logging.Formatter("[fastkernel %(levelname)s %(asctime)s] %(message)s", "%H:%M:%S")
            )
            log.addHandler(handler)
            log.propagate = False
        return log

    def initialize(self, argv: Any = None) -> None:
        self.parse_command_line(argv)
        cli_config = self.config.copy()
        for path in reversed(jupyter_config_dirs()):
            self.load_config_file("fastkernel_config", path=path)
        self.update_config(cli_config)  # type: ignore[arg-type]  # the command line wins over config files

    def start(self) -> None:
        # Application.log_level configures the app's own logger; the kernel logs as "fastkernel".
        level: Any = self.log_level  # traitlets has already turned a name into its number
        log.setLevel(level)
        sys.exit(run_kernel(self))


def _load_connection(app: FastKernelApp) -> tuple[Any, bool]:
    """Read the connection file, or make a new one; return (info, created_by_us)."""
    from fastkernel.transport.connection import new_connection_info, read_connection_file

    if app.connection_file:
        return read_connection_file(Path(app.connection_file)), False
    return new_connection_info(), True


def _connection_path(app: FastKernelApp) -> Path:
    from fastkernel.transport.connection import runtime_dir

    if app.connection_file:
        return Path(app.connection_file)
    return runtime_dir() / f"kernel-fastkernel-{os.getpid()}.json"


def _connection_file_is_private(app: FastKernelApp) -> bool:
    """Refuse (log, return False) a connection file that other users may read or write."""
    from fastkernel.transport.connection import open_to_others

    if not app.connection_file:
        return True  # we create it, mode 0600
    bits = open_to_others(Path(app.connection_file))
    if not bits:
        return True
    if app.allow_insecure:
        log.warning(
            "the connection file %s is open to other users (mode bits %03o): they can read its key "
            "and run code as you; accepted because of --allow-insecure",
            app.connection_file,
            bits,
        )
        return True
    log.error(
        "refusing to start: the connection file %s is open to other users (mode bits %03o), so "
        "anyone who can read its key could run code as you. Run `chmod 600 %s` (Jupyter writes "
        "connection files with mode 0600), or pass --allow-insecure to accept this.",
        app.connection_file,
        bits,
        app.connection_file,
    )
    return False


def _warn_if_exposed(info: Any) -> None:
    """Warn loudly when the ports are reachable from other machines: signed is not encrypted."""
    from fastkernel.transport.connection import reachable_from_network

    if reachable_from_network(info):
        log.warning(
            "binding to %s, which other machines can reach: messages are signed but NOT encrypted, "
            "so anyone on the network path can read code, outputs and data, and anyone who learns "
            "the key can run code. Prefer 127.0.0.1 with an SSH tunnel.",
            info.ip,
        )


def _sigterm_handler(server: Any) -> Any:
    def on_sigterm(signum: int, frame: Any) -> None:
        log.info("SIGTERM received: shutting down")
        server.stop_soon()  # the serve loop returns and _serve's cleanup runs

    return on_sigterm


def run_kernel(app: FastKernelApp) -> int:
    """Bind, serve until shutdown, clean up. Return the process exit code."""
    from fastkernel.kernel import Kernel
    from fastkernel.lifecycle import ParentWatch
    from fastkernel.messages import MessageFactory
    from fastkernel.transport.connection import ConnectionError_, write_connection_file
    from fastkernel.transport.server import KernelServer
    from fastkernel.wire import Signer, WireCodec

    try:
        info, created = _load_connection(app)
        if not info.key and not app.allow_insecure:
            log.error(
                "refusing to start: the connection file has an empty key, so anyone who can reach "
                "the ports could run code. Pass --allow-insecure to accept this."
            )
            return 2
        if not _connection_file_is_private(app):
            return 2
        signer = Signer(info.key, info.signature_scheme)
    except (ConnectionError_, ValueError) as err:
        log.error("%s", err)
        return 2
    codec = WireCodec(signer, max_bytes=app.max_message_bytes, replay_history=app.replay_history)
    _warn_if_exposed(info)
    needs_write = created or 0 in info.ports.values()
    server = KernelServer(info, codec, app.max_message_bytes)
    server.parent_watch = ParentWatch.from_environment(app.exit_with_parent)
    path = _connection_path(app)
    if needs_write:
        write_connection_file(path, info)
    if created:
        log.info("To connect another client to this kernel, use:\n    jupyter console --existing %s", path)
    factory = MessageFactory()
    kernel = Kernel(
        server,
        factory,
        connection_info=info.to_dict(),
        stream_interval=app.stream_flush_interval,
        stop_on_error_reply=app.stop_on_error_reply,
        output_cache_entries=app.output_cache_entries,
        output_cache_bytes=app.output_cache_bytes,
        history=_history_store(app),
    )
    server.on_idle = kernel.history_store.on_idle  # history is written on the main thread when idle
    server.dispatch = kernel.dispatch
    server.event_loop = lambda: getattr(kernel.interpreter, "event_loop", None)
    server.make_welcome = lambda topic: factory.msg(
        "iopub_welcome", {"subscription": topic.decode("utf-8", "replace")}
    )
    server.iopub_thread.on_flush_due = kernel.streams.flush
    _wire_output(app, server, kernel)
    grace = app.terminate_children_grace if app.terminate_children else None
    return _serve(server, kernel, path if created else None, grace)


def _history_store(app: FastKernelApp) -> Any:
    """The input history store (sqlite3 is imported when it is first used, not here)."""
    from fastkernel.history import HistoryStore, default_history_file

    path = None
    if app.history_enabled:
        path = os.path.expanduser(app.history_file) if app.history_file else str(default_history_file())
    return HistoryStore(
        path,
        store_output=app.history_store_output,
        max_sessions=app.history_max_sessions,
        max_rows=app.history_max_rows,
    )


def _wire_output(app: FastKernelApp, server: Any, kernel: Any) -> None:
    """Stream message bounds, and capture of fds 1 and 2 (started with the server's threads)."""
    kernel.streams.max_message = app.max_stream_message
    kernel.streams.max_rate = app.max_stream_rate
    kernel.streams.wait_for_room = server.iopub_thread.wait_for_room  # backpressure (server.py)
    kernel.streams.shielded = server.interrupts.shielded  # no interrupt mid-flush (server.py)
    kernel.streams.output_limit = app.output_limit
    if not app.capture_fd_output:
        return
    from fastkernel.transport.fdcapture import FdCapture

    server.fd_capture = FdCapture(kernel.streams.write, kernel.streams.flush, logger=log)
    kernel.streams.sources.append(server.fd_capture.drain)  # the barrier before results and replies
    kernel.stdout.fd, kernel.stderr.fd = 1, 2  # so subprocess.run(stdout=sys.stdout) works


def _abandon(grace: float | None) -> None:
    """Exit at once (an orphaned kernel whose main thread is stuck), ending children first."""
    from fastkernel.lifecycle import terminate_children

    try:
        if grace is not None:
            terminate_children(grace)
    finally:
        os._exit(1)


def _serve(server: Any, kernel: Any, created_path: Path | None, grace: float | None = 1.0) -> int:
    """Serve until stopped; then end the cells' child processes (``grace``: seconds they get
    between SIGTERM and SIGKILL; None leaves them running) and close everything."""
    from fastkernel.interpreter.inputs import install_input_hook
    from fastkernel.lifecycle import enable_crash_dumps, terminate_children

    saved = sys.stdout, sys.stderr
    enable_crash_dumps()  # before fd 2 goes to the capture pipe: dumps reach the real stderr
    server.on_abandoned = lambda: _abandon(grace)
    sys.stdout, sys.stderr = kernel.stdout, kernel.stderr
    kernel.interpreter.install_as_main()
    install_input_hook(kernel.raw_input)
    server.interrupts.executing = lambda: kernel.interpreter.executing
    signal.signal(signal.SIGINT, server.interrupts.on_sigint)  # see transport.server.InterruptGate
    signal.signal(signal.SIGTERM, _sigterm_handler(server))
    try:
        server.start_threads()
        kernel.publish_status("starting", None)
        server.serve_forever()
    finally:
        kernel.streams.flush()
        kernel.history_store.close()
        if grace is not None:
            terminate_children(grace)  # after the shutdown reply: the frontend is not kept waiting
        server.close()
        sys.stdout, sys.stderr = saved
        if created_path is not None:
            created_path.unlink(missing_ok=True)
    return 0


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["install"]:
        from fastkernel.kernelspec import main as install_main

        sys.exit(install_main(args[1:]))
    app = FastKernelApp()
    app.initialize(args)
    app.start()
