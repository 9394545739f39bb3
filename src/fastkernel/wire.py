"""Jupyter wire format: frames <-> message dicts, signing, verification, replay guard.

Standard library only, so that it can be tested on plain lists of bytes.

A message on the wire is ``[idents..., b"<IDS|MSG>", signature, header, parent_header,
metadata, content, buffers...]``. Incoming frames are checked in this order, cheapest and
safest first: frame count and size, constant-time signature comparison, replay guard
(only *verified* digests ever enter it, so junk cannot evict real entries), and only then
JSON parsing. A rejected message raises :class:`WireRejected` with a short reason that
the caller counts and logs at a bounded rate.
"""

from __future__ import annotations

import json
import threading
from _operator import _compare_digest as compare_digest  # what hmac.compare_digest is
from collections import deque
from collections.abc import Callable
from typing import Any

from fastkernel.messages import Message, pack
from fastkernel.ratelog import RateLimitedLog

DELIMITER = b"<IDS|MSG>"
JSON_FRAMES = 4  # header, parent_header, metadata, content
MAX_IDENTS = 16  # ROUTER adds one; proxies may add a few more
DEFAULT_MAX_FRAMES = 4096
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
DEFAULT_REPLAY_HISTORY = 65536
_DECODER = json.JSONDecoder()


