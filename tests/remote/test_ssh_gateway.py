"""fastkernel as a remote kernel: jupyter_server with gateway_provisioners' DistributedProvisioner
launches it over SSH (Debian's sshd on 127.0.0.2, key auth; `make remote-deps` installs it).

Everything is real: the kernelspec is the one ``python -m fastkernel install --ssh-hosts``
writes, the provisioner SSHes in and runs its argv, the kernel reports its ports to the
provisioner's response listener (RSA/AES) and takes signals on its comm port; the test drives
the server's REST API and channels websocket as a frontend does.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.frontends.conftest import child_pids, free_port, wait_for, wait_pid_gone
from tests.frontends.test_server import Channels, Server, spec_view, start_server, stop_server
from tests.spec import validate

pytestmark = pytest.mark.timeout(180)

SSHD = "/usr/sbin/sshd"
SSH_HOST = "127.0.0.2"  # a second loopback address: not local to the provisioner, so it uses SSH
SSH_PORT = 2222
TIMEOUT = 30


@dataclass
class Sshd:
    proc: subprocess.Popen[bytes]
    port: int
    home: Path  # the gateway's HOME: its client key and known_hosts in .ssh
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _listening(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return False
    return True


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    if not os.access(SSHD, os.X_OK) or shutil.which("ssh-keygen") is None:
        pytest.fail(
            f"{SSHD} and ssh-keygen are needed: run `make remote-deps` (apt-get install openssh-server)"
        )
    root = tmp_path_factory.mktemp("sshd")
    home = root / "home"
    (home / ".ssh").mkdir(parents=True, mode=0o700)
    for key in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / key)], check=True)
    shutil.copy(root / "client_key", home / ".ssh" / "id_ed25519")
    (home / ".ssh" / "id_ed25519").chmod(0o600)
    (root / "authorized_keys").write_text((root / "client_key.pub").read_text())
    port = SSH_PORT if _port_free(SSH_HOST, SSH_PORT) else free_port()  # 2222 taken: another run's
    host_key = (root / "host_key.pub").read_text().split()
    (home / ".ssh" / "known_hosts").write_text(f"[{SSH_HOST}]:{port} {host_key[0]} {host_key[1]}\n")
    (root / "sshd_config").write_text(
        f"ListenAddress {SSH_HOST}:{port}\n"
        f"HostKey {root / 'host_key'}\n"
        f"PidFile {root / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {root / 'authorized_keys'}\n"
        "PubkeyAuthentication yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n"
        f"AllowUsers {getpass.getuser()}\n"
    )
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation dir
    log_path = root / "sshd.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(root / "sshd_config")], stdout=log, stderr=subprocess.STDOUT
        )
    server = Sshd(proc, port, home, log_path)
    try:
        wait_for(lambda: _listening(SSH_HOST, port) or proc.poll() is not None, TIMEOUT, "sshd to listen")
        assert proc.poll() is None, f"sshd exited:\n{server.log()}"
        yield server
    finally:
        proc.terminate()  # its sessions end with it
        proc.wait(timeout=TIMEOUT)


def _install_spec(tmp_path: Path, host: str = SSH_HOST) -> str:
    """The kernelspec `python -m fastkernel install --ssh-hosts` writes, in a prefix of the test's."""
    name = "fastkernel-ssh-test"
    env = {
        "JUPYTER_DATA_DIR": str(tmp_path / "kernel-data"),  # the kernel's history, on the "remote" host
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "kernel-runtime"),
    }
    env_args = [arg for key, value in env.items() for arg in ("--env", key, value)]
    subprocess.run(
        [sys.executable, "-m", "fastkernel", "install", "--prefix", str(tmp_path / "prefix"), "--name", name]
        + ["--ssh-hosts", host, *env_args],
        check=True,
        capture_output=True,
    )
    spec = json.loads((tmp_path / "prefix/share/jupyter/kernels" / name / "kernel.json").read_text())
    assert spec["metadata"]["kernel_provisioner"] == {
        "provisioner_name": "distributed-provisioner",
        "config": {"remote_hosts": [host]},
    }
    return name


