"""%xmode, %tb and %colors: how errors are shown, and the last one again."""

from __future__ import annotations

import sys

from fastkernel.interpreter.magics import UsageError
from fastkernel.interpreter.magics.registry import Magics, line_magic
from fastkernel.interpreter.tracebacks import MODES, parse_mode

# IPython's %colors schemes: NoColor turns colours off; the others all mean "on" here.
_SCHEMES = {"nocolor": "off", "neutral": "on", "linux": "on", "lightbg": "on", "auto": "auto"}


def _mode(text: str) -> str:
    try:
        return parse_mode(text)
    except ValueError as err:
        raise UsageError(f"%xmode: {err}") from None


@line_magic("xmode")
def xmode(magics: Magics, line: str) -> None:
    """``%xmode MODE`` sets how errors are shown: Minimal, Plain, Context (the default),
    Verbose or Docs. Without an argument it moves to the next mode, as IPython's does."""
    style = magics.interpreter.traceback_style
    if line.strip():
        style.mode = _mode(line)
    else:
        cycle = ("Plain", "Context", "Verbose", "Minimal")
        style.mode = cycle[(cycle.index(style.mode) + 1) % len(cycle)] if style.mode in cycle else "Plain"
    print(f"Exception reporting mode: {style.mode}")


@line_magic("tb")
def tb(magics: Magics, line: str) -> None:
    """``%tb [MODE]`` shows the last error again, in the current mode or in MODE."""
    mode = _mode(line) if line.strip() else None
    last = getattr(sys, "last_value", None)
    if not isinstance(last, BaseException):
        print("No traceback available to show.", file=sys.stderr)
        return
    magics.interpreter.shell.show_error(last, mode)


@line_magic("colors")
def colors(magics: Magics, line: str) -> None:
    """``%colors NoColor`` shows errors without colours; ``Neutral`` (or ``Linux``, ``LightBG``)
    with them; ``auto`` with them unless the NO_COLOR environment variable is set."""
    choice = line.strip().lower()
    if choice not in _SCHEMES:
        raise UsageError(f"%colors takes NoColor, Neutral, Linux, LightBG or auto, not {line.strip()!r}")
    magics.interpreter.traceback_style.colors = _SCHEMES[choice]


__all__ = ["MODES", "colors", "tb", "xmode"]
