"""A null kernel: the floor that the benchmark client and this machine allow.

One thread, no interpreter: it answers every shell or control request at once with
``status: busy``, (for executes) ``execute_input``, a bare ``ok`` reply and ``status: idle``,
signed like any kernel. Its round trip and executes/s are what the client, pyzmq and the
machine cost on their own, so a kernel close to them is limited by those, not by itself.

Run as ``python benchmarks/null_kernel.py -f CONNECTION_FILE``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
import uuid

import zmq

DELIM = b"<IDS|MSG>"


def main() -> None:
    with open(sys.argv[sys.argv.index("-f") + 1]) as f:
        cfg = json.load(f)
    key = cfg["key"].encode()
    ctx = zmq.Context()
    base = f"{cfg['transport']}://{cfg['ip']}:"
    shell, control, iopub = ctx.socket(zmq.ROUTER), ctx.socket(zmq.ROUTER), ctx.socket(zmq.PUB)
    shell.bind(base + str(cfg["shell_port"]))
    control.bind(base + str(cfg["control_port"]))
    iopub.bind(base + str(cfg["iopub_port"]))
    iopub.sndhwm = 0
    session = uuid.uuid4().hex

    def frames(msg_type: str, parent: bytes, content: dict) -> list[bytes]:
        header = {"msg_id": uuid.uuid4().hex, "msg_type": msg_type, "session": session}
        header.update(username="null", date="1970-01-01T00:00:00Z", version="5.3")
        parts = [json.dumps(header).encode(), parent, b"{}", json.dumps(content).encode()]
        mac = hmac.new(key, digestmod=hashlib.sha256)
        for part in parts:
            mac.update(part)
        return [DELIM, mac.hexdigest().encode(), *parts]

    poller = zmq.Poller()
    poller.register(shell, zmq.POLLIN)
    poller.register(control, zmq.POLLIN)
    count = 0
    while True:
        for sock, _ in poller.poll():
            request = sock.recv_multipart()
            i = request.index(DELIM)
            idents, parent = request[:i], request[i + 2]
            msg_type = json.loads(parent)["msg_type"]
            iopub.send_multipart([b"kernel.status", *frames("status", parent, {"execution_state": "busy"})])
            content: dict = {"status": "ok"}
            if msg_type == "execute_request":
                count += 1
                content.update(execution_count=count, user_expressions={}, payload=[])
                code = {"code": "", "execution_count": count}
                iopub.send_multipart([b"kernel.execute_input", *frames("execute_input", parent, code)])
            reply_type = msg_type.rsplit("_", 1)[0] + "_reply"
            sock.send_multipart([*idents, *frames(reply_type, parent, content)])
            iopub.send_multipart([b"kernel.status", *frames("status", parent, {"execution_state": "idle"})])
            if msg_type == "shutdown_request":
                for s in (shell, control, iopub):
                    s.close(linger=1000)
                ctx.term()
                return


if __name__ == "__main__":
    main()
