"""The JEP 66 startup handshake: tell the launcher the ports the kernel bound itself.

A connection file with a ``registration_port`` and no kernel ports is a *registration file*.
The kernel binds its five sockets on free ports (no race between a launcher picking ports and
the kernel binding them), connects a DEALER to the launcher's registration socket, sends a
signed registration message with its ports (and its CurveZMQ public key when encryption is on),
and waits a bounded time for the signed acknowledgement; without one it exits with an error.

Two formats exist, and the registration file says which one the launcher speaks:

- Kallichore's (Posit's supervisor, used by Positron) and ark's, the one in use: the file has
  ``ip`` and ``registration_port``; the registration socket is a REP, so the DEALER sends an
  empty envelope frame first; request and reply are full signed Jupyter messages,
  ``handshake_request`` (content: the five ``*_port``) and ``handshake_reply`` (content:
  ``status`` "ok" or "error", ``error``).
- jupyter_client's documented one (messaging spec, "Kernel startup handshake", 5.6): the file
  has ``registration_ip`` and ``kernel_id``; request and acknowledgement are one signed content
  frame after the delimiter: ``[<IDS|MSG>, signature, content]``.

The content is the same in both: the five ports, ``kernel_id`` when the file gives one, and
``curve_publickey`` when the sockets are curve servers.
"""

from __future__ import annotations

import json
from _operator import _compare_digest as compare_digest  # what hmac.compare_digest is
from typing import Any, NamedTuple

import zmq

from fastkernel.messages import MessageFactory, pack
from fastkernel.transport.connection import CHANNELS, ConnectionInfo
from fastkernel.wire import DELIMITER, Signer, WireCodec, WireRejected


class HandshakeError(Exception):
    """The launcher did not acknowledge the registration (the message says why)."""


class Registration(NamedTuple):
    url: str  # the launcher's registration socket
    kernel_id: str | None
    documented: bool  # jupyter_client's documented format; False: Kallichore's and ark's


def registration_of(info: ConnectionInfo) -> Registration | None:
    """The registration socket a registration file names, or None for a connection file."""
    port = info.registration_port
    if port is None:
        return None
    kernel_id = info.extra.get("kernel_id")
    documented = "registration_ip" in info.extra or kernel_id is not None
    url = info.address("shell", port)  # the channel does not matter once the port is given
    return Registration(url, None if kernel_id is None else str(kernel_id), documented)


def registration_content(info: ConnectionInfo, registration: Registration) -> dict[str, Any]:
    content: dict[str, Any] = {f"{channel}_port": info.ports[channel] for channel in CHANNELS}
    if registration.kernel_id is not None:
        content["kernel_id"] = registration.kernel_id
    if info.curve is not None:
        content["curve_publickey"] = info.curve.public.decode("ascii")
    return content


def register(
    ctx: zmq.Context[Any], info: ConnectionInfo, registration: Registration, signer: Signer, timeout: float
) -> None:
    """Send the registration and wait up to ``timeout`` seconds for its acknowledgement.

    Raise :class:`HandshakeError` if none comes, if its signature is wrong, or if it refuses.
    """
    content = registration_content(info, registration)
    sock: zmq.Socket[Any] = ctx.socket(zmq.DEALER)
    sock.linger = 0  # nothing to deliver once we give up
    sock.setsockopt(zmq.MAXMSGSIZE, 1 << 20)  # an acknowledgement is small
    try:
        sock.connect(registration.url)
        if registration.documented:
            frame = pack(content)
            sock.send_multipart([DELIMITER, signer.sign([frame]), frame], zmq.NOBLOCK)
        else:
            msg = MessageFactory().msg("handshake_request", content)
            sock.send_multipart(WireCodec(signer).serialize(msg, [b""]), zmq.NOBLOCK)
        if not sock.poll(int(timeout * 1000)):
            raise HandshakeError(
                f"no acknowledgement from the registration socket {registration.url} within "
                f"{timeout:g} s: is the launcher listening there? (--registration-timeout sets the wait)"
            )
        frames = sock.recv_multipart()
    except zmq.ZMQError as err:
        raise HandshakeError(f"cannot reach the registration socket {registration.url}: {err}") from None
    finally:
        sock.close()
    reply = _documented_ack(frames, signer) if registration.documented else _handshake_reply(frames, signer)
    if reply.get("status", "ok") != "ok":
        raise HandshakeError(f"the launcher refused the registration: {reply.get('error') or reply}")


def _handshake_reply(frames: list[bytes], signer: Signer) -> dict[str, Any]:
    """The content of a signed ``handshake_reply`` message (Kallichore's format)."""
    try:
        msg = WireCodec(signer).deserialize(frames)
    except WireRejected as err:
        raise HandshakeError(
            f"the registration reply was refused ({err}): is the key the launcher's?"
        ) from None
    if msg["msg_type"] != "handshake_reply" or not isinstance(msg["content"], dict):
        raise HandshakeError(f"expected a handshake_reply from the launcher, got {msg['msg_type']!r}")
    return msg["content"]  # type: ignore[no-any-return]


def _documented_ack(frames: list[bytes], signer: Signer) -> dict[str, Any]:
    """The content of a signed single-frame acknowledgement (jupyter_client's documented format)."""
    if DELIMITER not in frames[:-2]:
        raise HandshakeError("the registration acknowledgement is not a signed message (no <IDS|MSG>)")
    at = frames.index(DELIMITER)
    signature, frame = frames[at + 1], frames[at + 2]
    if signer.enabled and not compare_digest(signature, signer.sign([frame])):
        raise HandshakeError("the registration acknowledgement's signature does not match the key")
    try:
        content = json.loads(frame)
    except ValueError:
        raise HandshakeError("the registration acknowledgement is not JSON") from None
    return content if isinstance(content, dict) else {}
