"""Launcher mode against a gateway's response listener written here from the protocol.

The protocol (gateway_provisioners 0.5 / Enterprise Gateway 3.3: their launchers' ``_encrypt``,
their ``ResponseManager._decode_payload`` and ``_send_listener_request``): the kernel connects
to ``--response-address`` and writes base64(JSON ``{"version": 1, "key": base64(RSA-PKCS#1 v1.5
(aes_key)), "conn_info": base64(AES-128-ECB(PKCS#7(connection JSON)))}``), then closes. The
gateway then reaches the kernel's comm port with one JSON object per connection.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import padding, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric import padding as asymmetric
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from tests.harness import stream_text
from tests.kernels import (
    CHANNELS,
    TIMEOUT,
    KernelProcess,
    Kernels,
    ValidatingClient,
    pid_alive,
    write_connection_file,
)
from tests.spec import validate

pytestmark = pytest.mark.timeout(90)


class Gateway:
    """The gateway's side: an RSA key pair, the response socket, the comm port client."""

    def __init__(self) -> None:
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
        der = self.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.public_key = base64.b64encode(der).decode()  # a PEM body without its header lines
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(TIMEOUT)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.kernel_id = str(uuid.uuid4())

    def argv(self, **changes: str) -> list[str]:
        options = {
            "kernel-id": self.kernel_id,
            "response-address": self.address,
            "public-key": self.public_key,
            "port-range": "0..0",
            "transport-encryption": "{transport_encryption}",  # as an older gateway leaves it
            "spark-context-initialization-mode": "none",
            "cluster-type": "spark",
            # A kernel that Jupyter started on the gateway's host binds every interface by
            # default, as these are (JPY_PARENT_PID); test_the_default_address... covers it.
            "ip": "127.0.0.1",
            **changes,
        }
        return [arg for name, value in options.items() for arg in (f"--{name}", value)]

    def receive(self) -> dict[str, Any]:
        """The next response, read to the end of its stream, decrypted."""
        conn, _ = self.sock.accept()
        with conn:
            conn.settimeout(TIMEOUT)
            data = b""
            while chunk := conn.recv(1024):
                data += chunk
        payload = json.loads(base64.b64decode(data))
        assert payload["version"] == 1, payload
        aes_key = self.private_key.decrypt(base64.b64decode(payload["key"]), asymmetric.PKCS1v15())
        assert len(aes_key) == 16
        decryptor = Cipher(algorithms.AES(aes_key), modes.ECB()).decryptor()
        padded = decryptor.update(base64.b64decode(payload["conn_info"])) + decryptor.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        info: dict[str, Any] = json.loads(unpadder.update(padded) + unpadder.finalize())
        return info

    def close(self) -> None:
        self.sock.close()


def send_to_comm_port(info: dict[str, Any], request: dict[str, Any]) -> None:
    """As the gateway's ``_send_listener_request``: connect, send the JSON, close."""
    with socket.create_connection((info["ip"], info["comm_port"]), timeout=TIMEOUT) as sock:
        sock.sendall(json.dumps(request).encode())
        sock.shutdown(socket.SHUT_WR)


def comm_port_refuses(info: dict[str, Any]) -> bool:
    try:
        socket.create_connection((info["ip"], info["comm_port"]), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def client(info: dict[str, Any]) -> ValidatingClient:
    kc = ValidatingClient()
    kc.load_connection_info(info)
    kc.start_channels()
    kc.wait_for_ready(timeout=TIMEOUT)
    return kc


def execute(kc: ValidatingClient, code: str) -> tuple[dict[str, Any], str]:
    outputs: list[dict[str, Any]] = []
    reply = kc.execute_interactive(code, timeout=TIMEOUT, output_hook=outputs.append)
    return reply, stream_text(outputs)


def shutdown(kc: ValidatingClient, kernel: KernelProcess) -> None:
    msg_id = kc.shutdown()
    validate(kc.control_channel.get_msg(timeout=TIMEOUT), "shutdown_reply", msg_id)
    if kernel.launcher is None:
        assert kernel.wait(TIMEOUT) == 0, kernel.stderr
    else:  # the process the test started is the launcher stand-in, which outlives the kernel
        wait_gone(kernel.pid)


def run_then_shut_down(info: dict[str, Any], kernel: KernelProcess, code: str) -> str:
    """Connect to the kernel ``info`` reports, run ``code``, shut the kernel down; its stdout."""
    kc = client(info)
    try:
        _, out = execute(kc, code)
        shutdown(kc, kernel)
    finally:
        kc.stop_channels()
    return out


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), **extra)
    env.pop("SSH_CONNECTION", None)  # the kernel binds the address it was reached at
    return env


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    gw = Gateway()
    yield gw
    gw.close()


