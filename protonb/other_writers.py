"""What another process changed in a session store file, to tell this store's subscribers.

A dashboard in a notebook may watch a prototype that ``protonb serve`` in a terminal is
serving: two processes, one store file. A store tells its subscribers of its own changes as it
makes them. The other process's changes it learns by comparing the file's rows with what it
last knew of each (``KnownRows``), whenever the file's data version has moved. The store does
this only while someone listens and an event loop runs (see ``SQLiteStore.subscribe``).
"""

from __future__ import annotations

from collections.abc import Iterable

from .store import SessionRecord

#: What tells one state of a session from another: last active, current page, label, and a
#: hash of its answers as stored (the text itself would double the memory a dashboard holds).
RowKey = tuple[float, str, str, int]
#: A stored row: id, created, last active, current page, pages (JSON), label, data (JSON).
Row = tuple


def row_key(row: Row) -> RowKey:
    return (row[2], row[3], row[5], hash(row[6]))


def record_key(record: SessionRecord) -> RowKey:
    return (record.last_active, record.current_page, record.label, hash(record.stored_data))


class KnownRows:
    """The last known state of every session in the file, kept up to date with this store's
    own changes (``note``), so that ``compare`` finds only what others changed."""

    def __init__(self, rows: Iterable[Row]) -> None:
        self.keys: dict[str, RowKey] = {row[0]: row_key(row) for row in rows}

    def note(self, kind: str, session_id: str, record: SessionRecord | None) -> None:
        """This store made a change (one of the store's change kinds)."""
        if kind == "cleared":
            self.keys.clear()
        elif record is None:
            self.keys.pop(session_id, None)
        else:
            self.keys[session_id] = record_key(record)

    def compare(self, rows: Iterable[Row]) -> list[tuple[str, str, Row | None]]:
        """The changes from what was known to ``rows`` (the whole file now), as (kind, session
        id, row): "created", "data", "label" or "visit" with the row; "deleted" with None."""
        changes: list[tuple[str, str, Row | None]] = []
        gone = set(self.keys)
        for row in rows:
            sid = row[0]
            gone.discard(sid)
            before = self.keys.get(sid)
            now = row_key(row)
            if before == now:
                continue
            if before is None:
                kind = "created"
            elif before[3] != now[3]:
                kind = "data"
            elif before[2] != now[2]:
                kind = "label"
            else:
                kind = "visit"
            changes.append((kind, sid, row))
        changes.extend(("deleted", sid, None) for sid in gone)
        return changes
