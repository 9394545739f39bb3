"""Connection files: reading what frontends write, clear errors, private files, runtime dir."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.connect import write_connection_file as jc_write_connection_file

from fastkernel.transport.connection import (
    CHANNELS,
    ConnectionError_,
    ConnectionInfo,
    read_connection_file,
    runtime_dir,
    world_readable,
    write_connection_file,
)

PORTS = {"shell_port": 5001, "iopub_port": 5002, "stdin_port": 5003, "control_port": 5004, "hb_port": 5005}


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_reads_tcp_connection_file(tmp_path: Path) -> None:
    path = write_json(
        tmp_path / "kernel.json",
        {
            **PORTS,
            "transport": "tcp",
            "ip": "127.0.0.1",
            "key": "6c8a-secret",
            "signature_scheme": "hmac-sha512",
            "kernel_name": "fastkernel",
            "jupyter_session": "/home/me/nb.ipynb",
        },
    )
    info = read_connection_file(path)
    assert info.transport == "tcp"
    assert info.ip == "127.0.0.1"
    assert info.key == b"6c8a-secret"
    assert info.signature_scheme == "hmac-sha512"
    assert info.kernel_name == "fastkernel"
    assert info.ports == {"shell": 5001, "iopub": 5002, "stdin": 5003, "control": 5004, "hb": 5005}
    assert info.address("shell") == "tcp://127.0.0.1:5001"
    assert info.address("hb") == "tcp://127.0.0.1:5005"
    assert info.extra == {"jupyter_session": "/home/me/nb.ipynb"}  # kept, and written back


def test_reads_ipv6_tcp_address(tmp_path: Path) -> None:
    info = read_connection_file(write_json(tmp_path / "k.json", {**PORTS, "ip": "::1", "key": "k"}))
    assert info.address("control") == "tcp://[::1]:5004"


def test_reads_ipc_connection_file(tmp_path: Path) -> None:
    ipc_base = str(tmp_path / "kernel-sock")
    info = read_connection_file(
        write_json(tmp_path / "k.json", {**PORTS, "transport": "ipc", "ip": ipc_base})
    )
    assert info.transport == "ipc"
    assert info.address("shell") == f"ipc://{ipc_base}-5001"
    assert info.address("iopub") == f"ipc://{ipc_base}-5002"


def test_ipc_without_ip_uses_jupyters_default_base(tmp_path: Path) -> None:
    info = read_connection_file(write_json(tmp_path / "k.json", {**PORTS, "transport": "ipc"}))
    assert info.address("stdin") == "ipc://kernel-ipc-5003"


def test_missing_fields_take_defaults(tmp_path: Path) -> None:
    info = read_connection_file(write_json(tmp_path / "k.json", {}))
    assert (info.transport, info.ip, info.key, info.signature_scheme) == (
        "tcp",
        "127.0.0.1",
        b"",
        "hmac-sha256",
    )
    assert info.ports == {c: 0 for c in CHANNELS}  # 0: pick free ports


@pytest.mark.parametrize("transport", ["tcp", "ipc"])
def test_reads_file_written_by_jupyter_client(tmp_path: Path, transport: str) -> None:
    fname, cfg = jc_write_connection_file(
        str(tmp_path / "jc.json"),
        ip="127.0.0.1" if transport == "tcp" else str(tmp_path / "ipc"),
        key=b"jupyter-client-key",
        transport=transport,
        signature_scheme="hmac-sha256",
        kernel_name="fastkernel",
        **PORTS,
    )
    info = read_connection_file(Path(fname))
    assert info.key == b"jupyter-client-key"
    assert info.transport == transport
    assert info.ports == {"shell": 5001, "iopub": 5002, "stdin": 5003, "control": 5004, "hb": 5005}
    assert info.address("shell").startswith(f"{transport}://")


# -- errors ----------------------------------------------------------------------------------


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "nope.json"
    with pytest.raises(ConnectionError_, match="connection file not found") as info:
        read_connection_file(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "text", ["{not json", "", '{"a": 1', b"\xff\xfe{}"], ids=["junk", "empty", "cut", "binary"]
)
def test_non_json_file_is_a_clear_error(tmp_path: Path, text: str | bytes) -> None:
    path = tmp_path / "bad.json"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    with pytest.raises(ConnectionError_, match="cannot read connection file") as info:
        read_connection_file(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("data", [[1, 2], "string", 42, None])
def test_non_object_json_is_a_clear_error(tmp_path: Path, data: Any) -> None:
    with pytest.raises(ConnectionError_, match="expected a JSON object"):
        read_connection_file(write_json(tmp_path / "k.json", data))


@pytest.mark.parametrize("transport", ["udp", "TCP", "", 5])
def test_bad_transport_is_a_clear_error(tmp_path: Path, transport: Any) -> None:
    with pytest.raises(ConnectionError_, match=r"transport must be 'tcp' or 'ipc'") as info:
        read_connection_file(write_json(tmp_path / "k.json", {**PORTS, "transport": transport}))
    assert repr(transport) in str(info.value)


@pytest.mark.parametrize("value", ["5001", -1, 65536, 5001.0, True, None, [5001]])
@pytest.mark.parametrize("channel", ["shell", "hb"])
def test_bad_port_is_a_clear_error(tmp_path: Path, channel: str, value: Any) -> None:
    with pytest.raises(ConnectionError_, match=f"{channel}_port must be an integer 0-65535") as info:
        read_connection_file(write_json(tmp_path / "k.json", {**PORTS, f"{channel}_port": value}))
    assert repr(value) in str(info.value)


@pytest.mark.parametrize("value", [0, 1, 65535])
def test_port_bounds_are_accepted(tmp_path: Path, value: int) -> None:
    assert (
        read_connection_file(write_json(tmp_path / "k.json", {"iopub_port": value})).ports["iopub"] == value
    )


# -- writing ----------------------------------------------------------------------------------


def sample_info() -> ConnectionInfo:
    return ConnectionInfo(
        key=b"written-key",
        ports={"shell": 1, "iopub": 2, "stdin": 3, "control": 4, "hb": 5},
        kernel_name="fastkernel",
        extra={"jupyter_session": "nb.ipynb"},
    )


def test_written_file_is_private_even_with_permissive_umask(tmp_path: Path) -> None:
    path = tmp_path / "runtime" / "kernel-1.json"  # the directory is created too
    old = os.umask(0)
    try:
        write_connection_file(path, sample_info())
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not world_readable(path)
    assert os.listdir(path.parent) == ["kernel-1.json"]  # no temporary file left behind


def test_rewriting_a_readable_file_makes_it_private(tmp_path: Path) -> None:
    path = write_json(tmp_path / "kernel.json", {"key": "old"})
    path.chmod(0o644)
    assert world_readable(path)
    write_connection_file(path, sample_info())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_connection_file(path).key == b"written-key"


def test_written_file_reads_back_identically(tmp_path: Path) -> None:
    path = tmp_path / "kernel.json"
    info = sample_info()
    write_connection_file(path, info)
    again = read_connection_file(path)
    assert again == info
    data = json.loads(path.read_text())
    assert data["shell_port"] == 1 and data["key"] == "written-key" and data["transport"] == "tcp"


def test_stale_temp_file_cannot_make_the_written_file_readable(tmp_path: Path) -> None:
    path = tmp_path / "kernel.json"
    stale = tmp_path / "kernel.json.tmp"
    stale.write_text("")
    stale.chmod(0o644)
    write_connection_file(path, sample_info())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_existing_readable_file_or_symlink_is_replaced_not_written_through(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.json"
    target.write_text("{}")
    target.chmod(0o644)
    path = tmp_path / "kernel.json"
    path.symlink_to(target)
    write_connection_file(path, sample_info())
    assert not path.is_symlink()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert target.read_text() == "{}"  # the key never went through the planted link
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere.json", "kernel.json"]  # no temp left


# -- runtime dir ------------------------------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for var in ("JUPYTER_RUNTIME_DIR", "JUPYTER_DATA_DIR", "XDG_DATA_HOME", "JUPYTER_PLATFORM_DIRS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return monkeypatch


def jupyter_core_runtime_dir() -> Path:
    from jupyter_core.paths import jupyter_runtime_dir

    return Path(jupyter_runtime_dir())


def test_runtime_dir_prefers_jupyter_runtime_dir(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "rt"))
    clean_env.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    clean_env.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert runtime_dir() == tmp_path / "rt" == jupyter_core_runtime_dir()


def test_runtime_dir_under_jupyter_data_dir(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    clean_env.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert runtime_dir() == tmp_path / "data" / "runtime" == jupyter_core_runtime_dir()


def test_runtime_dir_under_xdg_data_home(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert runtime_dir() == tmp_path / "xdg" / "jupyter" / "runtime" == jupyter_core_runtime_dir()


def test_runtime_dir_default_is_under_home(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    expected = tmp_path / "home" / ".local" / "share" / "jupyter" / "runtime"
    assert runtime_dir() == expected == jupyter_core_runtime_dir()


def test_empty_variables_count_as_unset(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("JUPYTER_RUNTIME_DIR", "")
    clean_env.setenv("JUPYTER_DATA_DIR", "")
    clean_env.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert runtime_dir() == tmp_path / "xdg" / "jupyter" / "runtime"


# -- CurveZMQ keys and JEP 66 registration files ----------------------------------------------

PUBLIC, SECRET = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7", "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"


def test_reads_curve_keys_and_writes_them_back(tmp_path: Path) -> None:
    data = {**PORTS, "key": "k", "curve_publickey": PUBLIC, "curve_secretkey": SECRET}
    info = read_connection_file(write_json(tmp_path / "k.json", data))
    assert info.curve is not None
    assert (info.curve.public, info.curve.secret) == (PUBLIC.encode(), SECRET.encode())
    assert info.extra == {}
    written = info.to_dict()
    assert (written["curve_publickey"], written["curve_secretkey"]) == (PUBLIC, SECRET)


def test_no_curve_keys_means_no_encryption(tmp_path: Path) -> None:
    data = {**PORTS, "key": "k", "curve_publickey": None}
    info = read_connection_file(write_json(tmp_path / "k.json", data))
    assert info.curve is None
    assert "curve_publickey" not in info.to_dict()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"curve_publickey": PUBLIC}, "curve_publickey is given without curve_secretkey"),
        ({"curve_secretkey": SECRET}, "curve_secretkey is given without curve_publickey"),
        ({"curve_publickey": PUBLIC[:-1], "curve_secretkey": SECRET}, "40-character Z85"),
        ({"curve_publickey": PUBLIC, "curve_secretkey": SECRET[:-1] + "~"}, "40-character Z85"),
        ({"curve_publickey": 7, "curve_secretkey": SECRET}, "40-character Z85"),
    ],
)
def test_bad_curve_keys_are_clear_errors(tmp_path: Path, fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ConnectionError_, match=message):
        read_connection_file(write_json(tmp_path / "k.json", {**PORTS, "key": "k", **fields}))


def test_registration_file_lets_the_kernel_pick_its_ports(tmp_path: Path) -> None:
    data = {"transport": "tcp", "ip": "127.0.0.1", "key": "k", "registration_port": 6000}
    info = read_connection_file(write_json(tmp_path / "k.json", data))
    assert info.registration_port == 6000
    assert info.picked_ports and set(info.ports.values()) == {0}


def test_documented_registration_file_binds_on_its_registration_ip(tmp_path: Path) -> None:
    data = {"kernel_id": "k1", "registration_ip": "127.0.0.2", "registration_port": 6000, "key": "k"}
    info = read_connection_file(write_json(tmp_path / "k.json", data))
    assert info.ip == "127.0.0.2"
    assert info.registration_port == 6000


def test_kallichore_null_key_is_an_empty_key(tmp_path: Path) -> None:
    info = read_connection_file(write_json(tmp_path / "k.json", {"key": None, "registration_port": 6000}))
    assert info.key == b""


@pytest.mark.parametrize("port", [0, -1, 70000, "6000", True])
def test_bad_registration_port_is_a_clear_error(tmp_path: Path, port: Any) -> None:
    with pytest.raises(ConnectionError_, match="registration_port must be an integer 1-65535"):
        read_connection_file(write_json(tmp_path / "k.json", {"key": "k", "registration_port": port}))


def test_ipc_paths_name_the_socket_files() -> None:
    info = ConnectionInfo(transport="ipc", ip="/run/k-ipc", ports={"shell": 1, "iopub": 2, "hb": 0})
    assert info.ipc_paths() == ["/run/k-ipc-1", "/run/k-ipc-2"]
    assert ConnectionInfo(ports={"shell": 1}).ipc_paths() == []