def launch(kernels: Kernels, tmp_path: Path, gateway: Gateway, **changes: str) -> KernelProcess:
    return kernels.start(*gateway.argv(**changes), connection=None, env=_env(tmp_path), log=True)


def wait_gone(pid: int) -> None:
    deadline = time.monotonic() + TIMEOUT
    while pid_alive(pid):
        assert time.monotonic() < deadline, f"process {pid} is still running"
        time.sleep(0.05)


@pytest.mark.parametrize("encryption", ["", "required"], ids=["plain", "curve"])
def test_the_kernel_reports_its_ports_and_serves_on_them(
    kernels: Kernels, tmp_path: Path, gateway: Gateway, encryption: str
) -> None:
    kernel = launch(kernels, tmp_path, gateway, **{"transport-encryption": encryption})
    info = gateway.receive()
    assert info["kernel_id"] == gateway.kernel_id
    assert info["pid"] == kernel.pid and info["pgid"] == os.getpgid(kernel.pid)
    ports = [info[f"{channel}_port"] for channel in CHANNELS] + [info["comm_port"]]
    assert len(set(ports)) == 6 and all(0 < port < 65536 for port in ports), info
    assert info["ip"] == "127.0.0.1"
    assert info["transport"] == "tcp" and info["signature_scheme"] == "hmac-sha256" and info["key"]
    assert bool(info.get("curve_publickey")) == (encryption == "required"), info
    kc = client(info)
    try:
        reply, out = execute(kc, "print('hello from', __name__)")
        assert reply["content"]["status"] == "ok" and out == "hello from __main__\n"
        send_to_comm_port(info, {"signum": 0})  # the gateway's liveness poll: nothing happens
        reply, out = execute(kc, "print('still here')")
        assert out == "still here\n"
        shutdown(kc, kernel)
    finally:
        kc.stop_channels()
    assert comm_port_refuses(info)


def test_the_default_address_is_the_one_that_routes_to_the_gateway(
    kernels: Kernels, tmp_path: Path, gateway: Gateway
) -> None:
    # Started as in a container or on a YARN node: not by a Jupyter process, not over SSH.
    argv = gateway.argv(ip="")
    kernel = kernels.start(*argv, connection=None, env=_env(tmp_path), log=True, launcher="direct")
    info = gateway.receive()
    assert info["ip"] == "127.0.0.1", info  # the gateway listens on loopback: not every interface
    assert info["pid"] == kernel.pid
    assert run_then_shut_down(info, kernel, "print('routed')") == "routed\n"


def test_the_plain_start_imports_no_crypto(kernels: Kernels, tmp_path: Path) -> None:
    kc = kernels.start(env=_env(tmp_path)).client()
    reply, out = execute(
        kc,
        "import sys; print([m for m in sys.modules if 'crypt' in m or 'launcher' in m or 'commport' in m])",
    )
    assert out == "[]\n"


