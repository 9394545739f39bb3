"""``input()`` and ``getpass.getpass()`` for cells, backed by a hook from the kernel core."""

from __future__ import annotations

import builtins
from collections.abc import Callable

InputHook = Callable[[str, bool], str]  # (prompt, password) -> the line entered


class StdinNotImplementedError(RuntimeError):
    """Raised by ``input()`` when the frontend cannot answer input requests."""


def install_input_hook(hook: InputHook) -> None:
    """Route ``input()`` and ``getpass.getpass()`` in every module to ``hook``."""
    import getpass

    def kernel_input(prompt: object = "") -> str:
        return hook(str(prompt), False)

    def kernel_getpass(prompt: str = "Password: ", stream: object = None) -> str:
        return hook(str(prompt), True)

    kernel_input.__doc__ = builtins.input.__doc__
    kernel_getpass.__doc__ = getpass.getpass.__doc__
    builtins.input = kernel_input
    getpass.getpass = kernel_getpass
    builtins.StdinNotImplementedError = StdinNotImplementedError  # type: ignore[attr-defined]
