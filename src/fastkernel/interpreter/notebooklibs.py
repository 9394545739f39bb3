"""What popular libraries check to find a notebook kernel, answered when a cell imports them.

Libraries choose their notebook output (HTML, widgets, MIME bundles) by looking at the
kernel. Most of what they look at fastkernel always has, at no cost: ``get_ipython`` as a
builtin, ``get_ipython().config`` with an ``IPKernelApp`` section, real
``display_formatter.formatters``. A few checks can only pass by naming ipykernel; those are
answered here, each only when a cell imports the library that asks (an import hook), so
kernels that never import it pay nothing. docs/ipython.md lists them:

- rich (``rich.console``) and pandas (``pandas.io.formats.console``) test the shell's class
  name: ``ZMQInteractiveShell`` (rich), ``zmq`` in it (pandas). The shell's class becomes
  :class:`ZMQInteractiveShell`, a subclass of ``FastKernelShell`` that adds nothing.
- plotly (``plotly.io._renderers``) picks the ``plotly_mimetype`` renderer only for a
  ``ZMQInteractiveShell`` from a module of the ``ipykernel`` package, and otherwise adds the
  ``notebook`` renderer (a ``<script>`` output and HTML beside the JSON). Its public setting,
  ``plotly.io.renderers.default``, is set to what it picks for ipykernel, unless the
  ``PLOTLY_RENDERER`` variable or one of plotly's environment checks chose.
- tqdm (``tqdm.autonotebook``, behind ``tqdm.auto``) shows a widget bar only with
  ``ipykernel.zmqshell`` in ``sys.modules``: that module is imported (when ipykernel is
  installed) just before ``tqdm.autonotebook`` runs. It imports IPython, jupyter_client and
  pyzmq's Python side; nothing of it runs.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from types import ModuleType
from typing import TYPE_CHECKING

from fastkernel.interpreter.shell import FastKernelShell

if TYPE_CHECKING:
    from fastkernel.interpreter.core import Interpreter

# This module is imported with the first of the modules that wake it (hooks.NOTEBOOK_LIBRARIES),
# not at kernel start.
CLASS_NAME_READERS = ("rich.console", "pandas.io.formats.console")  # they read the shell's class name
PLOTLY_FALLBACK = "plotly_mimetype+notebook"  # what plotly picks for a shell it does not know


class ZMQInteractiveShell(FastKernelShell):
    """fastkernel's shell under ipykernel's class name, for libraries that test the name.

    It adds nothing: the shell is the same object, only its class name changes (see
    :mod:`fastkernel.interpreter.notebooklibs`).
    """


def adapt(interpreter: Interpreter, module: ModuleType) -> None:
    """Answer the check of ``module``, just imported."""
    shell = interpreter.shell
    if module.__name__ in CLASS_NAME_READERS and type(shell) is FastKernelShell:
        shell.__class__ = ZMQInteractiveShell
    elif module.__name__ == "plotly.io._renderers":
        _choose_plotly_renderer(module)


def prepare(interpreter: Interpreter, module: ModuleType) -> None:
    """Answer the check of ``module``, about to run."""
    if module.__name__ == "tqdm.autonotebook":
        _import_ipykernel_shell()


def _choose_plotly_renderer(renderers_module: ModuleType) -> None:
    renderers = renderers_module.renderers  # type: ignore[attr-defined]
    if "PLOTLY_RENDERER" not in os.environ and renderers.default == PLOTLY_FALLBACK:
        renderers.default = "plotly_mimetype"


def _import_ipykernel_shell() -> None:
    if importlib.util.find_spec("ipykernel") is not None:
        importlib.import_module("ipykernel.zmqshell")
