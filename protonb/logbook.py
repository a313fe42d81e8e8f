"""protonb's warnings and errors, kept for the researcher instead of printed under a random cell.

In a Jupyter kernel, a log record with no handler is written to stderr, and the kernel shows
stderr under whichever cell ran last: a participant's failing route function would print
its traceback under the researcher's unrelated cell. Once a prototype is served in a kernel,
the logbook holds protonb's recent warnings and errors (tracebacks included) instead: the
dashboard shows them in its log area, also those from before it was opened, and
``proto.log`` lists them. Outside a kernel (``protonb serve``) nothing changes: the log goes
to the terminal.

One kernel may serve several prototypes. A request's problems belong to the prototype that
serves it: the server names it (``serving``) for the request's context, and each prototype's
dashboard and ``proto.log`` show its own problems and those that belong to none.
"""

from __future__ import annotations

import contextvars
import logging
from collections import deque

LOG_LINES = 50
FORMAT = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S")

_serving: contextvars.ContextVar[str | None] = contextvars.ContextVar("protonb_serving", default=None)


def serving(prototype: str) -> None:
    """Say that what runs in this context (a request) works for ``prototype`` (its folder)."""
    if _serving.get() != prototype:
        _serving.set(prototype)


def belongs(prototype: str | None, owner: str | None = None) -> bool:
    """Whether a problem is ``prototype``'s to show: its own, or nobody's. ``owner`` is the
    prototype it was logged for; left out, the one being served now. A ``prototype`` of None
    shows every problem."""
    if owner is None:
        owner = _serving.get()
    return owner is None or prototype is None or owner == prototype


class Logbook(logging.Handler):
    """The last ``LOG_LINES`` warnings and errors of the ``protonb`` logger, formatted, each
    with the prototype it belongs to (None: to every one)."""

    def __init__(self, size: int = LOG_LINES) -> None:
        super().__init__(logging.WARNING)
        self.lines: deque[tuple[str | None, str]] = deque(maxlen=size)
        self.setFormatter(FORMAT)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append((_serving.get(), self.format(record)))
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


def recent(prototype: str | None = None) -> list[str]:
    """The lines kept so far that belong to ``prototype`` (none if the logbook was never
    installed); all of them when ``prototype`` is None."""
    if _logbook is None:
        return []
    return [line for owner, line in _logbook.lines if belongs(prototype, owner)]
