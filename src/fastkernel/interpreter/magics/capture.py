"""%%capture: keep a cell's printed text and displays in an object instead of showing them.

The cell runs with a callable output target (see ``fastkernel.outputs.output_to``): text
written to ``sys.stdout``/``sys.stderr`` goes to :meth:`_Catcher.__call__`, and the kernel
hands ``display()`` output to :meth:`_Catcher.take_display`. Output of subprocesses that
write to file descriptors 1 and 2 themselves (``os.system``) is not captured, as in IPython.
"""

from __future__ import annotations

import sys
from typing import Any

from fastkernel.interpreter.magics import UsageError
from fastkernel.interpreter.magics.registry import Magics, cell_magic


class RichOutput:
    """One captured display: its MIME bundle and metadata; displaying it shows it again."""

    def __init__(self, data: dict[str, Any], metadata: dict[str, Any] | None = None) -> None:
        self.data = data
        self.metadata = metadata or {}

    def _repr_mimebundle_(
        self, include: Any = None, exclude: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        return self.data, self.metadata

    def __repr__(self) -> str:
        return f"<RichOutput {sorted(self.data)}>"


class CapturedIO:
    """What ``%%capture name`` stores: ``.stdout``, ``.stderr``, ``.outputs``; ``.show()`` replays them."""

    def __init__(self) -> None:
        self._stdout: list[str] = []
        self._stderr: list[str] = []
        self.outputs: list[RichOutput] = []

    @property
    def stdout(self) -> str:
        return "".join(self._stdout)

    @property
    def stderr(self) -> str:
        return "".join(self._stderr)

    def __str__(self) -> str:
        return self.stdout

    def __repr__(self) -> str:
        sizes = f"{len(self.stdout)} chars stdout, {len(self.stderr)} stderr"
        return f"<CapturedIO: {sizes}, {len(self.outputs)} outputs>"

    def show(self) -> None:
        """Write the captured text and show the captured displays, in the current cell."""
        from fastkernel.interpreter.display import display

        sys.stdout.write(self.stdout)
        sys.stderr.write(self.stderr)
        for output in self.outputs:
            display(output)

    __call__ = show


class _Catcher:
    """The output target while a %%capture cell runs."""

    def __init__(self, captured: CapturedIO, streams: set[str], displays: bool) -> None:
        self.captured = captured
        self.streams = streams
        self.displays = displays

    def __call__(self, name: str, text: str) -> None:
        if name in self.streams:
            (self.captured._stdout if name == "stdout" else self.captured._stderr).append(text)
        else:  # not captured: the kernel calls this with the current cell as target
            getattr(sys, name).write(text)

    def take_display(self, msg_type: str, content: dict[str, Any]) -> bool:
        """Keep ``display_data``; False lets the kernel publish the message as usual."""
        if not self.displays:
            return False
        if msg_type == "display_data":
            self.captured.outputs.append(RichOutput(content.get("data", {}), content.get("metadata")))
        return True


@cell_magic("capture")
def capture(magics: Magics, line: str, cell: str) -> None:
    """Run the cell, keeping its output: ``%%capture [name] [--no-stdout] [--no-stderr] [--no-display]``."""
    from fastkernel.interpreter.streams import output_to

    args = line.split()
    flags = {a for a in args if a.startswith("-")}
    names = [a for a in args if not a.startswith("-")]
    if flags - {"--no-stdout", "--no-stderr", "--no-display"} or len(names) > 1:
        raise UsageError("usage: %%capture [name] [--no-stdout] [--no-stderr] [--no-display]")
    if names and not names[0].isidentifier():
        raise UsageError(f"%%capture: {names[0]!r} is not a valid variable name")
    captured = CapturedIO()
    streams = {s for s in ("stdout", "stderr") if f"--no-{s}" not in flags}
    catcher = _Catcher(captured, streams, "--no-display" not in flags)
    if names:
        magics.interpreter.namespace[names[0]] = captured
    with output_to(catcher):
        value = magics.run_code(cell, magics.place.lineno)
        if value is not None and catcher.displays:  # the cell's result is an output too
            data, metadata = magics.interpreter.formatter.format(value)
            if data:  # empty: it displayed itself (_ipython_display_), into the capture
                captured.outputs.append(RichOutput(data, metadata))
