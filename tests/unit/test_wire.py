"""fastkernel.wire on plain lists of bytes: framing, signing, verification, replay guard, packing."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from datetime import date, datetime, timezone
from typing import Any

import pytest
from jupyter_client.session import Session

from fastkernel.messages import new_msg_id, pack, utcnow_iso
from fastkernel.wire import DELIMITER, RejectLog, Signer, WireCodec, WireRejected

KEY = b"a3f5c0de-5e55-4c0d-9e11-0123456789ab"
SCHEMES = ["hmac-sha256", "hmac-sha512", "hmac-sha1"]

# Index of each frame in a message serialized without idents.
SIG, HEADER, PARENT, METADATA, CONTENT = 1, 2, 3, 4, 5


def header(msg_type: str = "execute_request") -> dict[str, Any]:
    return {
        "msg_id": new_msg_id(),
        "msg_type": msg_type,
        "username": "tester",
        "session": "session-1",
        "date": utcnow_iso(),
        "version": "5.5",
    }


def message(content: Any = None, *, buffers: list[Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "header": header(),
        "parent_header": extra.get("parent_header", {}),
        "metadata": extra.get("metadata", {}),
        "content": {"code": "1 + 1", "silent": False} if content is None else content,
        "buffers": buffers or [],
    }


def codec(scheme: str = "hmac-sha256", key: bytes = KEY, **limits: int) -> WireCodec:
    return WireCodec(Signer(key, scheme), **limits)


def reason_of(wire: WireCodec, frames: list[bytes]) -> str:
    with pytest.raises(WireRejected) as info:
        wire.deserialize(frames)
    return info.value.reason


def resign(wire: WireCodec, frames: list[bytes]) -> list[bytes]:
    """``frames`` (no idents) with a correct signature over whatever the JSON frames now hold."""
    frames = list(frames)
    frames[SIG] = wire.signer.sign(frames[HEADER : CONTENT + 1])
    return frames


# -- round trips --------------------------------------------------------------------------


def test_round_trip_keeps_idents_unicode_content_and_binary_buffers() -> None:
    wire = codec()
    parent = header("kernel_info_request")
    msg = message(
        {"code": "print('héllo wörld ✓ 🐍 中文')", "nested": {"list": [1, 2.5, None, True, "ß"]}},
        buffers=[bytes(range(256)), memoryview(b"\x00view\xff"), bytearray(b"\x00\x00")],
        parent_header=parent,
        metadata={"tags": ["ünïcode"]},
    )
    idents = [b"router-\x00\xff-id", b"proxy"]

    frames = wire.serialize(msg, idents)
    got = wire.fork().deserialize(frames)

    assert got["idents"] == idents
    assert got["header"] == msg["header"]
    assert got["msg_type"] == "execute_request"
    assert got["msg_id"] == msg["header"]["msg_id"]
    assert got["parent_header"] == parent
    assert got["metadata"] == {"tags": ["ünïcode"]}
    assert got["content"] == msg["content"]
    assert [bytes(b) for b in got["buffers"]] == [bytes(range(256)), b"\x00view\xff", b"\x00\x00"]


def test_serialized_frames_are_strict_utf8_json_in_order() -> None:
    wire = codec()
    msg = message({"text": "naïve ☃"})
    frames = wire.serialize(msg)
    assert frames[0] == DELIMITER
    parts = [json.loads(frame.decode("utf-8")) for frame in frames[HEADER : CONTENT + 1]]
    assert parts == [msg["header"], {}, {}, {"text": "naïve ☃"}]


def test_missing_optional_parts_serialize_as_empty_objects() -> None:
    wire = codec()
    frames = wire.serialize({"header": header("status")})
    assert frames[PARENT:] == [b"{}", b"{}", b"{}"]
    assert wire.deserialize(frames)["content"] == {}


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("key", [KEY, b"k", bytes(range(256)) * 2], ids=["key", "short", "longer-than-block"])
def test_signature_is_standard_lowercase_hex_hmac(scheme: str, key: bytes) -> None:
    frames = codec(scheme, key).serialize(message({"x": 1}))
    mac = hmac.new(key, digestmod=scheme.removeprefix("hmac-"))
    for frame in frames[HEADER : CONTENT + 1]:
        mac.update(frame)
    assert frames[SIG] == mac.hexdigest().encode("ascii")


# -- rejections --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "index", [HEADER, PARENT, METADATA, CONTENT], ids=["header", "parent", "metadata", "content"]
)
def test_tampered_json_frame_is_rejected_as_bad_signature(index: int) -> None:
    wire = codec()
    frames = wire.serialize(message(parent_header=header("x"), metadata={"a": 1}))
    frames[index] = frames[index].replace(b"}", b" }", 1)  # same JSON, different bytes
    assert json.loads(frames[index]) is not None
    assert reason_of(wire, frames) == "bad_signature"


@pytest.mark.parametrize(
    "forge",
    [
        lambda sig: (b"0" if sig[:1] != b"0" else b"1") + sig[1:],  # one hex digit changed
        lambda sig: sig[:-1],  # one digit short
        lambda sig: sig + b"00",  # too long
        lambda sig: b"",  # unsigned
        lambda sig: sig.upper(),  # the right digest, but uppercase hex
    ],
    ids=["wrong-digit", "short", "long", "empty", "uppercase"],
)
def test_forged_signature_is_rejected(forge: Any) -> None:
    wire = codec()
    frames = wire.serialize(message())
    assert frames[SIG] != frames[SIG].upper(), "digest has hex letters"
    frames[SIG] = forge(frames[SIG])
    assert reason_of(wire, frames) == "bad_signature"


def test_signature_of_other_scheme_is_rejected() -> None:
    frames = codec("hmac-sha512").serialize(message())
    assert reason_of(codec("hmac-sha256"), frames) == "bad_signature"


@pytest.mark.parametrize("keep", [0, 1, 4], ids=["delimiter-only", "with-signature", "missing-content"])
def test_truncated_message_is_rejected_as_too_few_frames(keep: int) -> None:
    wire = codec()
    frames = wire.serialize(message(), [b"ident"])
    assert reason_of(wire, frames[: 2 + keep]) == "too_few_frames"


def test_missing_delimiter_is_rejected() -> None:
    wire = codec()
    frames = wire.serialize(message(), [b"ident"])
    frames.remove(DELIMITER)
    assert reason_of(wire, frames) == "no_delimiter"
    assert reason_of(wire, []) == "no_delimiter"


def test_frame_count_limit() -> None:
    wire = codec(max_frames=10)  # delimiter, signature, 4 JSON frames: room for 4 buffers
    fits = wire.serialize(message(buffers=[b"b"] * 4))
    assert len(fits) == 10
    assert wire.deserialize(fits)["buffers"] == [b"b"] * 4
    assert reason_of(wire, wire.serialize(message(buffers=[b"b"] * 5))) == "too_many_frames"


def test_size_limit_counts_every_frame() -> None:
    msg = message(buffers=[b"x" * 1000])
    size = sum(len(f) for f in codec().serialize(msg, [b"ident"]))
    assert codec(max_bytes=size).deserialize(codec().serialize(msg, [b"ident"]))["content"] == msg["content"]
    wire = codec(max_bytes=size - 1)
    assert reason_of(wire, wire.serialize(msg, [b"ident"])) == "too_large"


@pytest.mark.parametrize(
    "junk",
    [b'{"msg_type": ', b"{'msg_type': 'x'}", b"", b'{"msg_type": "\xff\xfe"}'],
    ids=["truncated", "single-quotes", "empty", "invalid-utf8"],
)
def test_invalid_header_json_with_valid_signature_is_bad_json(junk: bytes) -> None:
    wire = codec()
    frames = wire.serialize(message())
    frames[HEADER] = junk
    assert reason_of(wire, resign(wire, frames)) == "bad_json"


@pytest.mark.parametrize(
    "index, name, junk",
    [
        (PARENT, "parent_header", b"{'single': 1}"),
        (METADATA, "metadata", b""),
        (CONTENT, "content", b'{"s": "\xff"}'),
    ],
    ids=["parent", "metadata-empty", "content-invalid-utf8"],
)
def test_invalid_body_json_with_valid_signature_is_delivered_as_a_problem(
    index: int, name: str, junk: bytes
) -> None:
    """A signed message whose header parses must be answered, so the core hears of the bad frame."""
    wire = codec()
    frames = wire.serialize(message())
    frames[index] = junk
    got = wire.deserialize(resign(wire, frames))
    assert got["msg_type"] == "execute_request"
    assert len(got["problems"]) == 1 and got["problems"][0].startswith(f"{name} is not valid JSON")
    assert wire.deserialize(wire.serialize(message()))["problems"] == []


def test_invalid_json_with_bad_signature_is_bad_signature() -> None:
    """The signature is checked before any JSON is parsed."""
    wire = codec()
    frames = wire.serialize(message())
    frames[HEADER] = b"{not json"
    assert reason_of(wire, frames) == "bad_signature"
    unsigned = codec(key=b"")
    assert reason_of(unsigned, frames) == "bad_json"  # the same frames do reach the parser


@pytest.mark.parametrize(
    "bad_header",
    [{"msg_id": "1"}, {"msg_type": 5}, ["execute_request"], "execute_request"],
    ids=["no-msg_type", "msg_type-not-str", "list", "string"],
)
def test_header_without_msg_type_is_rejected(bad_header: Any) -> None:
    wire = codec()
    frames = wire.serialize({"header": bad_header, "content": {}})
    assert reason_of(wire, frames) == "bad_header"


def test_replayed_message_is_rejected() -> None:
    wire = codec()
    frames = wire.serialize(message())
    assert wire.deserialize(list(frames))["msg_type"] == "execute_request"
    assert reason_of(wire, list(frames)) == "replayed"
    assert reason_of(wire, [b"other-ident", *frames]) == "replayed"  # new routing, same message


def test_replay_is_still_rejected_after_100k_forged_messages() -> None:
    """Only verified digests enter the guard, so junk cannot evict a real one (jupyter_client can)."""
    wire = codec()
    real = wire.serialize(message())
    wire.deserialize(real)
    forged = list(real)
    forged[CONTENT] = b'{"code": "import os; os.system(\'rm -rf ~\')"}'
    for i in range(100_000):
        forged[SIG] = b"%064x" % i  # a different, well-formed, wrong digest each time
        try:
            wire.deserialize(forged)
        except WireRejected as err:
            assert err.reason == "bad_signature"
        else:
            raise AssertionError(f"forged message {i} accepted")
    assert reason_of(wire, real) == "replayed"


def test_replay_guard_evicts_oldest_verified_digest_first() -> None:
    wire = codec(replay_history=3)
    sent = [wire.serialize(message({"n": n})) for n in range(4)]
    for frames in sent:
        wire.deserialize(frames)
    for _ in range(10):  # rejected traffic takes no room in the guard
        assert reason_of(wire, [*sent[0][:SIG], b"f" * 64, *sent[0][HEADER:]]) == "bad_signature"
    assert reason_of(wire, sent[3]) == "replayed"
    assert reason_of(wire, sent[2]) == "replayed"
    assert reason_of(wire, sent[1]) == "replayed"
    assert wire.deserialize(sent[0])["content"] == {"n": 0}  # the oldest was forgotten
    assert reason_of(wire, sent[0]) == "replayed"


def test_forked_codec_keeps_key_and_limits() -> None:
    wire = codec(max_frames=7, max_bytes=10_000)
    fork = wire.fork()
    frames = wire.serialize(message())
    assert fork.deserialize(frames)["content"] == message()["content"]
    assert reason_of(fork, wire.serialize(message(buffers=[b"1", b"2"]))) == "too_many_frames"
    assert reason_of(fork, wire.serialize(message(buffers=[b"x" * 10_000]))) == "too_large"


# -- signature schemes and keys --------------------------------------------------------------


def test_scheme_without_hmac_prefix_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match=r"'md5'.*hmac-<hash>"):
        Signer(KEY, "md5")


@pytest.mark.parametrize("scheme", ["hmac-nonexistent", "hmac-"])
def test_unknown_hash_is_refused_clearly(scheme: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(scheme))):
        Signer(KEY, scheme)


def test_extendable_output_hash_is_refused_at_construction() -> None:
    """shake_* has no fixed digest size, so it cannot sign; say so at startup, not per message."""
    assert "shake_128" in hashlib.algorithms_available
    with pytest.raises(ValueError, match="shake_128"):
        Signer(KEY, "hmac-shake_128")


@pytest.mark.parametrize("scheme, hex_length", [("hmac-sha512", 128), ("hmac-sha1", 40), ("hmac-sha256", 64)])
def test_other_schemes_sign_and_verify(scheme: str, hex_length: int) -> None:
    wire = codec(scheme)
    frames = wire.serialize(message({"scheme": scheme}))
    assert len(frames[SIG]) == hex_length
    assert wire.deserialize(frames)["content"] == {"scheme": scheme}


def test_empty_key_disables_signing_and_accepts_messages() -> None:
    signer = Signer(b"")
    assert not signer.enabled
    wire = WireCodec(signer)
    frames = wire.serialize(message({"insecure": True}))
    assert frames[SIG] == b""
    assert wire.deserialize(frames)["content"] == {"insecure": True}
    frames[SIG] = b"anything"
    assert wire.fork().deserialize(frames)["content"] == {"insecure": True}


def test_messages_signed_with_another_key_are_rejected() -> None:
    frames = codec(key=b"other key").serialize(message())
    assert reason_of(codec(), frames) == "bad_signature"


# -- interoperability with jupyter_client.session.Session -----------------------------------


class RecordingStream:
    """Stands in for a zmq socket so that Session.send hands over the exact frames it would send."""

    def __init__(self) -> None:
        self.sent: list[list[bytes]] = []

    def send_multipart(self, frames: list[Any], copy: bool = True) -> None:
        self.sent.append([bytes(f) for f in frames])


@pytest.mark.parametrize("scheme", SCHEMES)
def test_jupyter_client_accepts_what_fastkernel_sends(scheme: str) -> None:
    session = Session(key=KEY, signature_scheme=scheme)
    parent = header("execute_request")
    msg = message(
        {"name": "stdout", "text": "ünïcode ✓\n", "nan": float("nan")},
        buffers=[b"\x00\x01binary\xff", memoryview(b"view")],
        parent_header=parent,
        metadata={"m": [1, 2]},
    )
    frames = codec(scheme).serialize(msg, [b"kernel.stream"])

    idents, rest = session.feed_identities(frames)
    got = session.deserialize(rest)

    assert idents == [b"kernel.stream"]
    assert got["msg_id"] == msg["header"]["msg_id"]
    assert got["msg_type"] == "execute_request"
    assert {k: v for k, v in got["header"].items() if k != "date"} == {
        k: v for k, v in msg["header"].items() if k != "date"
    }
    assert got["header"]["date"] == datetime.fromisoformat(msg["header"]["date"])
    assert got["parent_header"]["msg_id"] == parent["msg_id"]
    assert got["metadata"] == {"m": [1, 2]}
    assert got["content"] == {"name": "stdout", "text": "ünïcode ✓\n", "nan": None}
    assert [bytes(b) for b in got["buffers"]] == [b"\x00\x01binary\xff", b"view"]


@pytest.mark.parametrize("scheme", SCHEMES)
def test_fastkernel_accepts_what_jupyter_client_sends(scheme: str) -> None:
    session = Session(key=KEY, signature_scheme=scheme, username="client")
    stream = RecordingStream()
    parent = session.msg("kernel_info_request", {})
    sent = session.send(
        stream,
        "comm_msg",
        content={"comm_id": "c1", "data": {"text": "héllo ✓", "values": [1.5, None]}},
        parent=parent,
        ident=[b"client-ident"],
        buffers=[b"\x00\xffraw", memoryview(bytes(range(256)))],
        metadata={"cell": "abc"},
    )
    assert sent is not None
    (frames,) = stream.sent

    got = codec(scheme).deserialize(frames)

    assert got["idents"] == [b"client-ident"]
    assert got["header"] == json.loads(session.pack(sent["header"]))
    assert got["msg_type"] == "comm_msg"
    assert got["msg_id"] == sent["header"]["msg_id"]
    assert got["parent_header"] == json.loads(session.pack(parent["header"]))
    assert got["metadata"] == {"cell": "abc"}
    assert got["content"] == sent["content"]
    assert [bytes(b) for b in got["buffers"]] == [b"\x00\xffraw", bytes(range(256))]


def test_jupyter_client_message_replayed_is_rejected() -> None:
    session = Session(key=KEY)
    stream = RecordingStream()
    session.send(stream, "execute_request", content={"code": "1"})
    wire = codec()
    wire.deserialize(stream.sent[0])
    assert reason_of(wire, stream.sent[0]) == "replayed"


def test_jupyter_client_with_wrong_key_is_rejected() -> None:
    session = Session(key=b"not the kernel key")
    stream = RecordingStream()
    session.send(stream, "execute_request", content={"code": "1"})
    assert reason_of(codec(), stream.sent[0]) == "bad_signature"


def test_insecure_mode_interoperates_with_jupyter_client() -> None:
    session = Session(key=b"")
    stream = RecordingStream()
    session.send(stream, "kernel_info_request", content={})
    assert codec(key=b"").deserialize(stream.sent[0])["msg_type"] == "kernel_info_request"
    frames = codec(key=b"").serialize(message({"x": 1}))
    assert session.deserialize(frames[1:])["content"] == {"x": 1}


# -- pack ----------------------------------------------------------------------------------------


def strict_loads(data: bytes) -> Any:
    """Parse as a strict JSON parser would (JavaScript's JSON.parse, serde): no NaN, valid UTF-8."""

    def reject(token: str) -> None:
        raise AssertionError(f"non-JSON constant {token} in {data!r}")

    return json.loads(data.decode("utf-8"), parse_constant=reject)


def test_pack_turns_nan_and_infinities_into_null() -> None:
    nan, inf = float("nan"), float("inf")
    packed = pack({"a": nan, "b": [inf, -inf, 1.5], "c": (nan, 2), "d": {"deep": [{"x": -inf}]}})
    assert strict_loads(packed) == {
        "a": None,
        "b": [None, None, 1.5],
        "c": [None, 2],
        "d": {"deep": [{"x": None}]},
    }


def test_pack_turns_nan_inside_sets_into_null() -> None:
    assert strict_loads(pack({"s": {float("nan")}, "f": frozenset([float("inf")])})) == {
        "s": [None],
        "f": [None],
    }


def test_pack_keeps_ordinary_floats_exact() -> None:
    assert strict_loads(pack({"x": 0.1, "y": 1e300, "z": -0.0})) == {"x": 0.1, "y": 1e300, "z": -0.0}


def test_pack_base64_encodes_bytes() -> None:
    packed = strict_loads(pack({"b": b"\x00\xff", "ba": bytearray(b"hi"), "mv": memoryview(b"abc")}))
    assert packed == {"b": "AP8=", "ba": "aGk=", "mv": "YWJj"}


def test_pack_writes_datetimes_as_iso_strings() -> None:
    when = datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)
    packed = strict_loads(pack({"when": when, "day": date(2024, 2, 29), "naive": datetime(2024, 1, 1)}))
    assert packed == {
        "when": "2024-01-02T03:04:05.678901+00:00",
        "day": "2024-02-29",
        "naive": "2024-01-01T00:00:00",
    }
    assert datetime.fromisoformat(packed["when"]) == when


