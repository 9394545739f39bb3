"""The kernel's one asyncio event loop: top-level ``await`` cells, and tasks between cells.

asyncio is imported, and the loop created, by the first cell that uses ``await``,
``async for`` or ``async with`` at top level; a kernel that never awaits never loads
asyncio. The same loop serves every later cell, so a task created in one cell is still
there in the next. It runs:

- while a cell's coroutine runs (:meth:`EventLoopHost.run`): the cell and every pending
  task make progress;
- between cells, when the transport's serve loop runs it while it waits for the next
  request (it asks for the loop through ``Interpreter.event_loop``).

``asyncio.run()`` in a plain cell starts a loop of its own, as in a script. Inside the
kernel's running loop (an ``await`` cell) it cannot work, and its error says what to write
instead. No threads are created here.

Once user code imports asyncio (on the main thread), the kernel's loop is created and becomes
asyncio's current loop, so ``asyncio.get_event_loop().create_task(...)`` in a cell that does
not await runs its task between cells, as under ipykernel.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import threading
import weakref
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # asyncio is imported only when a cell first awaits
    import asyncio

ASYNCIO_RUN_HINT = (
    "asyncio.run() cannot be called while the kernel's event loop is running, and this code runs "
    "inside it (a cell that uses top-level await runs in that loop). Write `await main()` instead "
    "of `asyncio.run(main())`: top-level await works in every cell."
)


# The kernel's loops (one per EventLoopHost; tests make several), for the asyncio.run guard.
_KERNEL_LOOPS: weakref.WeakSet[Any] = weakref.WeakSet()


def _guard_asyncio_run(asyncio_module: Any) -> None:
    """Make ``asyncio.run`` inside the kernel's running loop fail with a clear hint."""
    original = asyncio_module.run
    if getattr(original, "__fastkernel_guard__", False):
        return

    @functools.wraps(original)
    def run(main: Any, *args: Any, **kwargs: Any) -> Any:
        running = asyncio_module._get_running_loop()
        if running is not None and running in _KERNEL_LOOPS:
            if asyncio_module.iscoroutine(main):
                main.close()  # no "coroutine was never awaited" warning on top of the error
            raise RuntimeError(ASYNCIO_RUN_HINT)
        return original(main, *args, **kwargs)

    run.__fastkernel_guard__ = True  # type: ignore[attr-defined]
    asyncio_module.run = run


class EventLoopHost:
    """Owns the kernel's event loop: created lazily, reused for the life of the kernel."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The loop, or None before the first ``await`` cell (or after user code closed it)."""
        loop = self._loop
        return None if loop is None or loop.is_closed() else loop

    def adopt_when_imported(self) -> Callable[[], None]:
        """Make the kernel's loop asyncio's current loop as soon as user code imports asyncio.

        So ``asyncio.get_event_loop().create_task(...)`` in a cell that does not await schedules
        a task on the loop the kernel runs between cells, as under ipykernel. Nothing is done if
        asyncio is already imported (a test process). Returns a function that cancels it.
        """
        if "asyncio" in sys.modules:
            return lambda: None
        from fastkernel.interpreter.importhooks import after_import

        def adopt(module: Any) -> None:
            if threading.current_thread() is threading.main_thread():
                self._ensure_loop()

        return after_import("asyncio", adopt)

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        import asyncio

        loop = self.loop
        if loop is None:
            loop = self._loop = asyncio.new_event_loop()
            _KERNEL_LOOPS.add(loop)
            _guard_asyncio_run(asyncio)
        # asyncio.run() in an earlier cell leaves no current loop; tasks that call
        # asyncio.get_event_loop() must find this one.
        asyncio.set_event_loop(loop)
        return loop

    def run(self, coroutine: Coroutine[Any, Any, Any], runner: str = "asyncio") -> Any:
        """Run a cell's coroutine to completion on the kernel's loop and return its value.

        An interrupt (KeyboardInterrupt) that leaves the cell's task pending cancels it, so an
        interrupted cell does not resume by itself the next time the loop runs. ``runner``
        "trio" (``%autoawait trio``) runs it with :func:`run_with_trio` instead.
        """
        if runner == "trio":
            return run_with_trio(coroutine)
        loop = self._ensure_loop()
        task = loop.create_task(coroutine)
        try:
            return loop.run_until_complete(task)
        except BaseException:
            self._finish(loop, task)
            raise

    @staticmethod
    def _finish(loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any]) -> None:
        if not task.done():
            task.cancel()
            # The cancellation (or whatever the task raises on its way out) is expected.
            with contextlib.suppress(BaseException):
                loop.run_until_complete(task)
        if not task.cancelled():
            task.exception()  # retrieved: no "Task exception was never retrieved" later

    def close(self) -> None:
        """Cancel pending tasks and close the loop (kernel shutdown, tests)."""
        loop = self.loop
        if loop is None or loop.is_running():
            return
        import asyncio

        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()
        asyncio.set_event_loop(None)


def run_with_trio(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run a cell's coroutine with ``trio.run`` (``%autoawait trio``): a new trio run per cell.

    As under IPython, tasks do not outlive their cell (trio's nurseries end with it). While it
    runs, SIGINT has Python's default handler, so trio installs its own and an interrupt
    reaches the cell's task as KeyboardInterrupt, never trio's scheduler in the middle of a step.
    """
    import signal

    import trio

    async def cell() -> Any:
        return await coroutine

    if threading.current_thread() is not threading.main_thread():
        return trio.run(cell)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return trio.run(cell)
    finally:
        signal.signal(signal.SIGINT, previous)
