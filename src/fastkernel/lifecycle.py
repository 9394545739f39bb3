"""The kernel process's life: outliving no parent, ending its children, naming the cell on a crash.

Standard library only, no threads of its own (the parent watch is polled by the control thread,
see transport/__init__.py). Linux details (``/proc``) degrade to what POSIX gives elsewhere.

- :class:`ParentWatch`: is the process that launched us gone? Two signs, checked once a second:
  the process named by ``JPY_PARENT_PID`` (jupyter_client's frontend, which may be a grand-parent
  when a wrapper script sits between) has exited, or our own parent changed (we were reparented
  to init or a subreaper), which needs no environment variable at all. ``prctl(PR_SET_PDEATHSIG)``
  is not used: it fires when the parent *thread* that forked us ends (a frontend that launches
  kernels from a worker thread would lose them), not only when the parent process does, and it
  says nothing about a grand-parent.
- :func:`terminate_children`: SIGTERM to every process the kernel started (and their process
  groups), SIGKILL to what is left after a grace period. Found through ``/proc``.
- :func:`labelled_call`: runs a request handler in a frame named after the request's msg_id, so
  the traceback that ``faulthandler`` writes on a fatal signal names the request that crashed.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
import types
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, TypeVar

from fastkernel.logs import log

PROC = "/proc"
POLL_S = 0.02  # how often the end of children is checked while waiting for it
TRACKED_GROUPS_MAX = 4096  # process groups of `!cmd` children remembered, oldest forgotten


class ProcStat(NamedTuple):
    state: str
    ppid: int
    pgid: int
    sid: int
    start: int  # clock ticks after boot: with the pid, names one process even after pid reuse


def proc_stat(pid: int) -> ProcStat | None:
    """The fields of ``/proc/<pid>/stat`` that matter here, or None (no such process, no /proc)."""
    try:
        with open(f"{PROC}/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces and parentheses itself.
    fields = data[data.rfind(b")") + 2 :].split()
    try:
        return ProcStat(fields[0].decode(), int(fields[1]), int(fields[2]), int(fields[3]), int(fields[19]))
    except (IndexError, ValueError):
        return None


def process_table() -> dict[int, ProcStat]:
    """Every process's stat, from one pass over /proc (empty where there is no /proc)."""
    table: dict[int, ProcStat] = {}
    try:
        names = os.listdir(PROC)
    except OSError:
        return table
    for name in names:
        if name.isdigit():
            stat = proc_stat(int(name))
            if stat is not None:
                table[int(name)] = stat
    return table


# -- the parent ---------------------------------------------------------------------


class ParentWatch:
    """Tells when the process that launched the kernel is gone (see the module docstring)."""

    def __init__(self, jpy_parent: int | None, ppid: int) -> None:
        self.ppid = ppid if ppid > 1 else None  # started by init (a daemon): nothing to watch
        self.frontend: int | None = None
        self.frontend_start: int | None = None
        if jpy_parent is not None and jpy_parent > 1 and jpy_parent != self.ppid:
            # A launcher between us and the frontend (a shell wrapper that did not exec): watch
            # the frontend itself, if it is really one of our ancestors (the variable may be
            # inherited from an unrelated, long gone process).
            if _is_ancestor(jpy_parent):
                self.frontend = jpy_parent
                stat = proc_stat(jpy_parent)
                self.frontend_start = stat.start if stat else None
            else:
                log.debug("JPY_PARENT_PID=%d is not an ancestor of this kernel: not watched", jpy_parent)

    @classmethod
    def from_environment(cls, enabled: bool = True) -> ParentWatch | None:
        if not enabled or os.name != "posix":  # on Windows JPY_PARENT_PID is a handle
            return None
        try:
            jpy_parent: int | None = int(os.environ.get("JPY_PARENT_PID", ""))
        except ValueError:  # unset
            jpy_parent = None
        watch = cls(jpy_parent, os.getppid())
        return watch if watch.ppid or watch.frontend else None

    def gone(self) -> str | None:
        """Why the kernel should stop now, or None while its launcher lives."""
        if self.ppid is not None and os.getppid() != self.ppid:
            return f"the process that started this kernel (pid {self.ppid}) is gone"
        if self.frontend is not None:
            if self.frontend_start is None:  # no /proc: ask the system whether the pid exists
                alive = _pid_exists(self.frontend)
            else:  # the same process (pid and start time), and not a zombie
                stat = proc_stat(self.frontend)
                alive = stat is not None and stat.state not in "ZX" and stat.start == self.frontend_start
            if not alive:
                return f"the frontend that launched this kernel (JPY_PARENT_PID {self.frontend}) is gone"
        return None


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_ancestor(pid: int) -> bool:
    current = os.getppid()
    if proc_stat(current) is None:  # no /proc: trust the variable if that process exists
        return _pid_exists(pid)
    for _ in range(64):
        if current == pid:
            return True
        stat = proc_stat(current)
        if current <= 1 or stat is None:
            return False
        current = stat.ppid
    return False


# -- children -----------------------------------------------------------------------

_tracked: dict[int, int | None] = {}  # group leader pid -> its start time


def track_group(pid: int) -> None:
    """Remember a process group/session the kernel made (``!cmd``): its members, even orphaned
    background jobs whose leader has exited, are terminated at shutdown."""
    stat = proc_stat(pid)
    _tracked[pid] = stat.start if stat else None
    while len(_tracked) > TRACKED_GROUPS_MAX:
        del _tracked[next(iter(_tracked))]


