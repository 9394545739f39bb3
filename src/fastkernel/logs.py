"""The kernel's log, ``logging.getLogger("fastkernel")``, made on its first use.

Importing ``logging`` (with the traceback and string modules it pulls in) is a few
milliseconds that a kernel which logs nothing on its way to the first reply need not pay, so
modules log through :data:`log`, whose methods make the real logger when a line is due.
Lines go to the real stderr (``sys.__stderr__``): ``sys.stderr`` becomes a kernel stream and
file descriptor 2 may be captured for the running cell.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import logging

DEBUG, INFO, WARNING, ERROR = 10, 20, 30, 40
FORMAT = "[fastkernel %(levelname)s %(asctime)s] %(message)s"


class KernelLog:
    """The few ``logging.Logger`` methods the kernel uses, on a logger made when first needed."""

    def __init__(self, name: str = "fastkernel", level: int = INFO) -> None:
        self.name = name
        self.level = level
        self._logger: logging.Logger | None = None

    def set_level(self, level: int) -> None:
        self.level = level
        if self._logger is not None:
            self._logger.setLevel(level)

    def logger(self) -> logging.Logger:
        """The real logger, with its stderr handler (made once)."""
        if self._logger is None:
            import logging

            logger = logging.getLogger(self.name)
            if not logger.handlers:
                handler = logging.StreamHandler(sys.__stderr__)
                handler.setFormatter(logging.Formatter(FORMAT, "%H:%M:%S"))
                logger.addHandler(handler)
                logger.propagate = False
            logger.setLevel(self.level)
            self._logger = logger
        return self._logger

    def debug(self, msg: str, *args: Any) -> None:
        if self.level <= DEBUG:  # the common case logs nothing and imports nothing
            self.logger().debug(msg, *args)

    def info(self, msg: str, *args: Any, exc_info: bool = False) -> None:
        self.logger().info(msg, *args, exc_info=exc_info)

    def warning(self, msg: str, *args: Any, exc_info: bool = False) -> None:
        self.logger().warning(msg, *args, exc_info=exc_info)

    def error(self, msg: str, *args: Any, exc_info: bool = False) -> None:
        self.logger().error(msg, *args, exc_info=exc_info)

    def exception(self, msg: str, *args: Any) -> None:
        """An error line with the traceback of the exception being handled."""
        self.logger().exception(msg, *args)


log = KernelLog()
