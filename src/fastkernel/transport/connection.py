"""Connection files: read, create (mode 0600) and write back the real ports.

A connection file names the kernel's five ports (0: the kernel picks one and writes it back).
It may also carry CurveZMQ keys (``curve_publickey``/``curve_secretkey``, Z85: the kernel's
sockets are then curve servers), and instead of ports a ``registration_port``: a JEP 66
registration file, after which the kernel picks its ports and reports them (handshake.py).
"""

from __future__ import annotations

import json
import os
import stat
from typing import TYPE_CHECKING, Any, NamedTuple

from fastkernel.logs import log

if TYPE_CHECKING:
    from pathlib import Path

    PathLike = str | os.PathLike[str]

CHANNELS = ("shell", "iopub", "stdin", "control", "hb")
Z85_CHARS = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#")
CURVE_FIELDS = ("curve_publickey", "curve_secretkey")


class ConnectionError_(Exception):
    """The connection file is missing, unreadable or malformed."""


class CurveKeys(NamedTuple):
    """The kernel's CurveZMQ key pair, Z85-encoded (40 ASCII characters each)."""

    public: bytes
    secret: bytes


class ConnectionInfo:
    """What a connection file says. A plain class: ``dataclasses`` costs milliseconds at start."""

    def __init__(
        self,
        transport: str = "tcp",
        ip: str = "127.0.0.1",
        key: bytes = b"",
        signature_scheme: str = "hmac-sha256",
        ports: dict[str, int] | None = None,
        kernel_name: str = "",
        extra: dict[str, Any] | None = None,
        curve: CurveKeys | None = None,
    ) -> None:
        self.transport = transport
        self.ip = ip
        self.key = key
        self.signature_scheme = signature_scheme
        self.ports = ports if ports is not None else {c: 0 for c in CHANNELS}
        self.kernel_name = kernel_name
        self.extra = extra if extra is not None else {}
        self.curve = curve  # None: plain sockets, as without encryption
        # Launcher mode: ports picked (port 0) come from this range, inclusive (sockets.listen).
        self.port_range: tuple[int, int] | None = None
        # Port 0 asks the kernel to pick one: the real ports are then written back to the file.
        self.picked_ports = 0 in self.ports.values()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ConnectionInfo) and vars(self) == vars(other)

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value

    def __repr__(self) -> str:
        return f"ConnectionInfo(transport={self.transport!r}, ip={self.ip!r}, ports={self.ports})"

    def address(self, channel: str, port: int | None = None) -> str:
        port = self.ports[channel] if port is None else port
        if self.transport == "ipc":
            return f"ipc://{self.ip}-{port}"
        host = f"[{self.ip}]" if ":" in self.ip else self.ip
        return f"tcp://{host}:{port}"

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.extra)
        data.update({f"{c}_port": p for c, p in self.ports.items()})
        data.update(
            transport=self.transport,
            ip=self.ip,
            key=self.key.decode("utf-8"),
            signature_scheme=self.signature_scheme,
            kernel_name=self.kernel_name,
        )
        if self.curve is not None:  # the file is the owner's only (0600), as for the key
            data["curve_publickey"] = self.curve.public.decode("ascii")
            data["curve_secretkey"] = self.curve.secret.decode("ascii")
        return data

    @property
    def registration_port(self) -> int | None:
        """The launcher's registration port when this is a JEP 66 registration file, else None."""
        port = self.extra.get("registration_port")
        return port if isinstance(port, int) and not isinstance(port, bool) else None

    def ipc_paths(self) -> list[str]:
        """The socket files of an ipc transport (none for tcp)."""
        if self.transport != "ipc":
            return []
        return [f"{self.ip}-{port}" for port in self.ports.values() if port]


def _int_port(data: dict[str, Any], channel: str, path: PathLike) -> int:
    value = data.get(f"{channel}_port", 0)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 65535:
        raise ConnectionError_(f"{path}: {channel}_port must be an integer 0-65535, got {value!r}")
    return value


def _curve_keys(data: dict[str, Any], path: PathLike) -> CurveKeys | None:
    """The CurveZMQ keys of a connection file: both or neither, each 40 Z85 characters."""
    given = [name for name in CURVE_FIELDS if data.get(name) not in (None, "")]
    if not given:
        return None
    if len(given) == 1:
        missing = next(name for name in CURVE_FIELDS if name not in given)
        raise ConnectionError_(f"{path}: {given[0]} is given without {missing}: give both or neither")
    keys = []
    for name in CURVE_FIELDS:
        value = data[name]
        if not isinstance(value, str) or len(value) != 40 or not Z85_CHARS.issuperset(value):
            raise ConnectionError_(f"{path}: {name} must be a 40-character Z85 string (zmq.curve_keypair())")
        keys.append(value.encode("ascii"))
    return CurveKeys(*keys)


def _check_registration(data: dict[str, Any], path: PathLike) -> None:
    """A registration file names its registration port and no kernel port (JEP 66)."""
    if "registration_port" not in data:
        return
    port = data["registration_port"]
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port <= 65535:
        raise ConnectionError_(f"{path}: registration_port must be an integer 1-65535, got {port!r}")
    given = [f"{c}_port" for c in CHANNELS if data.get(f"{c}_port")]
    if given:
        raise ConnectionError_(
            f"{path}: a registration file (registration_port) lets the kernel pick its own ports, "
            f"but this one also names {', '.join(given)}"
        )


