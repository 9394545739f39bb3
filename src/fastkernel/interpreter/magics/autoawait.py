"""%autoawait: whether cells may use top-level ``await``, and what runs them (asyncio or trio)."""

from __future__ import annotations

import importlib.util

from fastkernel.interpreter.magics import UsageError
from fastkernel.interpreter.magics.registry import Magics, line_magic

RUNNERS = ("asyncio", "trio")
_OFF = ("false", "off", "0")
_ON = ("true", "on", "1")


@line_magic("autoawait")
def autoawait(magics: Magics, line: str) -> None:
    """``%autoawait`` prints the setting; ``on``/``off`` allows or forbids top-level ``await``;
    ``asyncio`` (the default) or ``trio`` turns it on and chooses what runs cells that await.

    With asyncio, cells share the kernel's one event loop, so tasks outlive their cell. With
    trio, each such cell is one ``trio.run``, as under IPython.
    """
    interpreter = magics.interpreter
    choice = line.strip()
    if not choice:
        state = "On" if interpreter.autoawait else "Off"
        print(f"autoawait is `{state}`, and set to use `{interpreter.async_runner}`")
        return
    if choice.lower() in _OFF + _ON:
        interpreter.autoawait = choice.lower() in _ON
        return
    if choice not in RUNNERS:
        raise UsageError(
            f"%autoawait takes on, off, asyncio or trio, not {choice!r} "
            "(fastkernel has no curio or custom runners)"
        )
    if choice == "trio" and importlib.util.find_spec("trio") is None:
        raise UsageError(
            "%autoawait trio: trio is not installed in the kernel's environment. "
            "Install it with `%pip install trio`, then run `%autoawait trio` again."
        )
    interpreter.async_runner = choice
    interpreter.autoawait = True
