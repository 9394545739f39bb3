"""Magics (``%cd``, ``%%time``), shell escapes (``!cmd``) and help (``obj?``) for cells.

:mod:`.transform` rewrites that syntax into calls on a :class:`.registry.Magics` object before
a cell is compiled; the implementations live in the other modules of this package and are
imported on first use, so none of them costs anything at kernel start. See docs/magics.md.
"""

from __future__ import annotations


class UsageError(Exception):
    """A magic was misused (unknown name, bad arguments); the cell fails with this error."""