def test_comm_port_interrupts_and_shutdown_ends_the_kernel_and_its_children(
    kernels: Kernels, tmp_path: Path, gateway: Gateway
) -> None:
    kernel = launch(kernels, tmp_path, gateway)
    info = gateway.receive()
    kc = client(info)
    try:
        # stop_on_error off: the next request may reach the kernel before the interrupted cell's
        # queue is cleared, and must run.
        msg_id = kc.execute("import time\nprint('sleeping', flush=True)\ntime.sleep(60)", stop_on_error=False)
        while True:  # wait until the cell runs
            msg = kc.get_iopub_msg(timeout=TIMEOUT)
            if msg["msg_type"] == "stream" and msg["parent_header"].get("msg_id") == msg_id:
                break
        send_to_comm_port(info, {"signum": 2})
        reply = kc.get_shell_msg(timeout=TIMEOUT)
        validate(reply, "execute_reply", msg_id)
        assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "KeyboardInterrupt"
        reply, out = execute(
            kc, "import subprocess\nchild = subprocess.Popen(['sleep', '300'])\nprint(child.pid)"
        )
        assert reply["content"]["status"] == "ok" and out.strip().isdigit(), (reply["content"], out)
        child = int(out)
        send_to_comm_port(info, {"shutdown": 1})
        assert kernel.wait(TIMEOUT) == 0, kernel.stderr
    finally:
        kc.stop_channels()
    wait_gone(child)
    assert comm_port_refuses(info), "the comm port still listens after the kernel ended"
    assert "comm port: shutdown requested" in kernel.stderr


def test_sigterm_through_the_comm_port_stops_the_kernel(
    kernels: Kernels, tmp_path: Path, gateway: Gateway
) -> None:
    kernel = launch(kernels, tmp_path, gateway)
    info = gateway.receive()
    send_to_comm_port(info, {"garbage": True})  # ignored
    send_to_comm_port(info, {"signum": "x"})  # ignored, with a warning
    send_to_comm_port(info, {"signum": 15})
    assert kernel.wait(TIMEOUT) == 0, kernel.stderr
    assert "ignoring signum 'x'" in kernel.stderr


def _free_port_block(count: int) -> int:
    """The first port of ``count`` consecutive ports that are free on 127.0.0.1 just now."""
    for base in range(20000 + os.getpid() % 20000, 60000, count):
        held = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                held.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
    raise AssertionError("no free block of ports")


def test_every_port_comes_from_the_port_range(kernels: Kernels, tmp_path: Path, gateway: Gateway) -> None:
    base = _free_port_block(8)
    kernel = launch(kernels, tmp_path, gateway, **{"port-range": f"{base}..{base + 7}"})
    info = gateway.receive()
    ports = [info[f"{channel}_port"] for channel in CHANNELS] + [info["comm_port"]]
    assert all(base <= port <= base + 7 for port in ports), (base, ports)
    assert run_then_shut_down(info, kernel, "print(6 * 7)") == "42\n"


def test_a_full_port_range_is_a_clear_error(kernels: Kernels, tmp_path: Path, gateway: Gateway) -> None:
    base = _free_port_block(6)
    held = [socket.socket() for _ in range(6)]
    try:
        for offset, sock in enumerate(held):
            sock.bind(("127.0.0.1", base + offset))  # every port of the range is taken
        kernel = launch(kernels, tmp_path, gateway, **{"port-range": f"{base}..{base + 5}"})
        assert kernel.wait(TIMEOUT) == 2, kernel.stderr
    finally:
        for sock in held:
            sock.close()
    assert f"in the port range {base}..{base + 5}: all 6 ports are in use" in kernel.stderr, kernel.stderr
    gateway.sock.settimeout(0)
    with pytest.raises(BlockingIOError):
        gateway.sock.accept()  # nothing was sent


def test_a_taken_port_is_a_clear_error_in_a_plain_start_too(kernels: Kernels, tmp_path: Path) -> None:
    # The same binding errors outside launcher mode: a connection file naming a taken port.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        path = tmp_path / "kernel.json"
        write_connection_file(path, shell_port=taken.getsockname()[1])
        kernel = kernels.start(connection=path, env=_env(tmp_path), log=True)
        assert kernel.wait(TIMEOUT) == 2, kernel.stderr
    assert "cannot bind the kernel's sockets on 127.0.0.1" in kernel.stderr, kernel.stderr
    assert "Address already in use" in kernel.stderr, kernel.stderr


