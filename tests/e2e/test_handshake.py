"""The JEP 66 startup handshake against a registration service written here from the specs.

Two launchers' formats (see src/fastkernel/transport/handshake.py): Kallichore's (Positron's
supervisor; a REP socket, full ``handshake_request``/``handshake_reply`` messages) and
jupyter_client's documented one (a ROUTER, one signed content frame each way, ``kernel_id``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import zmq
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.session import DELIM, Session

from tests.kernels import CHANNELS, TIMEOUT, KernelProcess, Kernels
from tests.spec import validate

pytestmark = pytest.mark.timeout(60)

SHORT_WAIT = "--registration-timeout=1"


@dataclass
class Launcher:
    """A registration service: binds its socket, writes the registration file, takes one request."""

    directory: Path
    documented: bool  # jupyter_client's documented format; False: Kallichore's
    curve: bool = False
    key: str = field(default_factory=lambda: secrets.token_hex(16))
    kernel_id: str = "kernel-7"

    def __post_init__(self) -> None:
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.ROUTER if self.documented else zmq.REP)
        self.sock.linger = 0
        self.port = self.sock.bind_to_random_port("tcp://127.0.0.1")
        self.session = Session(key=self.key.encode(), signature_scheme="hmac-sha256")
        self.keys = zmq.curve_keypair() if self.curve else None

    def registration_file(self, **changes: Any) -> Path:
        if self.documented:
            fields: dict[str, Any] = {
                "kernel_id": self.kernel_id,
                "transport": "tcp",
                "registration_ip": "127.0.0.1",
                "registration_port": self.port,
                "signature_scheme": "hmac-sha256",
                "key": self.key,
            }
        else:  # Kallichore's RegistrationFile
            fields = {
                "transport": "tcp",
                "signature_scheme": "hmac-sha256",
                "ip": "127.0.0.1",
                "key": self.key,
                "registration_port": self.port,
            }
        if self.keys is not None:
            fields.update(curve_publickey=self.keys[0].decode(), curve_secretkey=self.keys[1].decode())
        fields.update(changes)
        path = self.directory / "registration.json"
        path.write_text(json.dumps(fields))
        path.chmod(0o600)
        return path

    def receive(self) -> tuple[list[bytes], dict[str, Any]]:
        """The kernel's registration: (envelope to reply to, its content, signature checked)."""
        assert self.sock.poll(TIMEOUT * 1000), "no registration from the kernel"
        frames = self.sock.recv_multipart()
        if self.documented:
            at = frames.index(DELIM)
            envelope, (signature, content) = frames[:at], frames[at + 1 :]
            expected = hmac.new(self.key.encode(), content, hashlib.sha256).hexdigest().encode()
            assert hmac.compare_digest(signature, expected), "the registration is not signed with the key"
            return envelope, json.loads(content)
        idents, msg_frames = self.session.feed_identities(frames)
        msg = self.session.deserialize(msg_frames)  # raises on a bad signature
        assert msg["msg_type"] == "handshake_request", msg["header"]
        self.request = msg
        return idents, msg["content"]

    def acknowledge(self, envelope: list[bytes], content: dict[str, Any], key: str | None = None) -> None:
        signing = Session(key=(key or self.key).encode(), signature_scheme="hmac-sha256")
        if self.documented:
            frame = json.dumps(content).encode()
            signature = hmac.new((key or self.key).encode(), frame, hashlib.sha256).hexdigest().encode()
            self.sock.send_multipart([*envelope, DELIM, signature, frame])
        else:
            signing.send(self.sock, "handshake_reply", content, parent=self.request)

    def client(self, ports: dict[str, Any]) -> BlockingKernelClient:
        kc = BlockingKernelClient()
        info: dict[str, Any] = {
            "transport": "tcp",
            "ip": "127.0.0.1",
            "key": self.key,
            "signature_scheme": "hmac-sha256",
            **{f"{channel}_port": ports[f"{channel}_port"] for channel in CHANNELS},
        }
        if self.keys is not None:
            info.update(curve_publickey=self.keys[0], curve_secretkey=self.keys[1])
        kc.load_connection_info(info)
        kc.start_channels()
        return kc

    def close(self) -> None:
        self.sock.close(linger=0)
        self.ctx.term()


@pytest.fixture
def runtime_dir(tmp_path: Path) -> Path:
    return tmp_path / "runtime"


@pytest.fixture
def start(kernels: Kernels, runtime_dir: Path) -> Any:
    def launch(path: Path, *argv: str) -> KernelProcess:
        env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(runtime_dir)}
        return kernels.start(*argv, connection=path, env=env, log=True)

    return launch


