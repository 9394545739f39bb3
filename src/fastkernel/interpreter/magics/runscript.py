"""%run: run a Python file as ``__main__``, then keep what it defined in the user namespace."""

from __future__ import annotations

import builtins
import os
import sys
from typing import Any

from fastkernel.interpreter.magics import UsageError
from fastkernel.interpreter.magics.registry import Magics, line_magic


def _execute(code: Any, namespace: dict[str, Any]) -> None:
    try:
        exec(code, namespace)
    except SystemExit as exit_:  # sys.exit(0) at the end of a script is not an error
        if exit_.code not in (None, 0):
            raise


@line_magic("run")
def run(magics: Magics, line: str) -> None:
    """``%run [-i] script.py [args]``: run the file with ``sys.argv = [script.py, *args]``.

    It runs in a fresh ``__main__`` module, as ``python script.py`` would, and its global
    names are then copied into the user namespace; with ``-i`` it runs in the user namespace.
    """
    import shlex
    import tokenize
    import types

    try:
        args = shlex.split(line)
    except ValueError as err:
        raise UsageError(f"%run: cannot parse the arguments: {err}") from None
    interactive = bool(args) and args[0] == "-i"
    args = args[1:] if interactive else args
    if not args:
        raise UsageError("usage: %run [-i] FILE [ARGS ...]")
    path = os.path.abspath(os.path.expanduser(args[0]))
    if not os.path.isfile(path) and os.path.isfile(path + ".py"):  # %run script, as IPython allows
        path += ".py"
    if not os.path.isfile(path):
        raise UsageError(f"File `{args[0]}` not found.")
    with tokenize.open(path) as file:  # honours a coding declaration
        code = compile(file.read(), path, "exec", dont_inherit=True)
    user = magics.interpreter.namespace
    saved_argv, saved_main = sys.argv, sys.modules.get("__main__")
    sys.argv = [args[0], *args[1:]]
    if interactive:
        namespace = user
    else:  # a module of its own, registered as __main__ while it runs (pickle, dataclasses)
        module = types.ModuleType("__main__")
        module.__file__ = path
        namespace = module.__dict__
        namespace["__builtins__"] = builtins
        sys.modules["__main__"] = module
    had_file = user.get("__file__", None)
    try:
        if interactive:
            user["__file__"] = path
        _execute(code, namespace)
    finally:
        sys.argv = saved_argv
        if saved_main is not None:
            sys.modules["__main__"] = saved_main
        if interactive:
            if had_file is None:
                user.pop("__file__", None)
            else:
                user["__file__"] = had_file
        else:
            user.update({k: v for k, v in namespace.items() if not (k.startswith("__") and k.endswith("__"))})