@pytest.mark.parametrize(
    ("public_key", "message"),
    [
        ("not base64!", "--public-key is not a base64 RSA public key"),
        (base64.b64encode(b"not a key").decode(), "--public-key is not a base64 RSA public key"),
        (
            base64.b64encode(
                ec.generate_private_key(ec.SECP256R1())
                .public_key()
                .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
            ).decode(),
            "--public-key must be an RSA key",
        ),
    ],
    ids=["not-base64", "not-a-key", "not-rsa"],
)
def test_a_bad_public_key_is_a_clear_error(
    kernels: Kernels, tmp_path: Path, gateway: Gateway, public_key: str, message: str
) -> None:
    kernel = launch(kernels, tmp_path, gateway, **{"public-key": public_key})
    assert kernel.wait(TIMEOUT) == 2, kernel.stderr
    assert message in kernel.stderr, kernel.stderr


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("response-address", "127.0.0.1", "--response-address must be IP:PORT"),
        ("port-range", "9000-9100", "--port-range must be LOW..HIGH"),
        ("port-range", "9100..9000", "need 0 < LOW <= HIGH <= 65535"),
        ("port-range", "9000..9004", "--port-range 9000..9004 has 5 ports, too few: the kernel binds 6"),
        ("kernel-id", "{kernel_id}", "launcher mode needs --kernel-id"),
    ],
)
def test_bad_launcher_arguments_are_clear_errors(
    kernels: Kernels, tmp_path: Path, gateway: Gateway, option: str, value: str, message: str
) -> None:
    kernel = launch(kernels, tmp_path, gateway, **{option: value})
    assert kernel.wait(TIMEOUT) == 2, kernel.stderr
    assert message in kernel.stderr, kernel.stderr


def test_an_unreachable_response_address_is_a_clear_error(
    kernels: Kernels, tmp_path: Path, gateway: Gateway
) -> None:
    address = gateway.address
    gateway.close()  # nothing listens there any more
    kernel = launch(kernels, tmp_path, gateway)
    assert kernel.wait(TIMEOUT) == 2, kernel.stderr
    assert f"cannot send the connection info to the response address {address}" in kernel.stderr
    assert "Connection refused" in kernel.stderr, kernel.stderr


def test_without_cryptography_launcher_mode_says_what_to_install(
    kernels: Kernels, tmp_path: Path, gateway: Gateway
) -> None:
    shadow = tmp_path / "shadow" / "cryptography"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('no cryptography here')\n")
    env = _env(tmp_path, PYTHONPATH=os.pathsep.join([str(shadow.parent), *sys.path]))
    kernel = kernels.start(*gateway.argv(), connection=None, env=env, log=True)
    assert kernel.wait(TIMEOUT) == 2, kernel.stderr
    assert "pip install 'fastkernel[remote]'" in kernel.stderr, kernel.stderr


def test_the_container_entry_point_passes_the_launchers_environment(tmp_path: Path, gateway: Gateway) -> None:
    # docker/start-fastkernel.sh, as gateway_provisioners' container launchers start the image:
    # the launcher arguments in the environment (this test's Python first on PATH, as in the image).
    script = Path(__file__).resolve().parents[2] / "docker" / "start-fastkernel.sh"
    env = _env(
        tmp_path,
        PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
        KERNEL_ID=gateway.kernel_id,
        RESPONSE_ADDRESS=gateway.address,
        PUBLIC_KEY=gateway.public_key,
        TRANSPORT_ENCRYPTION="auto",
    )
    kernel = KernelProcess(
        ["sh", str(script)], connection_file=None, env=env, log=tmp_path / "kernel.log", launcher="direct"
    )
    try:
        info = gateway.receive()
        assert info["kernel_id"] == gateway.kernel_id and info["pid"] == kernel.pid
        assert len(info["curve_publickey"]) == 40  # TRANSPORT_ENCRYPTION=auto
        assert run_then_shut_down(info, kernel, "print('in the image')") == "in the image\n"
    finally:
        kernel.close()
