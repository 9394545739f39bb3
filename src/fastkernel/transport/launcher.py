"""Launcher mode: the kernel is its own launcher for gateway_provisioners and Enterprise Gateway.

Their remote provisioners start a kernelspec's argv with ``--kernel-id``, ``--response-address
IP:PORT``, ``--public-key``, ``--port-range LOW..HIGH`` and (gateway_provisioners 0.5)
``--transport-encryption`` substituted, then wait for the kernel's connection info on the
response address. The stock launcher picks ports by binding and closing them, then starts
ipykernel (a race) and forks a listener process; fastkernel does it all in its own process, the
same way as the JEP 66 handshake (handshake.py): bind the five sockets (sockets.listen, inside
the port range) and the *comm port* first, then report them.

The report, as the launchers' ``_encrypt`` and the servers' ``ResponseManager._decode_payload``
define it (launcher version 1): the connection info (the five ports, ip, key, transport,
signature_scheme, curve keys when encryption is on) plus ``pid``, ``pgid``, ``comm_port`` and
``kernel_id`` as JSON; encrypted with a fresh 128-bit AES key in ECB mode with PKCS#7 padding
(the protocol's choice, not ours); the AES key sealed with the gateway's RSA public key
(PKCS#1 v1.5); both base64 in ``{"version": 1, "key": ..., "conn_info": ...}``, which is
base64-encoded again and written to one TCP connection, closed after it.

The comm port (commport.py) then takes ``{"signum": N}`` and ``{"shutdown": 1}`` requests.
The crypto is the ``cryptography`` package's (``pip install 'fastkernel[remote]'``), imported
only here, only in launcher mode.
"""

from __future__ import annotations

import base64
import json
import os
import socket
from collections.abc import Mapping
from typing import Any, NamedTuple

import zmq

from fastkernel.logs import log
from fastkernel.transport.connection import ConnectionInfo, CurveKeys, new_connection_info
from fastkernel.transport.sockets import bind_in_range

LAUNCHER_VERSION = 1  # the payload format the gateways decode
PORTS_NEEDED = 6  # shell, iopub, stdin, control, hb and the comm port
OFF_VALUES = ("", "disabled", "none", "off", "false")


class LaunchError(Exception):
    """A launcher argument is wrong, or the connection info could not be delivered."""


class LaunchRequest(NamedTuple):
    """What the gateway asked for, checked."""

    kernel_id: str
    response: tuple[str, int]  # the gateway's response address
    public_key: Any  # a cryptography RSAPublicKey
    port_range: tuple[int, int] | None  # None: any port
    encryption: str | None  # "auto" or "required"; None: plain sockets
    bind_ip: str
    timeout: float  # seconds to reach the response address


def _require_cryptography() -> None:
    try:
        import cryptography  # noqa: F401
    except ImportError:
        raise LaunchError(
            "launcher mode (--response-address) needs the 'cryptography' package to encrypt the "
            "connection info: pip install 'fastkernel[remote]'"
        ) from None


def parse_response_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) <= 65535:
        raise LaunchError(f"--response-address must be IP:PORT (the gateway's), got {text!r}")
    return host, int(port)


def parse_port_range(text: str) -> tuple[int, int] | None:
    """``LOW..HIGH`` (inclusive) as a tuple; None for any port (empty, ``0..0``)."""
    if not text.strip() or text.strip() == "0..0":
        return None
    low, sep, high = text.strip().partition("..")
    if not sep or not low.isdigit() or not high.isdigit():
        raise LaunchError(f"--port-range must be LOW..HIGH (0..0 for any port), got {text!r}")
    bounds = int(low), int(high)
    if not 0 < bounds[0] <= bounds[1] <= 65535:
        raise LaunchError(f"--port-range {text!r}: need 0 < LOW <= HIGH <= 65535")
    size = bounds[1] - bounds[0] + 1
    if size < PORTS_NEEDED:
        raise LaunchError(
            f"--port-range {text} has {size} port{'s' if size > 1 else ''}, too few: the kernel binds "
            f"{PORTS_NEEDED} (five sockets and the comm port)"
        )
    return bounds


def encryption_policy(text: str) -> str | None:
    """``auto`` or ``required``; None when off, unsubstituted (a literal ``{...}``) or unknown."""
    value = text.strip().lower()
    if value in OFF_VALUES or (value.startswith("{") and value.endswith("}")):
        return None
    if value not in ("auto", "required"):
        log.warning("unknown --transport-encryption %r (auto, required, disabled): not encrypting", text)
        return None
    if not zmq.has("curve"):
        if value == "required":
            raise LaunchError(
                "--transport-encryption required, but this libzmq has no CURVE: install a pyzmq wheel"
            )
        log.warning("--transport-encryption auto: this libzmq has no CURVE, so the sockets are plain")
        return None
    return value