def find_children(table: dict[int, ProcStat] | None = None) -> set[int]:
    """Live processes the kernel started: descendants, its session's members, tracked groups."""
    table = process_table() if table is None else table
    if not table:  # no /proc (macOS, Windows): nothing is found
        return set()
    me = os.getpid()
    children: dict[int, list[int]] = {}
    for pid, stat in table.items():
        children.setdefault(stat.ppid, []).append(pid)
    found: set[int] = set()
    todo = [me]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    leaders = {me} if os.getsid(0) == me else set()  # a session of our own (jupyter_client's way)
    for leader, start in list(_tracked.items()):
        leader_stat = table.get(leader)
        if leader_stat is None or leader_stat.start == start:  # else the pid was reused: not ours
            leaders.add(leader)
    if leaders:
        found.update(pid for pid, stat in table.items() if stat.sid in leaders or stat.pgid in leaders)
    found.discard(me)
    return {pid for pid in found if table[pid].state not in "ZX"}


def _signal_all(pids: Iterable[int], table: dict[int, ProcStat], sig: int) -> None:
    """``sig`` to each pid; to a whole process group (which reaches its new members too) when
    every member of the group is one of ours."""
    pids = set(pids)
    own_group = os.getpgrp()
    members: dict[int, set[int]] = {}
    for pid, stat in table.items():
        if stat.state not in "ZX":
            members.setdefault(stat.pgid, set()).add(pid)
    for pgid in {table[pid].pgid for pid in pids}:
        if pgid != own_group and members.get(pgid, set()) <= pids:
            try:
                os.killpg(pgid, sig)
            except OSError:
                pass
            else:
                pids -= members[pgid]
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, sig)


def terminate_children(grace: float = 1.0) -> int:
    """SIGTERM to every child process, SIGKILL to those left after ``grace`` seconds.

    Return how many processes were signalled. Without /proc, nothing is found and nothing done.
    """
    table = process_table()
    targets = find_children(table)
    if not targets:
        return 0
    log.info("terminating %d child process(es): %s", len(targets), sorted(targets))
    _signal_all(targets, table, signal.SIGTERM)
    ours = {pid: table[pid].start for pid in targets}
    deadline = time.monotonic() + grace
    while True:
        table = process_table()
        # A child's own children, started before or while it stops, are ours as well.
        ours.update({pid: table[pid].start for pid in find_children(table)})
        left = {pid for pid, start in ours.items() if _alive(table.get(pid), start)}
        if not left or time.monotonic() >= deadline:
            break
        time.sleep(POLL_S)
    if left:
        log.warning(
            "killing %d child process(es) still running after %.1f s: %s", len(left), grace, sorted(left)
        )
        _signal_all(left, table, signal.SIGKILL)
    return len(ours)


def interrupt_group_members() -> None:
    """SIGINT to our descendants in our process group, when we lead it (Linux: /proc).

    Only when the group is ours (a frontend starts kernels in a session of their own), and
    only to processes we started: a kernel run in a shell pipeline (``... | tee log``) must
    not signal its neighbours in that job.
    """
    me = os.getpid()
    if not hasattr(os, "getpgrp") or os.getpgrp() != me:
        return
    table = process_table()
    for pid, stat in table.items():
        if pid == me or stat.pgid != me or stat.state in "ZX":
            continue
        ancestor, hops = stat.ppid, 0
        while ancestor in table and ancestor != me and hops < 64:
            ancestor, hops = table[ancestor].ppid, hops + 1
        if ancestor == me:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGINT)


def _alive(stat: ProcStat | None, start: int) -> bool:
    return stat is not None and stat.start == start and stat.state not in "ZX"


# -- crashes ------------------------------------------------------------------------

Arg = TypeVar("Arg")
Result = TypeVar("Result")
_UNPRINTABLE = re.compile(r"[^ -~]")  # faulthandler writes printable ASCII as it is


def _call(handler: Callable[[Any], Any], arg: Any) -> Any:
    return handler(arg)


def labelled_call(label: str, handler: Callable[[Arg], Result], arg: Arg) -> Result:
    """``handler(arg)`` under a frame whose function name is ``label`` (made printable, bounded).

    faulthandler prints the function name of every frame when the process gets a fatal signal,
    so a crash dump then names, say, the msg_id of the execute_request that was running. About
    1.5 us: a code object copy and a function.
    """
    name = label[:120]
    if not (name.isascii() and name.isprintable()):
        name = _UNPRINTABLE.sub("?", name)
    func = types.FunctionType(_call.__code__.replace(co_name=name), _call.__globals__)
    result: Result = func(handler, arg)
    return result


def enable_crash_dumps() -> int | None:
    """Write Python tracebacks of all threads on a fatal signal (faulthandler) to the real stderr.

    A private copy of fd 2 is used, made before fd 2 is pointed at the output capture pipe, and
    never closed, so the dump reaches where the kernel's stderr went (a log file, the
    frontend's terminal) whatever happens to fd 2 later. Return that fd, or None.
    """
    import faulthandler

    try:
        fd = os.dup(2)
        faulthandler.enable(file=fd, all_threads=True)
    except (OSError, ValueError, RuntimeError) as err:
        log.warning("crash dumps are off: %s", err)
        return None
    return fd