@pytest.fixture(params=[False, True], ids=["kallichore", "documented"])
def documented(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def _execute(kc: BlockingKernelClient, code: str) -> dict[str, Any]:
    msg_id = kc.execute(code)
    reply = kc.get_shell_msg(timeout=TIMEOUT)
    validate(reply, "execute_reply", msg_id)
    return reply


@pytest.mark.parametrize("curve", [False, True], ids=["plain", "curve"])
def test_handshake_reports_the_bound_ports_and_the_kernel_serves_on_them(
    tmp_path: Path, start: Any, runtime_dir: Path, documented: bool, curve: bool
) -> None:
    launcher = Launcher(tmp_path, documented=documented, curve=curve)
    try:
        path = launcher.registration_file()
        original = path.read_text()
        kernel = start(path)
        envelope, content = launcher.receive()
        ports = {name: content[name] for name in content if name.endswith("_port")}
        assert sorted(ports) == sorted(f"{channel}_port" for channel in CHANNELS)
        assert all(isinstance(port, int) and 0 < port < 65536 for port in ports.values()), ports
        assert len(set(ports.values())) == 5, ports
        assert content.get("kernel_id") == (launcher.kernel_id if documented else None)
        expected_public = launcher.keys[0].decode() if launcher.keys else None
        assert content.get("curve_publickey") == expected_public
        launcher.acknowledge(envelope, {"status": "ok"})
        kc = launcher.client(ports)
        try:
            kc.wait_for_ready(timeout=TIMEOUT)
            reply = _execute(kc, "print('registered')")
            assert reply["content"]["status"] == "ok"
            assert kc.hb_channel.is_beating()
            # The kernel's own connection file, for other clients (`jupyter console --existing`).
            (written,) = runtime_dir.glob("kernel-fastkernel-*.json")
            info = json.loads(written.read_text())
            assert {name: info[name] for name in ports} == ports
            assert "registration_port" not in info
            assert path.read_text() == original, "the launcher's registration file was changed"
            msg_id = kc.shutdown()
            validate(kc.control_channel.get_msg(timeout=TIMEOUT), "shutdown_reply", msg_id)
            assert kernel.wait(TIMEOUT) == 0, kernel.stderr
            assert not written.exists(), "the kernel's connection file outlived it"
        finally:
            kc.stop_channels()
    finally:
        launcher.close()


def test_no_acknowledgement_is_a_clear_error(tmp_path: Path, start: Any, documented: bool) -> None:
    launcher = Launcher(tmp_path, documented=documented)
    try:
        kernel = start(launcher.registration_file(), SHORT_WAIT)
        launcher.receive()  # and never answer
        assert kernel.wait(TIMEOUT) == 2, kernel.stderr
    finally:
        launcher.close()
    assert "no acknowledgement from the registration socket" in kernel.stderr, kernel.stderr
    assert f"tcp://127.0.0.1:{launcher.port}" in kernel.stderr


def test_acknowledgement_with_a_bad_signature_is_refused(
    tmp_path: Path, start: Any, documented: bool
) -> None:
    launcher = Launcher(tmp_path, documented=documented)
    try:
        kernel = start(launcher.registration_file(), SHORT_WAIT)
        envelope, _ = launcher.receive()
        launcher.acknowledge(envelope, {"status": "ok"}, key="not-the-key")
        assert kernel.wait(TIMEOUT) == 2, kernel.stderr
    finally:
        launcher.close()
    assert "JEP 66 handshake failed" in kernel.stderr, kernel.stderr
    assert "signature" in kernel.stderr, kernel.stderr


def test_launcher_that_refuses_the_registration(tmp_path: Path, start: Any) -> None:
    launcher = Launcher(tmp_path, documented=False)
    try:
        kernel = start(launcher.registration_file(), SHORT_WAIT)
        envelope, _ = launcher.receive()
        launcher.acknowledge(envelope, {"status": "error", "error": "ports already taken"})
        assert kernel.wait(TIMEOUT) == 2, kernel.stderr
    finally:
        launcher.close()
    assert "refused the registration: ports already taken" in kernel.stderr, kernel.stderr


def test_unreachable_registration_port_is_a_clear_error(tmp_path: Path, start: Any) -> None:
    launcher = Launcher(tmp_path, documented=False)
    path = launcher.registration_file()
    launcher.close()  # nothing listens on its port any more
    kernel = start(path, SHORT_WAIT)
    assert kernel.wait(TIMEOUT) == 2, kernel.stderr
    assert f"no acknowledgement from the registration socket tcp://127.0.0.1:{launcher.port}" in kernel.stderr


def test_registration_file_that_also_names_ports_is_refused(tmp_path: Path, start: Any) -> None:
    launcher = Launcher(tmp_path, documented=False)
    try:
        kernel = start(launcher.registration_file(shell_port=5555))
        assert kernel.wait(TIMEOUT) == 2, kernel.stderr
    finally:
        launcher.close()
    assert "also names shell_port" in kernel.stderr, kernel.stderr


def test_registration_file_other_users_can_read_is_refused(tmp_path: Path, start: Any) -> None:
    launcher = Launcher(tmp_path, documented=False)
    try:
        path = launcher.registration_file()
        path.chmod(0o644)  # as a launcher writing it with the default umask leaves it
        kernel = start(path)
        assert kernel.wait(TIMEOUT) == 2, kernel.stderr
        assert launcher.sock.poll(0) == 0, "a refused kernel registered anyway"
    finally:
        launcher.close()
    assert "open to other users" in kernel.stderr and "chmod 600" in kernel.stderr, kernel.stderr
