"""Starting the kernel: settings, then the one function that wires the parts together.

The start path is ordered for a fast first reply: read the connection file, bind the five
sockets (CurveZMQ servers when the file has keys: transport/sockets.py) and start the
heartbeat, report the ports to the launcher when the file is a JEP 66 registration file
(transport/handshake.py) or send them to the gateway in launcher mode (transport/launcher.py),
then build the core (cheap: its runtime is built after the first
reply, see kernel.py) and serve. Requests that arrive meanwhile wait in the sockets.
Nothing on this path imports traitlets, logging or the interpreter; a start with options
or config files goes through cli.py first (see settings.py).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from typing import TYPE_CHECKING

from fastkernel import starttrace
from fastkernel.logs import log
from fastkernel.settings import KernelSettings, quick_settings

if TYPE_CHECKING:
    import socket

    from fastkernel.history import HistoryStore
    from fastkernel.kernel import Kernel, RuntimeOptions
    from fastkernel.runtime import Runtime
    from fastkernel.transport.commport import CommPortListener
    from fastkernel.transport.connection import ConnectionInfo
    from fastkernel.transport.heartbeat import Heartbeat
    from fastkernel.transport.launcher import LaunchRequest
    from fastkernel.transport.server import KernelServer
    from fastkernel.transport.sockets import KernelSockets
    from fastkernel.wire import Signer


def main(argv: list[str] | None = None) -> None:
    """``python -m fastkernel``: ``install ...``, or run a kernel."""
    starttrace.mark("main")
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["install"]:
        from fastkernel.kernelspec import main as install_main

        sys.exit(install_main(args[1:]))
    settings = quick_settings(args)
    if settings is None:
        from fastkernel.cli import parse_settings

        settings = parse_settings(args)
    log.set_level(settings.log_level)
    starttrace.mark("settings")
    sys.exit(run_kernel(settings))


def run_kernel(settings: KernelSettings) -> int:
    """Bind, serve until shutdown, clean up. Return the process exit code."""
    from fastkernel.kernel import Kernel  # noqa: F811  # the import itself, beside the type
    from fastkernel.lifecycle import ParentWatch
    from fastkernel.messages import MessageFactory
    from fastkernel.transport.server import KernelServer  # noqa: F811
    from fastkernel.wire import WireCodec

    starttrace.mark("imports")
    opened = _open_connection(settings)
    if isinstance(opened, int):
        return opened
    info, path, created, signer, launch = opened
    bound = _bind(info, settings)
    if bound is None:
        return 2
    sockets, heartbeat = bound
    starttrace.mark("bound")
    if info.registration_port is not None and not _register(sockets, heartbeat, info, signer, settings):
        return 2
    comm_sock = None
    if launch is not None:
        comm_sock = _report_to_gateway(sockets, heartbeat, info, launch)
        if comm_sock is None:
            return 2
    factory = MessageFactory()
    codec = WireCodec(signer, max_bytes=settings.max_message_bytes, replay_history=settings.replay_history)
    grace = settings.terminate_children_grace if settings.terminate_children else None
    server = KernelServer(
        sockets,
        heartbeat,
        codec,
        factory.welcome,
        parent_watch=ParentWatch.from_environment(settings.exit_with_parent and _watch_parent(launch)),
        on_abandoned=lambda: _abandon(grace, info),
    )
    kernel = Kernel(
        server,
        factory,
        connection_info=info.to_dict(),
        stop_on_error_reply=settings.stop_on_error_reply,
        runtime=_runtime_options(settings),
        on_runtime=lambda runtime: _install_runtime(settings, runtime),
    )
    comm = None
    if comm_sock is not None:
        from fastkernel.transport.commport import CommPortListener  # noqa: F811

        comm = CommPortListener(comm_sock, interrupt=server.interrupt_main, shutdown=server.stop_soon)
    _announce(info, path, created, settings)
    return _serve(server, kernel, info, path if created else None, grace, comm)


def _open_connection(
    settings: KernelSettings,
) -> tuple[ConnectionInfo, str, bool, Signer, LaunchRequest | None] | int:
    """(info, path, created by us, signer, the gateway's launch request in launcher mode) from the
    connection file or the launcher arguments, or an exit code after an error."""
    if settings.response_address:
        return _open_launch(settings)
    from fastkernel.transport.connection import (
        ConnectionError_,
        file_is_private,
        new_connection_info,
        read_connection_file,
        runtime_path,
    )
    from fastkernel.transport.sockets import check_curve
    from fastkernel.wire import Signer  # noqa: F811

    try:
        if settings.connection_file:
            info = read_connection_file(settings.connection_file)
        else:
            info = new_connection_info()
        if not info.key and not settings.allow_insecure:
            log.error(
                "refusing to start: the connection file has an empty key, so anyone who can reach "
                "the ports could run code. Pass --allow-insecure to accept this."
            )
            return 2
        if settings.connection_file and not file_is_private(
            settings.connection_file, settings.allow_insecure
        ):
            return 2
        if info.curve is not None:
            check_curve(info.curve)
        signer = Signer(info.key, info.signature_scheme)
    except (ConnectionError_, ValueError) as err:
        log.error("%s", err)
        return 2
    # A registration file is the launcher's: the kernel writes its ports to a file of its own.
    created = not settings.connection_file or info.registration_port is not None
    return info, runtime_path() if created else settings.connection_file, created, signer, None


def _open_launch(settings: KernelSettings) -> tuple[ConnectionInfo, str, bool, Signer, LaunchRequest] | int:
    """Launcher mode: check the gateway's arguments and make a connection info of our own."""
    from fastkernel.transport.connection import runtime_path
    from fastkernel.transport.launcher import LaunchError, launch_connection_info, launch_request
    from fastkernel.wire import Signer  # noqa: F811

    try:
        launch = launch_request(settings)
    except LaunchError as err:
        log.error("launcher mode: %s", err)
        return 2
    if os.getpgrp() != os.getpid():
        # Lead a session of our own (as jupyter_client starts local kernels): the pgid the gateway
        # is told is ours alone, and interrupts reach the cells' child processes.
        with contextlib.suppress(OSError):
            os.setsid()
    info = launch_connection_info(launch)
    return info, runtime_path(), True, Signer(info.key, info.signature_scheme), launch


def _watch_parent(launch: LaunchRequest | None) -> bool:
    """Whether the parent process is the kernel's launcher, to stop with. In launcher mode it is
    a launch shell or a container's entry point, gone at once (the gateway watches the kernel
    through the comm port), unless a Jupyter process on the gateway's host started the kernel."""
    return launch is None or os.environ.get("JPY_PARENT_PID") == str(os.getppid())


def _bind(info: ConnectionInfo, settings: KernelSettings) -> tuple[KernelSockets, Heartbeat] | None:
    """Bind the four sockets and start the heartbeat; None after logging why binding failed."""
    import zmq

    from fastkernel.transport.connection import ConnectionError_
    from fastkernel.transport.heartbeat import Heartbeat  # noqa: F811
    from fastkernel.transport.sockets import KernelSockets  # noqa: F811

    try:
        sockets = KernelSockets(info, settings.max_message_bytes)
    except (ConnectionError_, zmq.ZMQError) as err:
        log.error("cannot bind the kernel's sockets on %s: %s", info.ip, err)
        return None
    try:
        heartbeat = Heartbeat(info)
    except (ConnectionError_, zmq.ZMQError) as err:
        log.error("cannot bind the heartbeat socket on %s: %s", info.ip, err)
        sockets.close()
        return None
    info.ports["hb"] = heartbeat.port
    heartbeat.start()
    return sockets, heartbeat


def _report_to_gateway(
    sockets: KernelSockets, heartbeat: Heartbeat, info: ConnectionInfo, launch: LaunchRequest
) -> socket.socket | None:
    """Bind the comm port and send the connection info to the gateway (transport/launcher.py);
    return the comm port's listening socket, or on failure log why, close, return None."""
    from fastkernel.transport.connection import ConnectionError_
    from fastkernel.transport.launcher import LaunchError, bind_comm_socket, report

    try:
        comm_sock = bind_comm_socket(launch)
    except (ConnectionError_, OSError) as err:
        log.error("launcher mode: cannot bind the comm port on %s: %s", launch.bind_ip, err)
        heartbeat.stop()
        sockets.close()
        return None
    comm_port = comm_sock.getsockname()[1]
    try:
        report(launch, info, comm_port)
    except LaunchError as err:
        log.error("launcher mode: %s", err)
        comm_sock.close()
        heartbeat.stop()
        sockets.close()
        return None
    log.info(
        "launcher mode: sent ports %s and comm port %d on %s to the gateway at %s:%d%s",
        info.ports,
        comm_port,
        info.ip,
        *launch.response,
        " (CurveZMQ on)" if info.curve is not None else "",
    )
    return comm_sock


def _register(
    sockets: KernelSockets,
    heartbeat: Heartbeat,
    info: ConnectionInfo,
    signer: Signer,
    settings: KernelSettings,
) -> bool:
    """The JEP 66 handshake (transport/handshake.py); on failure log why, close, return False."""
    from fastkernel.transport.handshake import HandshakeError, register, registration_of
    from fastkernel.transport.sockets import remove_ipc_files

    registration = registration_of(info)
    assert registration is not None
    try:
        register(sockets.ctx, info, registration, signer, settings.registration_timeout)
    except HandshakeError as err:
        log.error("JEP 66 handshake failed, exiting: %s", err)
        heartbeat.stop()
        sockets.close()
        remove_ipc_files(info)
        return False
    log.debug("registered ports %s with %s", info.ports, registration.url)
    for field in ("registration_port", "registration_ip"):  # not in the connection file we write
        info.extra.pop(field, None)
    return True


def _announce(info: ConnectionInfo, path: str, created: bool, settings: KernelSettings) -> None:
    """Write back the real ports where we chose them; warn of exposed ports; say how to connect."""
    from fastkernel.transport.connection import warn_if_exposed, write_connection_file

    warn_if_exposed(info)
    if created or settings.connection_file and info.picked_ports:
        write_connection_file(path, info)
    if created:
        log.info("To connect another client to this kernel, use:\n    jupyter console --existing %s", path)


def _runtime_options(settings: KernelSettings) -> RuntimeOptions:
    from fastkernel.kernel import RuntimeOptions

    return RuntimeOptions(
        stream_interval=settings.stream_flush_interval,
        max_stream_message=settings.max_stream_message,
        max_stream_rate=settings.max_stream_rate,
        output_limit=settings.output_limit,
        output_cache_entries=settings.output_cache_entries,
        output_cache_bytes=settings.output_cache_bytes,
        history=lambda: _history_store(settings),
        traceback_mode=settings.traceback_mode,
        traceback_colors=settings.traceback_colors,
        traceback_hide_libraries=settings.traceback_hide_libraries,
    )


def _history_store(settings: KernelSettings) -> HistoryStore:
    """The input history store (sqlite3 is imported when it is first used, not here)."""
    from fastkernel.history import HistoryStore, default_history_file

    path = None
    if settings.history_enabled:
        path = (
            os.path.expanduser(settings.history_file)
            if settings.history_file
            else str(default_history_file())
        )
    return HistoryStore(
        path,
        store_output=settings.history_store_output,
        max_sessions=settings.history_max_sessions,
        max_rows=settings.history_max_rows,
    )


def _install_runtime(settings: KernelSettings, runtime: Runtime) -> None:
    """Process-wide parts of the runtime, once it is built (main thread, after the first reply)."""
    from fastkernel.interpreter.inputs import install_input_hook

    if settings.capture_fd_output:
        from fastkernel.transport.fdcapture import FdCapture

        runtime.capture_fds(lambda write, flush: FdCapture(write, flush, logger=log.logger()))
    sys.stdout, sys.stderr = runtime.stdout, runtime.stderr
    runtime.interpreter.install_as_main()
    install_input_hook(runtime.raw_input)


def _abandon(grace: float | None, info: ConnectionInfo) -> None:
    """Exit at once (an orphaned kernel whose main thread is stuck), ending children first."""
    from fastkernel.lifecycle import terminate_children
    from fastkernel.transport.sockets import remove_ipc_files

    try:
        if grace is not None:
            terminate_children(grace)
        remove_ipc_files(info)  # os._exit closes no socket, so libzmq removes none
    finally:
        os._exit(1)


def _serve(
    server: KernelServer,
    kernel: Kernel,
    info: ConnectionInfo,
    created_path: str | None,
    grace: float | None,
    comm: CommPortListener | None = None,
) -> int:
    """Serve until stopped; then end the cells' child processes (``grace``: seconds they get
    between SIGTERM and SIGKILL; None leaves them running) and close everything."""
    from fastkernel.lifecycle import enable_crash_dumps, terminate_children
    from fastkernel.transport.sockets import remove_ipc_files

    saved = sys.stdout, sys.stderr
    enable_crash_dumps()  # before fd 2 goes to the capture pipe: dumps reach the real stderr
    signal.signal(signal.SIGINT, server.gate.on_sigint)  # see transport/interrupts.py
    signal.signal(signal.SIGTERM, lambda signum, frame: _on_sigterm(server))
    # A signal the OS delivers to another thread only sets a flag: the main thread runs the
    # handler once it runs bytecode again, so the signal also wakes its poll.
    signal.set_wakeup_fd(server.main_wake_fd, warn_on_full_buffer=False)
    if comm is not None:
        comm.start()  # after the handlers: a signal it raises in the kernel finds them in place
    try:
        server.start_iopub()
        kernel.publish_status("starting", None)
        starttrace.mark("serving")
        server.serve(kernel)
    finally:
        server.stop_subshells()  # before the runtime closes: their cells may still write output
        kernel.close()
        if grace is not None:
            terminate_children(grace)  # after the shutdown reply: the frontend is not kept waiting
        signal.set_wakeup_fd(-1)
        server.close()
        remove_ipc_files(info)
        sys.stdout, sys.stderr = saved
        if created_path is not None and os.path.exists(created_path):
            os.unlink(created_path)
        if comm is not None:
            comm.stop()  # last: a refused liveness poll tells the gateway the kernel is gone
    return 0


def _on_sigterm(server: KernelServer) -> None:
    log.info("SIGTERM received: shutting down")
    server.stop_soon()  # the serve loop returns and _serve's cleanup runs
