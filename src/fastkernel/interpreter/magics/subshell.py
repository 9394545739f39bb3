"""``%subshell``: which subshell (JEP 91) runs this cell, and the kernel's subshells."""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

from fastkernel.interpreter.magics import UsageError
from fastkernel.interpreter.magics.registry import line_magic

if TYPE_CHECKING:
    from fastkernel.interpreter.magics.registry import Magics


@line_magic("subshell")
def subshell(magics: Magics, line: str) -> None:
    """Print this cell's subshell id (None: the main shell), its thread and the subshell list."""
    kernel = magics.interpreter.shell.kernel
    if kernel is None:
        raise UsageError("%subshell: not in a running kernel")
    header = kernel.get_parent().get("header", {})
    print(f"subshell id: {header.get('subshell_id')}")
    print(f"thread id: {threading.get_ident()}")
    print(f"main thread id: {threading.main_thread().ident}")
    print(f"pid: {os.getpid()}")
    print(f"thread count: {threading.active_count()}")
    print(f"subshell list: {kernel.list_subshells()}")
