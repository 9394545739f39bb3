"""The debugger's pure parts: cell file names (JupyterLab's Murmur2), DAP framing, variables, paging."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from ipykernel.compiler import murmur2_x86

from fastkernel.interpreter.debugcells import HASH_SEED, CellFiles, VariableTree, murmur2, page
from fastkernel.interpreter.sources import CellSources
from fastkernel.transport.daplink import FrameReader, encode_frame


@pytest.mark.parametrize(
    "source", ["", "a", "ab", "abc", "abcd", "x = 1\nprint(x)\n", "é = 'ünïcode' # 日本", "\n\n\ny = 2"]
)
def test_murmur2_names_cells_as_jupyterlab_and_ipykernel_do(source: str) -> None:
    assert murmur2(source, HASH_SEED) == murmur2_x86(source, HASH_SEED)
    assert murmur2(source, 0) == murmur2_x86(source, 0)


def test_cell_files_hold_their_source(tmp_path: Path) -> None:
    files = CellFiles(str(tmp_path))
    path = files.write("a = 1\n")
    assert path == f"{tmp_path}{os.sep}fastkernel_{os.getpid()}{os.sep}{murmur2('a = 1' + chr(10))}.py"
    assert Path(path).read_text() == "a = 1\n" and files.write("a = 1\n") == path
    files.remove_all()
    assert not Path(files.directory).exists()


def test_sources_name_cells_by_hash_while_asked_and_keep_labels(tmp_path: Path) -> None:
    sources, files = CellSources(), CellFiles(str(tmp_path))
    assert sources.register("x = 1", "Cell In[1]") == "<cell-1>"
    sources.name_cells_by(files.write)
    path = sources.register("x = 2", "Cell In[2]")
    assert path == files.path("x = 2") and sources.labels[path] == "Cell In[2]"
    assert sources.register("x = 2", "Cell In[3]") == path and sources.labels[path] == "Cell In[3]"
    sources.name_cells_by(None)
    assert sources.register("x = 3", "Cell In[4]") == "<cell-4>"


def test_frame_reader_splits_a_byte_stream_into_messages() -> None:
    messages = [{"seq": 1, "type": "event", "event": "output", "body": {"output": "é\r\n\r\n"}}, {"seq": 2}]
    stream = b"".join(encode_frame(m) for m in messages)
    reader = FrameReader()
    got = [m for i in range(len(stream)) for m in reader.feed(stream[i : i + 1])]  # byte by byte
    assert got == messages
    with pytest.raises(ValueError, match="bad DAP frame header"):
        FrameReader().feed(b"Content-Type: x\r\n\r\n{}")


def test_variable_tree_lists_user_names_and_expands_containers() -> None:
    namespace = {"__name__": "__main__", "In": [], "_i3": "", "_5": 1, "data": {"k": [1, 2]}, "n": 3}
    tree = VariableTree(namespace)
    top = {v["name"]: v for v in tree.top()}
    assert list(top) == ["data", "n"]
    assert top["n"] == {
        "name": "n",
        "value": "3",
        "type": "int",
        "evaluateName": "n",
        "variablesReference": 0,
    }
    (child,) = tree.children(top["data"]["variablesReference"])
    assert (child["name"], child["evaluateName"], child["value"]) == ("'k'", "data['k']", "[1, 2]")
    assert [v["value"] for v in tree.children(child["variablesReference"])] == ["1", "2"]
    assert tree.children(999) == []


def test_page_slices_items_and_keeps_groups_on_the_first_page() -> None:
    groups = [{"name": "special variables"}, {"name": "len()", "evaluateName": "len(x)"}]
    items = [{"name": str(i), "evaluateName": f"x[{i}]"} for i in range(10)]
    assert page(groups + items, {}) == groups + items
    assert [v["name"] for v in page(groups + items, {"start": 0, "count": 2})] == [
        "special variables",
        "len()",
        "0",
        "1",
    ]
    assert [v["name"] for v in page(groups + items, {"start": 8, "count": 5})] == ["8", "9"]
    assert [v["name"] for v in page(groups + items, {"start": 7})] == ["7", "8", "9"]  # start alone
