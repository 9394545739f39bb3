"""Public display API: ``from fastkernel.display import display, update_display, clear_output``."""

from fastkernel.interpreter.display import DisplayHandle, clear_output, display, update_display

__all__ = ["DisplayHandle", "clear_output", "display", "update_display"]