class WireRejected(Exception):
    """An incoming message failed a wire check; ``reason`` names which one."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


_TRANS_5C = bytes(x ^ 0x5C for x in range(256))
_TRANS_36 = bytes(x ^ 0x36 for x in range(256))


def _builtin_sha256() -> Callable[..., Any] | None:
    # The interpreter's own SHA-256 avoids loading OpenSSL (about 4 MB of RSS) at startup.
    for module_name in ("_sha256", "_sha2"):
        try:
            return __import__(module_name).sha256  # type: ignore[no-any-return]
        except (ImportError, AttributeError):
            continue
    return None


def _hash_constructor(digest_name: str) -> Callable[..., Any]:
    if digest_name == "sha256":
        builtin = _builtin_sha256()
        if builtin is not None:
            return builtin
    import hashlib

    try:
        digest_size = hashlib.new(digest_name).digest_size
    except ValueError:
        raise ValueError(f"unsupported signature_scheme 'hmac-{digest_name}': no hash {digest_name!r}")
    if digest_size == 0:  # shake_*: extendable output, no fixed-length digest to sign with
        raise ValueError(
            f"unsupported signature_scheme 'hmac-{digest_name}': {digest_name!r} has no fixed digest size"
        )
    return lambda data=b"": hashlib.new(digest_name, data)


_BIG_MESSAGE = 1 << 20  # bytes of JSON frames from which signing goes through OpenSSL


class Signer:
    """HMAC (RFC 2104) over the four JSON frames; ``key=b""`` disables signing (insecure mode)."""

    def __init__(self, key: bytes, scheme: str = "hmac-sha256") -> None:
        if not scheme.startswith("hmac-"):
            raise ValueError(f"unsupported signature_scheme {scheme!r}: expected 'hmac-<hash>'")
        new_hash = _hash_constructor(scheme[len("hmac-") :])
        self.key = key
        self._digest_name = scheme[len("hmac-") :]
        self.scheme = scheme
        self._inner = self._outer = None
        self.hex_length = 0
        if key:
            block = new_hash().block_size
            padded = (new_hash(key).digest() if len(key) > block else key).ljust(block, b"\0")
            self._inner = new_hash(padded.translate(_TRANS_36))
            self._outer = new_hash(padded.translate(_TRANS_5C))
            self.hex_length = 2 * new_hash().digest_size

    @property
    def enabled(self) -> bool:
        return self._inner is not None

    def sign(self, json_frames: list[bytes]) -> bytes:
        if self._inner is None or self._outer is None:
            return b""
        if sum(map(len, json_frames)) >= _BIG_MESSAGE:
            return self._sign_big(json_frames)
        inner = self._inner.copy()  # copying the keyed states is cheaper than re-keying
        for frame in json_frames:
            inner.update(frame)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest().encode("ascii")  # type: ignore[no-any-return]

    def _sign_big(self, json_frames: list[bytes]) -> bytes:
        """The same HMAC through OpenSSL (imported on first use), which releases the GIL.

        The builtin SHA-256 holds the GIL: 0.5 s for a 100 MB display_data, during which the
        control thread could not answer. OpenSSL's takes 0.09 s and lets other threads run.
        """
        import hmac

        mac = hmac.new(self.key, digestmod=self._digest_name)
        for frame in json_frames:
            mac.update(frame)
        return mac.hexdigest().encode("ascii")


class ReplayGuard:
    """Bounded memory of recently seen (verified) signatures, oldest evicted first.

    One guard serves every channel (shared by forked codecs, hence the lock): a message
    accepted on control cannot be replayed on shell, where shutdown_request is served too.
    """

    def __init__(self, capacity: int = DEFAULT_REPLAY_HISTORY) -> None:
        self.capacity = capacity
        self._seen: set[bytes] = set()
        self._order: deque[bytes] = deque()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._seen)

    def check_and_record(self, digest: bytes) -> bool:
        """Record ``digest``; return False if it was already seen (a replay)."""
        if self.capacity <= 0:
            return True
        with self._lock:
            if digest in self._seen:
                return False
            self._seen.add(digest)
            self._order.append(digest)
            if len(self._order) > self.capacity:
                self._seen.discard(self._order.popleft())
            return True


class RejectLog:
    """Counts rejected messages per reason; logs them through one :class:`RateLimitedLog`."""

    def __init__(self, log: Any, interval: float = 5.0) -> None:
        self.counts: dict[str, int] = {}
        self._lines = RateLimitedLog(log, interval)

    def _describe(self, since_last: int) -> str:
        totals = dict(sorted(self.counts.items()))
        return f"rejected {since_last} message(s) since last report; totals by reason: {totals}"

    def record(self, reason: str) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1
        self._lines.report(self._describe)

    def flush(self) -> None:
        """Log the rejections not reported yet (at shutdown), so the last burst is not lost."""
        self._lines.flush(self._describe)


def peek_subshell_id(frames: list[bytes]) -> str | None:
    """The ``subshell_id`` a shell request's header names, read without verifying anything.

    Only for routing (transport/subshells.py): whoever receives the frames verifies them,
    so a forged header can choose a queue, never get a message accepted.
    """
    for i, frame in enumerate(frames[: MAX_IDENTS + 1]):
        if frame == DELIMITER:
            if len(frames) < i + 3 or b"subshell_id" not in frames[i + 2]:
                return None
            try:
                header = _DECODER.decode(bytes(frames[i + 2]).decode("utf-8"))
            except (ValueError, UnicodeDecodeError, RecursionError):
                return None
            sid = header.get("subshell_id") if isinstance(header, dict) else None
            return sid if isinstance(sid, str) else None
    return None


class WireCodec:
    """Turns message dicts into signed frames and verified frames into message dicts.

    Serializing is thread-safe (the signer's keyed base is only copied); deserializing
    records in the replay guard, which is locked and shared with forked codecs.
    """

    def __init__(
        self,
        signer: Signer,
        *,
        max_frames: int = DEFAULT_MAX_FRAMES,
        max_bytes: int = DEFAULT_MAX_BYTES,
        replay_history: int = DEFAULT_REPLAY_HISTORY,
    ) -> None:
        self.signer = signer
        self.max_frames = max_frames
        self.max_bytes = max_bytes
        self.replay_guard = ReplayGuard(replay_history)

    def fork(self) -> WireCodec:
        """A codec with the same key, limits and replay guard (one memory for all channels)."""
        forked = WireCodec(
            self.signer, max_frames=self.max_frames, max_bytes=self.max_bytes, replay_history=0
        )
        forked.replay_guard = self.replay_guard
        return forked

    def serialize(self, msg: Message, idents: list[bytes] | None = None) -> list[bytes]:
        json_frames = [
            msg.get("header_frame") or pack(msg["header"]),
            msg.get("parent_frame") or pack(msg.get("parent_header") or {}),
            pack(msg.get("metadata") or {}),
            pack(msg.get("content") or {}),
        ]
        frames = list(idents or [])
        frames.append(DELIMITER)
        frames.append(self.signer.sign(json_frames))
        frames.extend(json_frames)
        frames.extend(bytes(b) for b in msg.get("buffers") or [])
        return frames

    def deserialize(self, frames: list[bytes]) -> Message:
        """Check and parse ``frames``; raise :class:`WireRejected` if any check fails."""
        delim_at = self._find_delimiter(frames)
        self._check_size(frames, delim_at)
        signature = bytes(frames[delim_at + 1])
        json_frames = [bytes(f) for f in frames[delim_at + 2 : delim_at + 2 + JSON_FRAMES]]
        self._verify(signature, json_frames)
        header = self._parse(json_frames[0])
        if not isinstance(header, dict) or not isinstance(header.get("msg_type"), str):
            raise WireRejected("bad_header", "header is not an object with a msg_type")
        # A signed request whose header parses is answered even if its other frames do not
        # parse: the kernel core turns ``problems`` into an error reply instead of silence.
        problems: list[str] = []
        parent, metadata, content = (
            self._parse_or_note(frame, name, problems)
            for frame, name in zip(json_frames[1:], ("parent_header", "metadata", "content"), strict=True)
        )
        return {
            "problems": problems,
            "idents": [bytes(f) for f in frames[:delim_at]],
            "header": header,
            "header_frame": json_frames[0],  # replies reuse it as their parent_header frame
            "msg_id": header.get("msg_id", ""),
            "msg_type": header["msg_type"],
            "parent_header": parent if isinstance(parent, dict) else {},
            "metadata": metadata if isinstance(metadata, dict) else {},
            "content": content,
            "buffers": [memoryview(f) for f in frames[delim_at + 2 + JSON_FRAMES :]],
        }

    def _find_delimiter(self, frames: list[bytes]) -> int:
        if len(frames) > self.max_frames:
            raise WireRejected("too_many_frames", str(len(frames)))
        for i, frame in enumerate(frames[: MAX_IDENTS + 1]):
            if frame == DELIMITER:
                if len(frames) < i + 2 + JSON_FRAMES:
                    raise WireRejected("too_few_frames", str(len(frames)))
                return i
        raise WireRejected("no_delimiter")

    def _check_size(self, frames: list[bytes], delim_at: int) -> None:
        total = sum(len(f) for f in frames)
        if total > self.max_bytes:
            raise WireRejected("too_large", f"{total} bytes")

    def _verify(self, signature: bytes, json_frames: list[bytes]) -> None:
        if not self.signer.enabled:
            return
        if len(signature) != self.signer.hex_length:
            raise WireRejected("bad_signature", "wrong length")
        expected = self.signer.sign(json_frames)
        if not compare_digest(signature, expected):
            raise WireRejected("bad_signature")
        if not self.replay_guard.check_and_record(signature):
            raise WireRejected("replayed")

    @classmethod
    def _parse_or_note(cls, frame: bytes, name: str, problems: list[str]) -> Any:
        try:
            return cls._parse(frame)
        except WireRejected as err:
            problems.append(f"{name} is not valid JSON ({err})")
            return {}

    @staticmethod
    def _parse(frame: bytes) -> Any:
        try:
            # The wire is UTF-8 (no BOM sniffing as json.loads does for bytes); the shared
            # decoder skips json.loads' per-call checks.
            return _DECODER.decode(frame.decode("utf-8"))
        except (ValueError, UnicodeDecodeError, RecursionError) as err:
            # RecursionError: nesting deeper than the parser's stack (a few thousand '[').
            raise WireRejected("bad_json", str(err)[:80] or type(err).__name__) from None
