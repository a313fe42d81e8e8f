"""The session store contract: records, change events, and an in-memory store.

Everything that reads or changes sessions (the web server, the researcher's Python API, the
widgets) meets here. A store keeps one ``SessionRecord`` per session id and tells its
subscribers about every change, synchronously, on the thread that made it.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

log = logging.getLogger("protonb.store")

#: How many page paths a session remembers, oldest dropped first.
PAGE_HISTORY = 100


class StoreClosed(RuntimeError):
    """The session store was closed (``proto.close()``); the message says what to do."""


@dataclass
class SessionRecord:
    """One participant's session as the store keeps it."""

    id: str
    data: dict[str, Any] = field(default_factory=dict)
    created: float = field(default_factory=time.time)
    last_active: float = field(default_factory=time.time)
    current_page: str = ""
    pages: list[str] = field(default_factory=list)
    label: str = ""
    #: ``data`` as the store held it when this record was read or written (its JSON text),
    #: or None when not known; a cheap way to tell whether the data has changed since.
    stored_data: str | None = field(default=None, repr=False, compare=False)

    def copy(self) -> SessionRecord:
        """A deep copy: changing it never changes the store."""
        return replace(self, data=copy.deepcopy(self.data), pages=list(self.pages))

    def visit(self, page: str, when: float | None = None) -> None:
        """Note that the participant requested ``page``."""
        self.last_active = time.time() if when is None else when
        if page:
            self.current_page = page
            if not self.pages or self.pages[-1] != page:
                self.pages.append(page)
                del self.pages[:-PAGE_HISTORY]


@dataclass(frozen=True)
class ChangeEvent:
    """What changed in a store.

    ``kind`` is one of ``"created"``, ``"data"`` (answers changed), ``"visit"`` (a page was
    requested, answers unchanged), ``"label"``, ``"deleted"`` or ``"cleared"`` (every session
    removed, ``session_id`` is empty). ``record`` is a copy of the session after the change,
    or None when it was removed.
    """

    kind: str
    session_id: str
    record: SessionRecord | None = None


Listener = Callable[[ChangeEvent], None]


class Store(Protocol):
    """What every session store offers."""

    def get(self, session_id: str) -> SessionRecord | None: ...
    def set(self, record: SessionRecord, kind: str = "data") -> None: ...
    def touch(self, record: SessionRecord) -> None: ...
    def delete(self, session_id: str) -> bool: ...
    def list(self) -> list[SessionRecord]: ...
    def data_texts(self) -> list[tuple[str, str]]: ...
    def clear(self) -> None: ...
    def purge(self, older_than: float) -> int: ...
    def subscribe(self, listener: Listener) -> Callable[[], None]: ...
    def close(self) -> None: ...


class ChangeHub:
    """Keeps subscribers and tells them about changes; a failing one never stops the rest."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(event)`` after every change; returns a function that unsubscribes."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def __len__(self) -> int:
        """How many listeners there are."""
        return len(self._listeners)

    def emit(self, kind: str, session_id: str, record: SessionRecord | None) -> None:
        if not self._listeners:
            return
        event = ChangeEvent(kind, session_id, record.copy() if record else None)
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("a session change listener failed")


#: One encoder for all: json.dumps with options builds a new one on every call (~2 us).
_STRICT_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def dumps_data(data: dict[str, Any]) -> str:
    """Serialise session data the one way every store uses: strict JSON (NaN and Infinity
    raise ValueError), so whatever is stored can be read by any JSON reader."""
    return _STRICT_JSON.encode(data)


class MemoryStore:
    """A store that lives as long as the process; keeps data as JSON so it behaves as SQLite."""

    def __init__(self) -> None:
        self._rows: dict[str, tuple[SessionRecord, str]] = {}
        self._hub = ChangeHub()

    def _load(self, row: tuple[SessionRecord, str]) -> SessionRecord:
        record, data_json = row
        return replace(record, data=json.loads(data_json), pages=list(record.pages), stored_data=data_json)

    def get(self, session_id: str) -> SessionRecord | None:
        row = self._rows.get(session_id)
        return self._load(row) if row else None

    def set(self, record: SessionRecord, kind: str = "data") -> None:
        data_json = dumps_data(record.data)
        self._rows[record.id] = (replace(record, data={}, pages=list(record.pages)), data_json)
        record.stored_data = data_json
        self._hub.emit(kind, record.id, record)

    def touch(self, record: SessionRecord) -> None:
        """Keep the visit fields of ``record`` (last active, pages); its data is not saved."""
        row = self._rows.get(record.id)
        if row is None:
            return
        kept = row[0]
        kept.last_active, kept.current_page = record.last_active, record.current_page
        kept.pages = list(record.pages)
        self._hub.emit("visit", record.id, self._load(row))

    def delete(self, session_id: str) -> bool:
        if self._rows.pop(session_id, None) is None:
            return False
        self._hub.emit("deleted", session_id, None)
        return True

    def list(self) -> list[SessionRecord]:
        records = [self._load(row) for row in self._rows.values()]
        records.sort(key=lambda r: r.last_active, reverse=True)
        return records

    def data_texts(self) -> list[tuple[str, str]]:
        """Every session's id and its data as stored JSON text, newest activity first."""
        rows = sorted(self._rows.items(), key=lambda item: item[1][0].last_active, reverse=True)
        return [(sid, data_json) for sid, (_, data_json) in rows]

    def clear(self) -> None:
        self._rows.clear()
        self._hub.emit("cleared", "", None)

    def purge(self, older_than: float) -> int:
        stale = [sid for sid, (rec, _) in self._rows.items() if rec.last_active < older_than]
        for sid in stale:
            self.delete(sid)
        return len(stale)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        return self._hub.subscribe(listener)

    def close(self) -> None:
        pass

    def ids(self) -> Iterable[str]:
        return list(self._rows)