def _start_server(tmp_path: Path, sshd: Sshd | None, *options: str) -> Server:
    return start_server(
        tmp_path,
        "--debug",
        *options,
        HOME=str(sshd.home if sshd else tmp_path),  # paramiko's keys and known_hosts
        JUPYTER_PATH=os.pathsep.join([str(tmp_path / "prefix/share/jupyter"), os.environ["JUPYTER_PATH"]]),
        GP_SSH_PORT=str(sshd.port if sshd else SSH_PORT),
        GP_REMOTE_USER=getpass.getuser(),
        GP_KERNEL_LOG_DIR=str(tmp_path),
        GP_RESPONSE_IP="127.0.0.1",
        GP_RESPONSE_PORT=str(free_port()),
        GP_UNAUTHORIZED_USERS="",  # root is refused by default, and `make test` runs as root in CI
    )


def _processes_naming(text: str) -> list[int]:
    """Processes whose command line contains ``text`` (Linux procfs)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _execute_value(channels: Channels, code: str) -> str:
    reply, iopub = channels.execute(code)
    assert reply["content"]["status"] == "ok", reply
    (result,) = [m for m in iopub if m["msg_type"] == "execute_result"]
    return str(result["content"]["data"]["text/plain"])


def _interrupt_a_sleeping_cell(server: Server, channels: Channels, kernel_id: str) -> None:
    # stop_on_error off: the next cell may reach the kernel before this one's queue is cleared.
    code = "import time\nprint('zz', flush=True)\ntime.sleep(120)"
    msg_id = channels.send("shell", "execute_request", {"code": code, "stop_on_error": False})
    deadline = time.monotonic() + TIMEOUT
    while True:  # until the cell runs
        msg = channels.recv(deadline)
        if msg["msg_type"] == "stream" and msg["parent_header"].get("msg_id") == msg_id:
            break
    status, _ = server.request("POST", f"/api/kernels/{kernel_id}/interrupt")
    assert status == 204
    while True:
        msg = channels.recv(deadline)
        if msg["channel"] == "shell" and msg["parent_header"].get("msg_id") == msg_id:
            validate(spec_view(msg), "execute_reply", msg_id)
            assert msg["content"]["status"] == "error" and msg["content"]["ename"] == "KeyboardInterrupt"
            return


def _input_round_trip(channels: Channels) -> None:
    msg_id = channels.send(
        "shell",
        "execute_request",
        {"code": "name = input('who? ')\nprint('hello', name)", "allow_stdin": True},
    )
    deadline = time.monotonic() + TIMEOUT
    while True:
        msg = channels.recv(deadline)
        if msg["channel"] == "stdin":
            validate(spec_view(msg), "input_request")
            assert msg["content"]["prompt"] == "who? "
            channels.send("stdin", "input_reply", {"value": "gateway"})
            break
    output, reply = "", None
    while reply is None:
        msg = channels.recv(deadline)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            output += msg["content"]["text"]
        elif msg["channel"] == "shell":
            reply = msg
    assert reply["content"]["status"] == "ok", reply
    assert output == "hello gateway\n"


@pytest.mark.parametrize("encryption", ["disabled", "required"])
def test_a_kernel_launched_over_ssh_by_the_distributed_provisioner(
    tmp_path: Path, sshd: Sshd, encryption: str
) -> None:
    name = _install_spec(tmp_path)
    server = _start_server(tmp_path, sshd, f"--MappingKernelManager.transport_encryption={encryption}")
    kernel_id = None
    pids: list[int] = []
    try:
        status, kernel = server.request("POST", "/api/kernels", {"name": name})
        assert status == 201, (status, kernel, server.log())
        kernel_id = kernel["id"]
        channels = Channels(server, kernel_id)
        try:
            # Run through sshd on 127.0.0.2, bound to the address it was reached at.
            where = _execute_value(
                channels, "import os; os.environ['SSH_CONNECTION'].split()[2], os.getpid()"
            )
            assert where.startswith(f"('{SSH_HOST}', "), where
            pids.append(int(where.rsplit(" ", 1)[1].rstrip(")")))
            log = (tmp_path / f"kernel-{kernel_id}.log").read_text()
            assert f"on {SSH_HOST} to the gateway at 127.0.0.1:" in log, log
            # The comm port listens on the address the kernel was reached at only.
            comm_port = int(log.split(" and comm port ", 1)[1].split()[0])
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", comm_port), timeout=TIMEOUT).close()
            assert ("(CurveZMQ on)" in log) == (encryption == "required"), log

            reply, iopub = channels.execute("print('over ssh')\n6 * 7")
            assert reply["content"]["status"] == "ok"
            assert [m["msg_type"] for m in iopub] == [
                "status",
                "execute_input",
                "stream",
                "execute_result",
                "status",
            ]
            assert iopub[2]["content"] == {"name": "stdout", "text": "over ssh\n"}
            assert iopub[3]["content"]["data"]["text/plain"] == "42"

            reply, iopub = channels.execute("undefined_name")
            assert reply["content"]["ename"] == "NameError"
            assert [m["msg_type"] for m in iopub] == ["status", "execute_input", "error", "status"]

            _input_round_trip(channels)
            assert _execute_value(channels, "'name' in dir()") == "True"
            _interrupt_a_sleeping_cell(server, channels, kernel_id)
            assert _execute_value(channels, "'alive after the interrupt'") == "'alive after the interrupt'"

            status, _ = server.request("POST", f"/api/kernels/{kernel_id}/restart")
            assert status == 200, server.log()
            assert wait_pid_gone(pids[0], TIMEOUT), "the first kernel outlived its restart"
            # As JupyterLab does after a restart: the new kernel has new ports.
            channels.close()
            channels = Channels(server, kernel_id)
            pids.append(int(_execute_value(channels, "import os; os.getpid()")))
            assert pids[1] != pids[0]
            assert _execute_value(channels, "'name' in dir()") == "False"  # a fresh namespace
        finally:
            channels.close()
        status, body = server.request("DELETE", f"/api/kernels/{kernel_id}")
        assert status == 204, (status, body)
        assert wait_pid_gone(pids[-1], TIMEOUT), "the kernel still runs after DELETE"
        wait_for(lambda: not _processes_naming(kernel_id), TIMEOUT, "no process naming the kernel id")
        wait_for(lambda: not child_pids(sshd.proc.pid), TIMEOUT, "sshd's sessions to end")
        status, kernels = server.request("GET", "/api/kernels")
        assert status == 200 and kernels == []
    finally:
        stop_server(server)
        for pid in [*pids, *(_processes_naming(kernel_id) if kernel_id else [])]:
            if not wait_pid_gone(pid, 0.1):
                os.kill(pid, signal.SIGKILL)


def test_the_distributed_provisioners_local_case(tmp_path: Path) -> None:
    # Its default host, localhost, is this host: it starts the kernel itself, without SSH, and
    # connects to 127.0.0.1; the kernel (JPY_PARENT_PID its parent) binds every interface.
    name = _install_spec(tmp_path, host="localhost")
    server = _start_server(tmp_path, None)
    pid = None
    try:
        status, kernel = server.request("POST", "/api/kernels", {"name": name})
        assert status == 201, (status, kernel, server.log())
        kernel_id = kernel["id"]
        channels = Channels(server, kernel_id)
        try:
            pid = int(_execute_value(channels, "import os; os.getpid()"))
            assert pid in child_pids(server.proc.pid), "not started by the server itself"
            _interrupt_a_sleeping_cell(server, channels, kernel_id)  # through the comm port
            assert _execute_value(channels, "6 * 7") == "42"
        finally:
            channels.close()
        status, body = server.request("DELETE", f"/api/kernels/{kernel_id}")
        assert status == 204, (status, body)
        assert wait_pid_gone(pid, TIMEOUT), "the kernel still runs after DELETE"
        log = (tmp_path / f"kernel-{kernel_id}.log").read_text()
        assert "on 0.0.0.0 to the gateway" in log and "comm port: interrupt" in log, log
    finally:
        stop_server(server)
        if pid is not None and not wait_pid_gone(pid, 0.1):
            os.kill(pid, signal.SIGKILL)
