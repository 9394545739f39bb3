"""The kernel inside a rootfs made by tools/image_rootfs.sh: idle RSS, and the image's entry point.

    sudo .venv/bin/python tools/image_measure.py ROOTFS     # ROOTFS/proc mounted

Run as root (chroot) by image_rootfs.sh. The kernel runs inside the rootfs as uid 1000 (the
image's user) with the image's environment; the clients run here, outside, and reach it on
loopback (a chroot shares the network namespace).

- A plain start (`python -m fastkernel -f FILE`), three times: after one cell, VmRSS from
  /proc/PID/status and Pss / private memory from /proc/PID/smaps_rollup.
- The entry point as a container runtime starts it (`tini -- start-fastkernel`, PID 1 of a
  PID namespace of its own) with the launcher's environment, answered by the response
  listener of tests/e2e/test_launcher.py: one cell, its memory, then `{"shutdown": 1}` on the
  comm port, and the container's exit.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.connect import write_connection_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.e2e.test_launcher import Gateway, _free_port_block, send_to_comm_port  # noqa: E402

TIMEOUT = 60
USER = "1000:100"
# The image's ENV and WORKDIR (docker/Dockerfile).
IMAGE_ENV = [
    "PATH=/opt/fastkernel/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "PYTHONDONTWRITEBYTECODE=1",
    "PYTHONUNBUFFERED=1",
    "HOME=/home/jovyan",
]
CELL = "import os; print(os.getuid(), os.getgid(), os.getpid())"


def in_image(rootfs: Path, *argv: str, **env: str) -> list[str]:
    extra = [f"{name}={value}" for name, value in env.items()]
    return [
        "chroot",
        f"--userspec={USER}",
        str(rootfs),
        "/usr/bin/env",
        "-i",
        "-C",
        "/home/jovyan",
        *IMAGE_ENV,
        *extra,
        *argv,
    ]


def memory(pid: int) -> dict[str, float]:
    """Once VmRSS holds still for a second (the reply can come before the kernel is idle)."""
    last, steady_since = 0.0, time.monotonic()
    deadline = steady_since + TIMEOUT
    while time.monotonic() < deadline:
        figures = memory_now(pid)
        if figures["VmRSS"] != last:
            last, steady_since = figures["VmRSS"], time.monotonic()
        elif time.monotonic() - steady_since >= 1:
            return figures
        time.sleep(0.1)
    raise AssertionError(f"the memory of {pid} never settled")


def memory_now(pid: int) -> dict[str, float]:
    """MiB: VmRSS, and Pss and private memory (clean + dirty) from smaps_rollup."""
    fields: dict[str, float] = {}
    for name in ("status", "smaps_rollup"):
        for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
            key, _, value = line.partition(":")
            if value.strip().endswith("kB"):
                fields[key] = int(value.split()[0]) / 1024
    return {
        "VmRSS": fields["VmRSS"],
        "Pss": fields["Pss"],
        "Private": fields["Private_Clean"] + fields["Private_Dirty"],
    }


def uids(pid: int) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no Uid line for {pid}")


def run_cell(kc: BlockingKernelClient) -> str:
    out: list[str] = []

    def hook(msg: dict[str, Any]) -> None:
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])

    reply = kc.execute_interactive(CELL, timeout=TIMEOUT, output_hook=hook)
    assert reply["content"]["status"] == "ok", reply["content"]
    return "".join(out).strip()


def wait_exit(proc: subprocess.Popen[bytes]) -> int:
    try:
        return proc.wait(TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


def plain_start(rootfs: Path, run: int) -> dict[str, float]:
    connection = rootfs / "tmp" / f"kernel-measure-{run}.json"
    write_connection_file(str(connection), ip="127.0.0.1", key=uuid.uuid4().hex.encode())
    os.chown(connection, 1000, 100)
    proc = subprocess.Popen(in_image(rootfs, "python", "-m", "fastkernel", "-f", f"/tmp/{connection.name}"))
    kc = BlockingKernelClient()
    kc.load_connection_file(str(connection))
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=TIMEOUT)
        out = run_cell(kc)
        figures = memory(proc.pid)
        print(f"plain -f start {run}: cell printed {out!r}; uid/euid/suid/fsuid {uids(proc.pid)}")
        kc.shutdown()
        print(f"  exit code {wait_exit(proc)}")
        return figures
    finally:
        kc.stop_channels()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        connection.unlink()


def children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def wait_for_child(pid: int) -> int:
    deadline = time.monotonic() + TIMEOUT
    while not (found := children(pid)):
        assert time.monotonic() < deadline, f"process {pid} started no child"
        time.sleep(0.05)
    return found[0]


def namespace_pid(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("NSpid:"):
            return int(line.split()[-1])
    raise AssertionError(f"no NSpid line for {pid}")


def entry_point(rootfs: Path) -> dict[str, float]:
    gateway = Gateway()
    first = _free_port_block(10)
    env = {
        "KERNEL_ID": gateway.kernel_id,
        "RESPONSE_ADDRESS": gateway.address,
        "PUBLIC_KEY": gateway.public_key,
        "PORT_RANGE": f"{first}..{first + 9}",
    }
    # A PID namespace of its own, as in a container: tini is its PID 1, the kernel its child.
    # --kill-child: should this tool fail, ending unshare ends the namespace and all in it.
    argv = ["unshare", "--pid", "--fork", "--kill-child", f"--mount-proc={rootfs}/proc"]
    container = subprocess.Popen([*argv, *in_image(rootfs, "tini", "--", "start-fastkernel", **env)])
    try:
        info = gateway.receive()
        tini = wait_for_child(container.pid)
        kernel = wait_for_child(tini)
        ports = sorted(info[f"{channel}_port"] for channel in ("shell", "iopub", "stdin", "control", "hb"))
        print(f"entry point: kernel pid {kernel} here, {namespace_pid(kernel)} in its namespace,")
        print(f"  reported {info['pid']}; ports {ports}, comm {info['comm_port']}, range {env['PORT_RANGE']}")
        kc = BlockingKernelClient()
        kc.load_connection_info(info)
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=TIMEOUT)
            out = run_cell(kc)
            figures = memory(kernel)
            print(f"  cell printed {out!r}; uid/euid/suid/fsuid {uids(kernel)}; tini {uids(tini)}")
            started = time.monotonic()
            send_to_comm_port(info, {"shutdown": 1})
            code = wait_exit(container)
            took = time.monotonic() - started
            gone = not Path(f"/proc/{kernel}").exists()
            print(
                f'  {{"shutdown": 1}} on the comm port: exit {code} after {took:.2f} s; kernel gone: {gone}'
            )
        finally:
            kc.stop_channels()
        return figures
    finally:
        gateway.close()
        if container.poll() is None:
            container.kill()
            container.wait()


def show(label: str, figures: dict[str, float]) -> None:
    rss, pss, private = figures["VmRSS"], figures["Pss"], figures["Private"]
    print(f"  {label}: VmRSS {rss:.1f} MiB, Pss {pss:.1f} MiB, private {private:.1f} MiB")


def main() -> None:
    rootfs = Path(sys.argv[1])
    assert (rootfs / "proc" / "self").exists(), f"mount proc on {rootfs}/proc first"
    runs = [plain_start(rootfs, run) for run in (1, 2, 3)]
    launcher = entry_point(rootfs)
    print("idle memory after one cell:")
    for number, figures in enumerate(runs, 1):
        show(f"plain -f start {number}", figures)
    show("entry point, launcher mode", launcher)


if __name__ == "__main__":
    main()