def test_pack_keeps_unicode_and_always_emits_valid_utf8() -> None:
    assert strict_loads(pack({"t": "é ✓ 🐍"})) == {"t": "é ✓ 🐍"}
    # Undecodable file names reach Python as lone surrogates (surrogateescape); the frame
    # must still be valid UTF-8 or strict decoders drop the whole message.
    packed = pack({"t": "name-\udcff.txt"})
    assert strict_loads(packed) == {"t": "name-\udcff.txt"}


def test_pack_refuses_circular_structures_with_value_error() -> None:
    loop: list[Any] = [float("nan")]
    loop.append(loop)
    with pytest.raises(ValueError, match="[Cc]ircular"):
        pack({"loop": loop})


def test_utcnow_iso_is_parseable_utc() -> None:
    stamp = datetime.fromisoformat(utcnow_iso())
    assert stamp.utcoffset() is not None and stamp.utcoffset().total_seconds() == 0
    assert abs((datetime.now(timezone.utc) - stamp).total_seconds()) < 60


# -- RejectLog -------------------------------------------------------------------------------------


class Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def recorder() -> Any:
    logger = logging.getLogger("fastkernel.tests.rejects")
    handler = Recorder()
    logger.addHandler(handler)
    logger.propagate = False
    yield logger, handler
    logger.removeHandler(handler)


