"""protonb: clickable prototypes for user research, served from a notebook, answers watched live.

    import protonb
    proto = protonb.Prototype("path/to/prototype")
    proto.start()
"""

from __future__ import annotations

__version__ = "0.1.0"

from .config import ConfigError
from .prototype import Prototype
from .routing import Redirect, Render, Request, Router, redirect, render
from .sqlite_store import SQLiteStore
from .store import ChangeEvent, MemoryStore, SessionRecord

__all__ = [
    "ChangeEvent",
    "ConfigError",
    "MemoryStore",
    "Prototype",
    "Redirect",
    "Render",
    "Request",
    "Router",
    "SQLiteStore",
    "SessionRecord",
    "__version__",
    "redirect",
    "render",
]
