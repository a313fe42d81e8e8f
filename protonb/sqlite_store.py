"""SQLiteStore: the durable session store, one SQLite file in WAL mode.

Every change of answers is one short transaction on the calling thread (the server's event
loop), so an answer is on disk before the response that confirms it is sent. Page visits are
grouped: while an event loop runs, the visits of the next ``VISIT_FLUSH_SECONDS`` are written
in one transaction (they are seen at once by this store and its subscribers). A store file deleted
while protonb runs (or its whole folder) is created again, empty, at the next change; a
row that cannot be read is logged once and dropped, so that participant starts afresh.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from .config import ConfigError
from .other_writers import KnownRows
from .store import ChangeHub, Listener, SessionRecord, StoreClosed, dumps_data
from .watch import MODIFIED, MOVED, FolderWatch

log = logging.getLogger("protonb.store")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    last_active REAL NOT NULL,
    current_page TEXT NOT NULL DEFAULT '',
    pages TEXT NOT NULL DEFAULT '[]',
    label TEXT NOT NULL DEFAULT '',
    data TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS sessions_last_active ON sessions (last_active);
"""

_COLUMNS = "id, created, last_active, current_page, pages, label, data"
#: The pages column's JSON (json.dumps with an option builds a new encoder on every call).
_pages_json = json.JSONEncoder(ensure_ascii=False).encode
#: How many recently used sessions are kept decoded-ready (as their stored row, immutable).
CACHE_SIZE = 256
#: Page visits made within this many seconds of each other are committed together.
VISIT_FLUSH_SECONDS = 0.05
_UPDATE_VISIT = "UPDATE sessions SET last_active = ?, current_page = ?, pages = ? WHERE id = ?"
#: While someone listens, how often the file is checked for another process's changes.
OTHER_WRITERS_SECONDS = 0.5
#: After the store file or its WAL was written, how long every use asks whether another
#: connection committed: a commit is written to the WAL (which is what is told) before its
#: sync to the disk ends, and only then do readers see it, with nothing more to tell.
COMMIT_VISIBLE_SECONDS = 2.0