def test_reject_log_counts_per_reason(recorder: Any) -> None:
    logger, _ = recorder
    rejects = RejectLog(logger, interval=3600)
    for reason in ["shell:bad_signature"] * 3 + ["control:replayed", "shell:too_large"]:
        rejects.record(reason)
    assert rejects.counts == {"shell:bad_signature": 3, "control:replayed": 1, "shell:too_large": 1}


def test_reject_log_reports_first_rejection_at_once_then_stays_quiet(recorder: Any) -> None:
    logger, handler = recorder
    rejects = RejectLog(logger, interval=1e9)  # longer than any uptime of the machine
    for _ in range(10_000):
        rejects.record("shell:bad_signature")
    assert len(handler.lines) == 1
    assert "rejected 1 message" in handler.lines[0]
    assert rejects.counts == {"shell:bad_signature": 10_000}


class SteppingClock:
    """``time`` for fastkernel.wire, whose ``monotonic()`` advances ``step`` s at each reading."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step

    def monotonic(self) -> float:
        self.now += self.step
        return self.now

    def __getattr__(self, name: str) -> Any:
        import time

        return getattr(time, name)


def test_reject_log_lines_are_bounded_by_interval(recorder: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import fastkernel.ratelog

    logger, handler = recorder
    interval = 0.002
    clock = SteppingClock(interval / 64)  # a clock of its own: the bound holds whatever the machine's speed
    monkeypatch.setattr(fastkernel.ratelog, "time", clock)
    rejects = RejectLog(logger, interval=interval)
    for i in range(50_000):
        rejects.record("shell:bad_signature" if i % 2 else "control:no_delimiter")
    assert 1 <= len(handler.lines) <= clock.now / interval + 1
    reported = sum(int(re.search(r"rejected (\d+) message", line).group(1)) for line in handler.lines)
    assert reported <= 50_000
    assert "control:no_delimiter" in handler.lines[0]
    assert rejects.counts == {"shell:bad_signature": 25_000, "control:no_delimiter": 25_000}