def read_connection_file(path: PathLike) -> ConnectionInfo:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.loads(f.read())
    except FileNotFoundError:
        raise ConnectionError_(f"connection file not found: {path}") from None
    except (OSError, ValueError) as err:
        raise ConnectionError_(f"cannot read connection file {path}: {err}") from None
    if not isinstance(data, dict):
        raise ConnectionError_(f"{path}: expected a JSON object")
    transport = data.get("transport", "tcp")
    if transport not in ("tcp", "ipc"):
        raise ConnectionError_(f"{path}: transport must be 'tcp' or 'ipc', got {transport!r}")
    _check_registration(data, path)
    known = {"transport", "ip", "key", "signature_scheme", "kernel_name", *CURVE_FIELDS}
    known |= {f"{c}_port" for c in CHANNELS}
    # jupyter_client's documented registration file names the address registration_ip.
    ip = data.get("ip") or data.get("registration_ip")
    return ConnectionInfo(
        transport=transport,
        ip=str(ip or ("kernel-ipc" if transport == "ipc" else "127.0.0.1")),
        key=str(data.get("key") or "").encode("utf-8"),  # Kallichore writes null for no key
        signature_scheme=str(data.get("signature_scheme") or "hmac-sha256"),
        ports={c: _int_port(data, c, path) for c in CHANNELS},
        kernel_name=str(data.get("kernel_name", "")),
        extra={k: v for k, v in data.items() if k not in known},
        curve=_curve_keys(data, path),
    )


def write_connection_file(path: PathLike, info: ConnectionInfo) -> None:
    """Write ``info`` to ``path`` readable by its owner only."""
    folder, name = os.path.split(os.fspath(path))
    os.makedirs(folder or ".", exist_ok=True)
    # A fresh, unguessable temp name opened with O_EXCL (and O_NOFOLLOW): nothing planted in a
    # shared runtime dir (a stale file, a symlink) can lend the key its own mode or target.
    tmp = os.path.join(folder, f".{name}.{os.getpid()}.{os.urandom(6).hex()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(tmp, flags, stat.S_IRUSR | stat.S_IWUSR)
    try:
        os.fchmod(fd, stat.S_IRUSR | stat.S_IWUSR)  # whatever the umask did
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(info.to_dict(), f, indent=1)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def runtime_dir() -> Path:
    """Jupyter's runtime directory, computed without importing jupyter_core."""
    from pathlib import Path

    if os.environ.get("JUPYTER_RUNTIME_DIR"):
        return Path(os.environ["JUPYTER_RUNTIME_DIR"])
    data_dir = os.environ.get("JUPYTER_DATA_DIR")
    if not data_dir:
        xdg = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
        data_dir = os.path.join(xdg, "jupyter")
    return Path(data_dir) / "runtime"


def new_connection_info() -> ConnectionInfo:
    return ConnectionInfo(key=os.urandom(32).hex().encode("ascii"))


def runtime_path() -> str:
    """Where a kernel started without ``-f`` writes its connection file."""
    return str(runtime_dir() / f"kernel-fastkernel-{os.getpid()}.json")


def world_readable(path: PathLike) -> bool:
    try:
        return bool(os.stat(path).st_mode & (stat.S_IRGRP | stat.S_IROTH))
    except OSError:
        return False


def open_to_others(path: PathLike) -> int:
    """The permission bits of ``path`` that let users other than its owner in (mode & 0o077)."""
    try:
        return os.stat(path).st_mode & 0o077
    except OSError:
        return 0


def reachable_from_network(info: ConnectionInfo) -> bool:
    """Whether ``info`` binds TCP ports beyond loopback, where other machines can reach them."""
    if info.transport != "tcp":
        return False
    ip = info.ip.strip("[]").lower()
    return not (ip.startswith("127.") or ip in ("localhost", "::1", "::ffff:127.0.0.1"))


def file_is_private(path: str, allow_insecure: bool) -> bool:
    """Refuse (log, return False) a connection file that other users may read or write."""
    bits = open_to_others(path)
    if not bits:
        return True
    if allow_insecure:
        log.warning(
            "the connection file %s is open to other users (mode bits %03o): they can read its key "
            "and run code as you; accepted because of --allow-insecure",
            path,
            bits,
        )
        return True
    log.error(
        "refusing to start: the connection file %s is open to other users (mode bits %03o), so "
        "anyone who can read its key could run code as you. Run `chmod 600 %s` (Jupyter writes "
        "connection files with mode 0600), or pass --allow-insecure to accept this.",
        path,
        bits,
        path,
    )
    return False


def warn_if_exposed(info: ConnectionInfo) -> None:
    """Warn loudly when the ports are reachable from other machines without encryption."""
    if reachable_from_network(info) and info.curve is None:
        log.warning(
            "binding to %s, which other machines can reach: messages are signed but NOT encrypted, "
            "so anyone on the network path can read code, outputs and data, and anyone who learns "
            "the key can run code. Encrypt the transport: start the kernel with "
            "transport_encryption='required' (jupyter_client 8.9+: CurveZMQ keys in the connection "
            "file), or bind 127.0.0.1 and use an SSH tunnel. See docs/security.md.",
            info.ip,
        )