def load_public_key(text: str) -> Any:
    """The gateway's RSA public key: base64 DER (a PEM body without its header lines), or PEM."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    body = "".join(line for line in text.strip().splitlines() if not line.startswith("-----"))
    try:
        key = serialization.load_der_public_key(base64.b64decode("".join(body.split()), validate=True))
    except (ValueError, UnsupportedAlgorithm) as err:  # binascii.Error is a ValueError
        raise LaunchError(
            f"--public-key is not a base64 RSA public key (as the gateway sends it): {err}"
        ) from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise LaunchError(f"--public-key must be an RSA key, got {type(key).__name__}")
    return key


def reached_address(
    response: tuple[str, int], environ: Mapping[str, str] = os.environ, ppid: int | None = None
) -> str:
    """The address to bind: the one the gateway reaches this kernel at (it connects to the host it
    launched on, never to the address the kernel reports).

    - Started by a Jupyter process on the gateway's own host (``JPY_PARENT_PID`` is our parent:
      the distributed provisioner's local case, as with its default host ``localhost``): the
      gateway connects to whichever of this host's addresses its host list names, so every
      interface, as the stock launcher binds.
    - Started over SSH: the address the SSH connection came in on, the one the distributed
      provisioner connects to.
    - Otherwise (a pod, a container, a YARN node): the address this host routes to the gateway
      from.
    """
    if environ.get("JPY_PARENT_PID") == str(os.getppid() if ppid is None else ppid):
        return "0.0.0.0"  # noqa: S104  # see the docstring; --ip narrows it
    ssh = environ.get("SSH_CONNECTION", "").split()
    if len(ssh) == 4:
        return ssh[2]
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(response)  # UDP: no packet is sent, only a route chosen
        return str(probe.getsockname()[0])
    except OSError as err:
        raise LaunchError(f"no route to the response address {response[0]}:{response[1]}: {err}") from None
    finally:
        probe.close()


def launch_request(settings: Any) -> LaunchRequest:
    """Check the launcher arguments of ``settings`` (a KernelSettings); raise LaunchError."""
    _require_cryptography()
    if not settings.kernel_id or settings.kernel_id.startswith("{"):
        raise LaunchError("launcher mode needs --kernel-id (the gateway substitutes {kernel_id})")
    response = parse_response_address(settings.response_address)
    key = load_public_key(settings.public_key)
    port_range = parse_port_range(settings.port_range)
    encryption = encryption_policy(settings.transport_encryption)
    bind_ip = settings.ip or reached_address(response)
    return LaunchRequest(
        settings.kernel_id, response, key, port_range, encryption, bind_ip, settings.registration_timeout
    )


def launch_connection_info(request: LaunchRequest) -> ConnectionInfo:
    """A fresh connection info: new key, ports to pick in the range, curve keys when asked."""
    info = new_connection_info()
    info.ip = request.bind_ip
    info.port_range = request.port_range
    if request.encryption is not None:
        public, secret = zmq.curve_keypair()
        info.curve = CurveKeys(public, secret)
    return info


def bind_comm_socket(request: LaunchRequest) -> socket.socket:
    """The comm port's listening socket, on the address the kernel was reached at, in the range."""
    family = socket.AF_INET6 if ":" in request.bind_ip else socket.AF_INET  # SSH over IPv6
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if request.port_range is None:
            sock.bind((request.bind_ip, 0))
        else:
            bind_in_range(lambda port: sock.bind((request.bind_ip, port)), request.port_range, "comm port")
        sock.listen(8)
    except BaseException:
        sock.close()
        raise
    return sock


def encrypt_payload(connection: dict[str, Any], public_key: Any) -> bytes:
    """The version 1 payload: AES-128-ECB (PKCS#7) connection info, its key sealed with RSA."""
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.asymmetric import padding as asymmetric
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    aes_key = os.urandom(16)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(json.dumps(connection).encode("utf-8")) + padder.finalize()
    encryptor = Cipher(algorithms.AES(aes_key), modes.ECB()).encryptor()  # noqa: S305  # the protocol's
    sealed_info = encryptor.update(padded) + encryptor.finalize()
    sealed_key = public_key.encrypt(aes_key, asymmetric.PKCS1v15())
    payload = {
        "version": LAUNCHER_VERSION,
        "key": base64.b64encode(sealed_key).decode("ascii"),
        "conn_info": base64.b64encode(sealed_info).decode("ascii"),
    }
    return base64.b64encode(json.dumps(payload).encode("utf-8"))


def report(request: LaunchRequest, info: ConnectionInfo, comm_port: int) -> None:
    """Send the encrypted connection info to the response address; raise LaunchError if it fails."""
    connection = info.to_dict()
    connection.update(pid=os.getpid(), pgid=os.getpgid(0), comm_port=comm_port, kernel_id=request.kernel_id)
    payload = encrypt_payload(connection, request.public_key)
    host, port = request.response
    try:
        with socket.create_connection((host, port), timeout=request.timeout) as conn:
            conn.sendall(payload)
            conn.shutdown(socket.SHUT_WR)  # the gateway reads until the end of the stream
    except OSError as err:
        raise LaunchError(
            f"cannot send the connection info to the response address {host}:{port}: {err} "
            "(is the gateway listening there, and reachable from this host?)"
        ) from None
