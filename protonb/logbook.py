"""protonb's warnings and errors, kept for the researcher instead of printed under a random cell.

In a Jupyter kernel, a log record with no handler is written to stderr, and the kernel shows
stderr under whichever cell ran last: a participant's failing route function would print
its traceback under the researcher's unrelated cell. Once a prototype is served in a kernel,
the logbook holds protonb's recent warnings and errors (tracebacks included) instead: the
dashboard shows them in its log area, also those from before it was opened, and
``proto.log`` lists them. Outside a kernel (``protonb serve``) nothing changes: the log goes
to the terminal.
"""

from __future__ import annotations

import logging
from collections import deque

LOG_LINES = 50
FORMAT = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S")


class Logbook(logging.Handler):
    """The last ``LOG_LINES`` warnings and errors of the ``protonb`` logger, formatted."""

    def __init__(self, size: int = LOG_LINES) -> None:
        super().__init__(logging.WARNING)
        self.lines: deque[str] = deque(maxlen=size)
        self.setFormatter(FORMAT)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:
            self.handleError(record)


_logbook: Logbook | None = None


def in_kernel() -> bool:
    """Whether this code runs inside an IPython kernel (where stderr goes under a cell)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def install() -> Logbook:
    """Put the logbook on the ``protonb`` logger (once per process) and return it."""
    global _logbook
    if _logbook is None:
        _logbook = Logbook()
        logging.getLogger("protonb").addHandler(_logbook)
    return _logbook


def recent() -> list[str]:
    """The lines kept so far (none if the logbook was never installed)."""
    return list(_logbook.lines) if _logbook is not None else []
