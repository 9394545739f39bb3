"""The same notebooks executed with nbclient under fastkernel and under ipykernel.

Notebooks written for ipykernel must run unchanged on fastkernel. Each notebook in
``notebooks/`` runs under both kernels in the same test run; the normalized outputs of every
cell (stream text per stream, MIME types, text/plain, error names and the last line of their
traceback without colours) must be equal. Every
message fastkernel sends during its run is validated against the spec.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.kernels import KERNEL_NAME
from tests.spec import validate

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS = sorted((Path(__file__).parent / "notebooks").glob("*.ipynb"))
NEEDS = {
    "plots_and_widgets": ("matplotlib", "ipywidgets"),
    "rich_output": ("pandas", "IPython"),
    "progress": ("tqdm", "ipywidgets"),
    "rich": ("rich", "ipywidgets"),
    "plotly_altair_bokeh": ("plotly", "altair", "bokeh", "pandas"),
    "math_tables": ("sympy", "pandas", "polars", "matplotlib"),
    "ipython_display": ("IPython",),
    "widgets_ipympl": ("ipympl", "plotly", "anywidget"),
}
# A cell tagged "text-differs" (its source says why) is compared by output kinds and MIME types
# only: its text names things that differ between the kernels by design (cell file names).
TEXT_DIFFERS = "text-differs"

_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # colours in tracebacks

# What legitimately differs between two runs, whatever the kernel.
_VOLATILE = [
    (re.compile(r"0x[0-9a-fA-F]+"), "0x?"),  # object addresses
    (re.compile(r"[0-9a-f]{32}"), "<id>"),  # widget model ids
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<uuid>"),  # plotly uids
    (re.compile(r"\d+(\.\d+)?(e[+-]?\d+)?\s*(ns|µs|μs|us|ms|s)\b"), "<time>"),  # %time and %timeit figures
]


class ValidatingClient(nbclient.NotebookClient):  # type: ignore[misc]
    """An nbclient that checks every shell reply and iopub message against the spec."""

    def process_message(self, msg: dict[str, Any], cell: Any, cell_index: int) -> Any:
        validate(msg)
        return super().process_message(msg, cell, cell_index)

    async def _async_poll_for_reply(self, msg_id: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        reply = await super()._async_poll_for_reply(msg_id, *args, **kwargs)
        validate(reply, "execute_reply", msg_id)
        return reply


def _clean(text: str, workdir: str = "") -> str:
    if workdir:  # each kernel runs in a directory of its own (FileLink shows the full path)
        text = text.replace(workdir, "<workdir>")
    for pattern, replacement in _VOLATILE:
        text = pattern.sub(replacement, text)
    return text


def normalize(output: dict[str, Any], workdir: str = "") -> tuple[Any, ...]:
    kind = output["output_type"]
    if kind == "stream":
        return (kind, output["name"], _clean(output["text"], workdir))
    if kind == "error":  # the name, and the last line of the traceback as a reader sees it
        lines = _ANSI.sub("", "\n".join(output["traceback"])).rstrip().splitlines()
        return (kind, output["ename"], _clean(lines[-1] if lines else "", workdir))
    data = output.get("data", {})
    return (kind, tuple(sorted(data)), _clean(str(data.get("text/plain", "")), workdir))


def summarize(outputs: list[tuple[Any, ...]]) -> tuple[dict[str, str], list[tuple[Any, ...]]]:
    """The text of each stream, and the other outputs in order.

    Streams are compared as whole texts per stream name: kernels split text differently,
    and ipykernel does not keep the order between stdout and stderr (fastkernel does).
    """
    streams: dict[str, str] = {}
    others = []
    for item in outputs:
        if item[0] == "stream":
            streams[item[1]] = streams.get(item[1], "") + item[2]
        else:
            others.append(item)
    return streams, others


def kinds_only(summary: tuple[dict[str, str], list[tuple[Any, ...]]]) -> tuple[Any, ...]:
    streams, others = summary
    return tuple(sorted(streams)), [item[:2] for item in others]


def run(path: Path, kernel_name: str, workdir: Path, validating: bool) -> list[Any]:
    nb = nbformat.read(path, as_version=4)
    client_class = ValidatingClient if validating else nbclient.NotebookClient
    client = client_class(
        nb,
        kernel_name=kernel_name,
        timeout=60,
        allow_errors=True,
        resources={"metadata": {"path": str(workdir)}},
    )
    client.execute()
    return [
        summarize([normalize(o, str(workdir)) for o in cell.outputs])
        if TEXT_DIFFERS not in cell.metadata.get("tags", ())
        else kinds_only(summarize([normalize(o, str(workdir)) for o in cell.outputs]))
        for cell in nb.cells
        if cell.cell_type == "code"
    ]


@pytest.mark.timeout(180)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_gives_the_same_outputs_as_ipykernel(
    path: Path, tmp_path: Path, ipykernel_name: str
) -> None:
    for module in NEEDS.get(path.stem, ()):
        pytest.importorskip(module)
    (tmp_path / "fast").mkdir()
    (tmp_path / "ipy").mkdir()
    ours = run(path, KERNEL_NAME, tmp_path / "fast", validating=True)
    theirs = run(path, ipykernel_name, tmp_path / "ipy", validating=False)
    source = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    differences = [
        f"cell {i}:\n{src}\n  fastkernel: {a}\n  ipykernel:  {b}"
        for i, (src, a, b) in enumerate(zip(source, ours, theirs, strict=True))
        if a != b
    ]
    assert not differences, "\n\n".join(differences)
    assert any(streams or others for streams, others in ours), "the notebook produced no output at all"


@pytest.fixture(scope="session")
def ipykernel_name() -> str:
    """A kernelspec for ipykernel with this Python (not whatever ``python3`` resolves to)."""
    from tests.kernels import install_kernelspec

    return install_kernelspec("ipykernel-differential", [sys.executable, "-m", "ipykernel_launcher"])