class SQLiteStore:
    """Sessions in an SQLite database file; created (with its folder) when missing."""

    def __init__(self, path: str | Path, prepare: Callable[[], object] | None = None) -> None:
        """``prepare`` makes the folder ready (called before the file is created)."""
        self.path = Path(path)
        self._prepare = prepare
        self._hub = ChangeHub()
        self._inode = 0
        #: Recently read or written rows by session id, as stored (immutable tuples: id,
        #: created, last_active, page, pages as a tuple, label, data JSON text). Valid while
        #: no other connection has written the file (PRAGMA data_version is unchanged).
        self._rows: dict[str, tuple] = {}
        self._data_version = -1
        self._synchronous = "FULL"
        #: Visits not yet written, by session id: (last active, page, pages, id).
        self._visits: dict[str, tuple[float, str, tuple[str, ...], str]] = {}
        self._visit_flush: asyncio.TimerHandle | None = None
        self._flush_loop: asyncio.AbstractEventLoop | None = None
        self._watch: FolderWatch | None = None
        #: While someone listens: each session as last known, and whether another connection
        #: has committed since it was compared (see other_writers.py).
        self._known: KnownRows | None = None
        self._others_wrote = False
        self._follow: asyncio.TimerHandle | None = None
        self._closed = False
        self._ask_version_until = 0.0
        self._db = self._connect()

    def _connect(self) -> sqlite3.Connection:
        if self._prepare is not None:
            self._prepare()
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            pass
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            # FULL: each commit is synced to the disk, so an answer confirmed to the
            # participant survives a power cut too, not only a crash of protonb.
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA busy_timeout=5000")
            db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            db.close()
            raise ConfigError(
                f"The session store {self.path} cannot be read ({exc}): move it somewhere"
                " else to start with a new, empty store (it may hold answers worth saving)."
            ) from exc
        self._inode = os.stat(self.path).st_ino
        self._rows.clear()
        self._data_version = -1
        self._synchronous = "FULL"
        self._watch_file()
        return db

    def _watch_file(self) -> None:
        """Be told by the kernel when the file is replaced or written by another connection,
        so that a request checks neither with a system call of its own (see watch.py). A new
        watch's topics start changed: the first use checks the file and the row cache."""
        if self._watch is not None:
            self._watch.close()
        watch = self._watch = FolderWatch()
        watch.add("replaced", self.path, mask=MOVED)
        watch.add("written", self.path, mask=MODIFIED)
        watch.add("wal", f"{self.path}-wal", mask=MODIFIED | MOVED)
        watch.changed("replaced")  # the caller compares the file's inode after this

    @property
    def _conn(self) -> sqlite3.Connection:
        """The connection, to a store file created again if it was deleted meanwhile."""
        if self._closed:
            self._refuse_closed()
        watch = self._watch
        assert watch is not None
        watch.poll()
        if not watch.changed("replaced"):
            return self._db
        # Watched afresh first (its folder may have been moved away and back, taking the
        # old watch with it), so that a replacement from now on is told again.
        if watch.active:
            self._watch_file()
        try:
            same_file = os.stat(self.path).st_ino == self._inode
        except FileNotFoundError:
            same_file = False
        if not same_file:
            log.warning("the session store %s was deleted or replaced; starting a new one", self.path)
            self._db.close()
            self._db = self._connect()
        return self._db

    def _refuse_closed(self) -> None:
        raise StoreClosed(
            f"The session store {self.path} was closed (proto.close()): open the folder again"
            " with protonb.Prototype(...) to see its sessions."
        )

    def _durable(self) -> sqlite3.Connection:
        """The connection, set to sync every commit to the disk (answers, labels, removals),
        with the visits waiting to be written already written."""
        if self._visits:
            self.flush_visits()
        db = self._conn
        if self._synchronous != "FULL":
            db.execute("PRAGMA synchronous=FULL")
            self._synchronous = "FULL"
        return db

    def _current(self) -> sqlite3.Connection:
        """The connection, for reading everything as it is (visits waiting are written first)."""
        if self._visits:
            self.flush_visits()
        return self._conn

    def _cached_rows(self) -> dict[str, tuple]:
        """The row cache, emptied first if another connection (another process, a second
        store on the same file) has committed since it was filled."""
        self._check_other_writers()
        return self._rows

    def _check_other_writers(self) -> None:
        db = self._conn
        watch = self._watch
        assert watch is not None
        now = time.monotonic()
        written, wal = watch.changed("written"), watch.changed("wal")
        if written or wal:  # this store's own commits count too: then the version is the same
            self._ask_version_until = now + COMMIT_VISIBLE_SECONDS
        if now <= self._ask_version_until:
            version = db.execute("PRAGMA data_version").fetchone()[0]
            if version != self._data_version:
                self._rows.clear()
                self._data_version = version
                self._others_wrote = True

    def _remember(self, row: tuple) -> None:
        rows = self._rows
        rows.pop(row[0], None)
        if len(rows) >= CACHE_SIZE:
            del rows[next(iter(rows))]  # the least recently used
        rows[row[0]] = row

    def _row_to_record(self, row: tuple) -> SessionRecord | None:
        sid, created, last_active, page, pages, label, data = row
        try:
            loaded = json.loads(data)
            visited = json.loads(pages)
            if not isinstance(loaded, dict) or not isinstance(visited, list):
                raise ValueError("not a JSON object")
            if not all(isinstance(t, (int, float)) for t in (created, last_active)):
                raise ValueError("its times are not numbers")
            if not isinstance(page, str) or not isinstance(label, str):
                raise ValueError("its page or label is not text")
            if not all(isinstance(visit, str) for visit in visited):
                raise ValueError("its pages are not text")
        except (ValueError, TypeError) as exc:
            log.warning("session %s… is unreadable (%s); it is discarded", sid[:8], exc)
            self._rows.pop(sid, None)
            self._durable().execute("DELETE FROM sessions WHERE id = ?", (sid,))
            return None
        return _record(row, loaded, visited)

    def get(self, session_id: str) -> SessionRecord | None:
        rows = self._cached_rows()
        row = rows.get(session_id)
        if row is not None:
            # Checked when it was first read or written: only the answers need decoding.
            rows[session_id] = rows.pop(session_id)  # now the most recently used
            return _record(row, json.loads(row[6]), list(row[4]))
        row = self._current().execute(
            f"SELECT {_COLUMNS} FROM sessions WHERE id = ?", (session_id,)
        ).fetchone()
        if not row:
            return None
        record = self._row_to_record(row)
        if record is not None:
            self._remember(row[:4] + (tuple(record.pages),) + row[5:])
        return record

    def set(self, record: SessionRecord, kind: str = "data") -> None:
        """Insert or replace the whole record; ``kind`` names the change for subscribers
        (``"created"`` for a new session)."""
        data = dumps_data(record.data)
        db = self._durable()
        self._rows.pop(record.id, None)
        # fetchall: the statement runs to its end, so the commit is done before this returns.
        (created,) = db.execute(
            "INSERT INTO sessions (id, created, last_active, current_page, pages, label, data)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT(id) DO UPDATE SET last_active = excluded.last_active,"
            " current_page = excluded.current_page, pages = excluded.pages,"
            " label = excluded.label, data = excluded.data"
            " RETURNING created",
            (
                record.id,
                record.created,
                record.last_active,
                record.current_page,
                _pages_json(record.pages),
                record.label,
                data,
            ),
        ).fetchall()[0]
        visit = (record.last_active, record.current_page, tuple(record.pages))
        self._remember((record.id, created, *visit, record.label, data))
        record.stored_data = data
        self._emit(kind, record.id, record)

    def touch(self, record: SessionRecord) -> None:
        """Save the visit fields of ``record`` (last active, current page, pages) only.

        A visit is committed but not synced to the disk by itself (synchronous=NORMAL: it
        survives a crash of protonb, and the next synced commit takes it to the disk too).
        Answers, labels and removals are synced on every commit (``_durable`` sets FULL again
        before each of them); a page view is not worth a disk flush, which costs ten times
        the write. While an event loop runs, the visits of a session held ready here are
        written together, within VISIT_FLUSH_SECONDS, in one transaction.
        """
        cached = self._rows.pop(record.id, None)
        pages = tuple(record.pages)
        visit = (record.last_active, record.current_page, pages, record.id)
        if cached is None or not self._defer(visit):
            self._visits.pop(record.id, None)  # an older visit kept for later must not follow
            if not self._write_visits([visit]):
                return
        else:
            sid, created, _, _, _, label, data = cached
            self._remember((sid, created, record.last_active, record.current_page, pages, label, data))
        self._emit("visit", record.id, record)

    def _defer(self, visit: tuple[float, str, tuple[str, ...], str]) -> bool:
        """Keep ``visit`` to be written with others soon; False when no event loop runs."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        if self._visit_flush is None or self._flush_loop is not loop:
            # (A flush due on a loop that has stopped since, as in tests, would never come.)
            if self._visit_flush is not None:
                self._visit_flush.cancel()
            self._visit_flush = loop.call_later(VISIT_FLUSH_SECONDS, self.flush_visits)
            self._flush_loop = loop
        self._visits[visit[3]] = visit
        return True

    def flush_visits(self) -> None:
        """Write the visits kept for later now, in one transaction."""
        if self._visit_flush is not None:
            self._visit_flush.cancel()
            self._visit_flush = None
        visits, self._visits = list(self._visits.values()), {}
        if visits:
            try:
                self._write_visits(visits)
            except sqlite3.Error:
                log.exception("writing %d page visit(s) to the session store failed", len(visits))

    def _write_visits(self, visits: list[tuple[float, str, tuple[str, ...], str]]) -> int:
        """Commit ``visits`` (at synchronous=NORMAL); returns how many rows they changed."""
        db = self._conn
        if self._synchronous != "NORMAL":
            db.execute("PRAGMA synchronous=NORMAL")
            self._synchronous = "NORMAL"
        rows = [(when, page, _pages_json(pages), sid) for when, page, pages, sid in visits]
        if len(rows) == 1:
            return db.execute(_UPDATE_VISIT, rows[0]).rowcount
        db.execute("BEGIN")
        try:
            changed = db.executemany(_UPDATE_VISIT, rows).rowcount
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return changed

    def delete(self, session_id: str) -> bool:
        self._rows.pop(session_id, None)
        cursor = self._durable().execute("DELETE FROM sessions WHERE id = ?", (session_id,))
        if not cursor.rowcount:
            return False
        self._emit("deleted", session_id, None)
        return True

    def list(self) -> list[SessionRecord]:
        rows = self._current().execute(
            f"SELECT {_COLUMNS} FROM sessions ORDER BY last_active DESC"
        ).fetchall()
        records = (self._row_to_record(row) for row in rows)
        return [record for record in records if record is not None]

    def data_texts(self) -> list[tuple[str, str]]:
        """Every session's id and its data as stored JSON text, newest activity first
        (a search reads these without decoding every session)."""
        rows = self._current().execute("SELECT id, data FROM sessions ORDER BY last_active DESC").fetchall()
        return [(str(sid), str(data)) for sid, data in rows]

    def count(self) -> int:
        return int(self._current().execute("SELECT count(*) FROM sessions").fetchone()[0])

    def clear(self) -> None:
        self._rows.clear()
        self._durable().execute("DELETE FROM sessions")
        self._emit("cleared", "", None)

    def purge(self, older_than: float) -> int:
        """Remove sessions last active before ``older_than`` (a Unix time); returns how many."""
        rows = self._durable().execute(
            "DELETE FROM sessions WHERE last_active < ? RETURNING id", (older_than,)
        ).fetchall()
        for (sid,) in rows:
            self._rows.pop(sid, None)
            self._emit("deleted", sid, None)
        return len(rows)

    def _emit(self, kind: str, session_id: str, record: SessionRecord | None) -> None:
        if self._known is not None:
            self._known.note(kind, session_id, record)
        self._hub.emit(kind, session_id, record)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(event)`` after every change. Subscribed while an event loop runs
        (a notebook cell, a server), the changes another process makes to the file are told
        too, within OTHER_WRITERS_SECONDS."""
        if self._closed:
            self._refuse_closed()
        unsubscribe = self._hub.subscribe(listener)
        if self._known is None:  # (the first listeners may have come while no loop ran)
            self._start_following()

        def stop() -> None:
            unsubscribe()
            if not self._hub:
                self._stop_following()

        return stop

    # ------------------------------------------------------------------ other writers

    def _start_following(self) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop to check on: only this store's own changes are told
        self._check_other_writers()
        self._others_wrote = False
        self._known = KnownRows(self._all_rows())
        self._schedule_follow()

    def _stop_following(self) -> None:
        if self._follow is not None:
            self._follow.cancel()
            self._follow = None
        self._known = None

    def _schedule_follow(self) -> None:
        self._follow = asyncio.get_running_loop().call_later(OTHER_WRITERS_SECONDS, self._follow_others)

    def _follow_others(self) -> None:
        """Tell the listeners what other processes changed since the last look."""
        self._follow = None  # this one has run: a listener told below may start following anew
        try:
            self._check_other_writers()
            if self._others_wrote and self._known is not None:
                self._others_wrote = False
                self._tell_other_changes(self._known)
        except Exception:
            log.exception("checking the session store for other processes' changes failed")
        if self._known is not None and self._follow is None:
            self._schedule_follow()

    def _tell_other_changes(self, known: KnownRows) -> None:
        """Compare the file with what is known of it and tell the listeners what differs."""
        for kind, sid, row in known.compare(self._all_rows()):
            record = self._row_to_record(row) if row is not None else None
            if row is not None and record is None:  # unreadable: discarded
                if kind == "created":
                    continue
                kind = "deleted"
            self._emit(kind, sid, record)

    def _all_rows(self) -> list[tuple]:
        return self._current().execute(f"SELECT {_COLUMNS} FROM sessions").fetchall()

    def close(self) -> None:
        if self._closed:
            return
        self._stop_following()
        try:
            self.flush_visits()
            if self._watch is not None:
                self._watch.close()
            self._db.close()
        except sqlite3.Error:
            log.exception("closing the session store failed")
        self._closed = True


def _record(row: tuple, data: dict, pages: list[str]) -> SessionRecord:
    """A record from a stored row (id, created, last active, page, pages, label, data text),
    with its answers and pages already decoded."""
    sid, created, last_active, page, _, label, stored = row
    return SessionRecord(
        id=sid,
        data=data,
        created=created,
        last_active=last_active,
        current_page=page,
        pages=pages,
        label=label,
        stored_data=stored,
    )
