"""The shell: ``!cmd``, ``x = !cmd``, %pip, %conda, %%bash, %%sh; and %cd, %pwd, %env.

Child processes write into pipes that the kernel reads on the cell's own thread and writes to
``sys.stdout``/``sys.stderr``, so their output streams live, in order with ``print()``, and
can be captured (%%capture). Each child leads a process group of its own: an interrupt kills
that whole group (a shell and what it started) and ends the cell with KeyboardInterrupt.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any

from fastkernel.interpreter.magics import UsageError
from fastkernel.interpreter.magics.registry import Magics, cell_magic, line_magic

RESTART_NOTE = "Note: you may need to restart the kernel to use updated packages."
_DOLLAR_NAME = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")


class SList(list):  # type: ignore[type-arg]
    """The lines a command printed, as a list; ``.s`` (space-joined), ``.n`` (newline-joined), ``.l``."""

    @property
    def s(self) -> str:
        return " ".join(self)

    @property
    def n(self) -> str:
        return "\n".join(self)

    @property
    def l(self) -> list[str]:  # noqa: E743  # IPython's name
        return list(self)

    nlstr = n
    spstr = s


# -- running processes ------------------------------------------------------------


def _stop(proc: Any) -> None:
    """Interrupt the child's process group as Ctrl-C in a terminal would; kill it if it stays."""
    import signal
    import subprocess

    for sig in (signal.SIGINT, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            break
        try:
            proc.wait(timeout=0.5)
            break
        except subprocess.TimeoutExpired:
            continue
    proc.wait()


def _terminal() -> tuple[int, int] | None:
    """A pseudo-terminal (master, slave) for a child's stdout, or None where there is none."""
    try:
        import pty

        return pty.openpty()
    except (ImportError, OSError):  # Windows, or no pty left
        return None


def _pump(sources: dict[int, str], capture: bool) -> str:
    """Read every fd in ``sources`` (fd: stream name) to its end; write or collect the text."""
    import codecs
    import selectors

    captured: list[str] = []
    decoders = {fd: codecs.getincrementaldecoder("utf-8")("replace") for fd in sources}
    with selectors.DefaultSelector() as selector:
        for fd in sources:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map():
            for key, _ in selector.select():
                try:
                    data = os.read(key.fd, 65536)
                except OSError:  # EIO: every writer of a pseudo-terminal has closed it
                    data = b""
                if not data:
                    selector.unregister(key.fd)
                text = decoders[key.fd].decode(data, final=not data)
                if text and capture:
                    captured.append(text)
                elif text:
                    getattr(sys, sources[key.fd]).write(text)
    return "".join(captured)


def run_process(
    args: str | list[str], shell: bool = False, capture: bool = False, tty: bool = False
) -> tuple[int, str]:
    """Run a child; return (exit status, output if ``capture``, stdout and stderr merged).

    Without ``capture`` the output goes to ``sys.stdout``/``sys.stderr`` as it comes. With
    ``tty`` the child's stdout is a pseudo-terminal, as in ipykernel (pexpect): programs
    flush each line and write ``\\r\\n``, and notebooks made with ipykernel show the same text.
    """
    import subprocess

    terminal = _terminal() if tty and not capture else None
    try:
        proc = subprocess.Popen(
            args,
            shell=shell,
            stdin=subprocess.DEVNULL,
            stdout=terminal[1] if terminal else subprocess.PIPE,
            stderr=subprocess.STDOUT if capture else subprocess.PIPE,
            start_new_session=True,  # a process group of its own, killed whole on interrupt
        )
    except BaseException:
        if terminal:
            os.close(terminal[0])
        raise
    finally:
        if terminal:
            os.close(terminal[1])
    from fastkernel.lifecycle import track_group

    track_group(proc.pid)  # `!cmd &` jobs left in its group are ended at kernel shutdown
    sources = {terminal[0] if terminal else proc.stdout.fileno(): "stdout"}  # type: ignore[union-attr]
    if proc.stderr is not None:
        sources[proc.stderr.fileno()] = "stderr"
    try:
        captured = _pump(sources, capture)
        return proc.wait(), captured
    except BaseException:  # KeyboardInterrupt, above all
        _stop(proc)
        raise
    finally:
        if terminal:
            os.close(terminal[0])
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def run_shell(cmd: str) -> int:
    """``!cmd``: run ``cmd`` with /bin/sh, output streamed; the exit status (never raises for it).

    stdout is a pseudo-terminal (see :func:`run_process`), stderr a pipe, so it stays stderr.
    """
    return run_process(cmd, shell=True, tty=True)[0]


def getoutput(cmd: str) -> SList:
    """``x = !cmd``: the lines ``cmd`` wrote to stdout and stderr."""
    return SList(run_process(cmd, shell=True, capture=True)[1].splitlines())


# -- {expr} and $name in commands --------------------------------------------------


def _closing_brace(text: str, start: int) -> int:
    depth = 0
    for index in range(start, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return index
    return -1


def _dollar(text: str, start: int, namespaces: list[dict[str, Any]]) -> tuple[str, int]:
    """The value of ``$name.attr`` at ``start`` (just after the ``$``) and where it ends."""
    match = _DOLLAR_NAME.match(text, start)
    if match is None:
        return "$", start
    first, *attrs = match.group().split(".")
    space = next((ns for ns in namespaces if first in ns), None)
    if space is None:  # not a Python name: leave it to the shell ($HOME)
        return "$" + first, start + len(first)
    value, end = space[first], start + len(first)
    for attr in attrs:  # $path.txt: as far as attributes exist
        if not hasattr(value, attr):
            break
        value, end = getattr(value, attr), end + 1 + len(attr)
    return str(value), end


def expand(text: str, globals_: dict[str, Any], locals_: dict[str, Any] | None = None) -> str:
    """Replace ``{expr}`` by its value and ``$name`` by that variable's, as IPython does.

    ``{{``, ``}}`` and ``$$`` are literal; ``$name`` inside single quotes is left alone. A
    ``{...}`` that fails to evaluate, or a ``$name`` that is no Python variable, stays as
    written (so ``awk '{print $1}'`` and ``$HOME`` reach the shell unchanged).
    """
    import builtins

    namespaces = [ns for ns in (locals_, globals_, vars(builtins)) if ns is not None]
    out: list[str] = []
    quoted = False
    index = 0
    while index < len(text):
        char = text[index]
        pair = text[index : index + 2]
        if pair in ("{{", "}}", "$$"):
            out.append(char)
            index += 2
        elif char == "{" and (end := _closing_brace(text, index)) != -1:
            try:
                out.append(str(eval(text[index + 1 : end], globals_, locals_)))
            except Exception:  # not Python: a shell brace, an awk program
                out.append(text[index : end + 1])
            index = end + 1
        elif char == "$" and not quoted:
            value, index = _dollar(text, index + 1, namespaces)
            out.append(value)
        else:
            quoted = not quoted if char == "'" else quoted
            out.append(char)
            index += 1
    return "".join(out)


# -- magics -----------------------------------------------------------------------


def _split(line: str) -> list[str]:
    import shlex

    try:
        return shlex.split(line)
    except ValueError as err:
        raise UsageError(f"cannot parse the arguments: {err}") from None


@line_magic("pip")
def pip(magics: Magics, line: str) -> None:
    """Run pip in the kernel's own Python (``sys.executable -m pip ...``)."""
    run_process([sys.executable, "-m", "pip", *_split(line)], tty=True)
    print(RESTART_NOTE)


@line_magic("conda")
def conda(magics: Magics, line: str) -> None:
    """Run conda on the kernel's environment (``--prefix sys.prefix``, ``--yes`` for changes)."""
    import shutil

    exe = os.environ.get("CONDA_EXE") or shutil.which("conda") or shutil.which("mamba")
    if not exe:
        raise UsageError("conda was not found (not on PATH, CONDA_EXE not set): use %pip instead")
    args = _split(line)
    if args and args[0] in ("install", "remove", "uninstall", "update", "upgrade"):
        if not {"-p", "--prefix", "-n", "--name"} & set(args):
            args += ["--prefix", sys.prefix]
        if not {"-y", "--yes"} & set(args):
            args.append("--yes")
    run_process([exe, *args], tty=True)
    print(RESTART_NOTE)


@line_magic("cd")
def cd(magics: Magics, line: str) -> None:
    """Change the working directory (no argument: home; ``-``: the previous one); print it."""
    target = line.strip()
    if len(target) > 1 and target[0] == target[-1] and target[0] in "'\"":
        target = target[1:-1]
    if target == "-":
        if magics.previous_dir is None:
            raise UsageError("%cd -: no previous directory")
        target = magics.previous_dir
    previous = os.getcwd()
    try:
        os.chdir(os.path.expanduser(target or "~"))
    except OSError as err:
        raise UsageError(f"%cd: {err}") from None
    magics.previous_dir = previous
    print(os.getcwd())


@line_magic("pwd")
def pwd(magics: Magics, line: str) -> str:
    """The working directory."""
    return os.getcwd()


@line_magic("env")
def env(magics: Magics, line: str) -> Any:
    """No argument: the environment; ``NAME``: its value; ``NAME=value`` or ``NAME value``: set it."""
    line = line.strip()
    if not line:
        return dict(os.environ)
    match = re.match(r"([^=\s]+)\s*=\s*(.*)$|([^=\s]+)\s+(.+)$", line)
    if match is None:
        if line not in os.environ:
            raise UsageError(f"Environment does not have key: {line}")
        return os.environ[line]
    name, value = (match.group(1), match.group(2)) if match.group(1) else (match.group(3), match.group(4))
    os.environ[name] = value
    print(f"env: {name}={value}")
    return None


@line_magic("system")
@line_magic("sx")
def sx(magics: Magics, line: str) -> SList:
    """Run a shell command; return its output lines (like ``x = !cmd``)."""
    return getoutput(line)


def _script(shell: str, line: str, cell: str) -> None:
    import shutil

    exe = shutil.which(shell)
    if exe is None:
        raise UsageError(f"%%{shell}: {shell} was not found on PATH")
    if line.strip():
        raise UsageError(f"%%{shell} takes no arguments in fastkernel, got {line.strip()!r}")
    run_process([exe, "-c", cell])


@cell_magic("bash")
def bash(magics: Magics, line: str, cell: str) -> None:
    """Run the cell with bash, output streamed."""
    _script("bash", line, cell)


@cell_magic("sh")
def sh(magics: Magics, line: str, cell: str) -> None:
    """Run the cell with sh, output streamed."""
    _script("sh", line, cell)
