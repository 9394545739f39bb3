"""%debug and %pdb: pdb for terminal and notebook users (interpreter/pdbsupport.py)."""

from __future__ import annotations

from fastkernel.interpreter.magics import UsageError
from fastkernel.interpreter.magics.registry import Magics, line_magic
from fastkernel.interpreter.pdbsupport import post_mortem, run_under_pdb

_SWITCH = {"on": True, "1": True, "true": True, "off": False, "0": False, "false": False}


@line_magic("debug", expand=False)
def debug(magics: Magics, line: str) -> None:
    """%debug: pdb post-mortem of the last error. %debug STATEMENT: run it under pdb."""
    statement = line.strip()
    if not statement:
        post_mortem()
        return
    namespace, local = magics.user_namespaces()
    run_under_pdb(statement, namespace, local)


@line_magic("pdb")
def pdb_switch(magics: Magics, line: str) -> None:
    """%pdb on|off (no argument: toggle): pdb post-mortem after every error of a cell."""
    word = line.strip().lower()
    if word and word not in _SWITCH:
        raise UsageError(f"%pdb takes on or off (or 1 or 0), not {line.strip()!r}")
    interpreter = magics.interpreter
    interpreter.auto_pdb = _SWITCH[word] if word else not interpreter.auto_pdb
    print(f"Automatic pdb calling has been turned {'ON' if interpreter.auto_pdb else 'OFF'}")
