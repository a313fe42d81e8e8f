"""Page visits, written together: seen at once here, on disk within VISIT_FLUSH_SECONDS.

While an event loop runs (a served prototype), the SQLite store keeps each participant's latest
visit (page, pages, last active) and commits all of them in one transaction shortly after.
This store, the dashboard and the researcher's API see a visit at once; another process sees
it once written; nothing is lost by stopping the server, and answers are never held back.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from protonb.sqlite_store import VISIT_FLUSH_SECONDS, SQLiteStore
from protonb.store import SessionRecord


def on_disk(path: Path) -> dict[str, tuple[str, str]]:
    """Each stored session's current page and pages, as another connection reads them."""
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT id, current_page, pages FROM sessions")
        return {sid: (page, pages) for sid, page, pages in rows}


@pytest.fixture
def store(tmp_path: Path):
    opened = SQLiteStore(tmp_path / "sessions.sqlite3")
    yield opened
    opened.close()


def participants(store: SQLiteStore, count: int) -> list[SessionRecord]:
    records = []
    for n in range(count):
        record = SessionRecord(id=f"participant{n:02d}".ljust(24, "x"), data={"n": n})
        store.set(record, "created")
        records.append(store.get(record.id))
    return records


def test_visits_are_seen_at_once_and_written_together_soon_after(store: SQLiteStore) -> None:
    events = []
    store.subscribe(events.append)

    async def visit_all() -> None:
        records = participants(store, 20)
        for record in records:
            record.visit("/next")
            store.touch(record)
        # Seen at once by this store and its subscribers...
        assert all(store.get(r.id).current_page == "/next" for r in records)
        assert [e.kind for e in events if e.kind == "visit"] == ["visit"] * 20
        # ...and by another connection once written, without anyone asking.
        await asyncio.sleep(VISIT_FLUSH_SECONDS * 4)
        assert {page for page, _ in on_disk(store.path).values()} == {"/next"}

    asyncio.run(visit_all())


def test_only_the_latest_visit_of_a_session_is_written(store: SQLiteStore) -> None:
    async def wander() -> None:
        (record,) = participants(store, 1)
        for page in ("/a", "/b", "/c"):
            record.visit(page)
            store.touch(record)
        await asyncio.sleep(VISIT_FLUSH_SECONDS * 4)
        assert on_disk(store.path)[record.id] == ("/c", '["/a", "/b", "/c"]')

    asyncio.run(wander())


def test_visits_waiting_are_written_when_the_store_closes(tmp_path: Path) -> None:
    path = tmp_path / "sessions.sqlite3"
    store = SQLiteStore(path)

    async def visit_and_stop() -> None:
        (record,) = participants(store, 1)
        record.visit("/last-page")
        store.touch(record)
        store.close()  # as the CLI does on Ctrl-C, before the flush is due

    asyncio.run(visit_and_stop())
    assert on_disk(path)["participant00".ljust(24, "x")][0] == "/last-page"


def test_an_answer_after_a_visit_keeps_both_and_is_committed_before_set_returns(store: SQLiteStore) -> None:
    async def visit_then_answer() -> None:
        (record,) = participants(store, 1)
        record.visit("/name")
        store.touch(record)
        record.data["first-name"] = "Ada"
        store.set(record)
        # No waiting: the answer and the visit before it are both on disk now.
        with sqlite3.connect(store.path) as db:
            query = "SELECT current_page, data FROM sessions WHERE id = ?"
            page, data = db.execute(query, (record.id,)).fetchone()
        assert (page, data) == ("/name", '{"n":0,"first-name":"Ada"}')

    asyncio.run(visit_then_answer())


def test_reading_every_session_includes_visits_not_yet_written(store: SQLiteStore) -> None:
    async def visit_then_list() -> None:
        records = participants(store, 3)
        records[1].visit("/elsewhere")
        store.touch(records[1])
        listed = {r.id: r.current_page for r in store.list()}
        assert listed[records[1].id] == "/elsewhere"
        assert store.list()[0].id == records[1].id  # the most recently active first

    asyncio.run(visit_then_list())


def test_a_removed_session_is_not_brought_back_by_its_last_visit(store: SQLiteStore) -> None:
    async def visit_then_remove() -> None:
        (record,) = participants(store, 1)
        record.visit("/gone")
        store.touch(record)
        assert store.delete(record.id)
        await asyncio.sleep(VISIT_FLUSH_SECONDS * 4)
        assert store.get(record.id) is None
        assert on_disk(store.path) == {}

    asyncio.run(visit_then_remove())


def test_without_an_event_loop_each_visit_is_committed_at_once(store: SQLiteStore) -> None:
    (record,) = participants(store, 1)
    record.visit("/now")
    store.touch(record)
    assert on_disk(store.path)[record.id][0] == "/now"


def test_a_visit_made_on_a_new_event_loop_is_written_there(store: SQLiteStore) -> None:
    """The loop that was due to write the visits stopped (a server stopped, a test ended)."""

    async def visit(page: str, wait: bool) -> None:
        record = store.get("participant00".ljust(24, "x"))
        record.visit(page)
        store.touch(record)
        if wait:
            await asyncio.sleep(VISIT_FLUSH_SECONDS * 4)

    participants(store, 1)
    asyncio.run(visit("/first", wait=False))  # its loop ends before the write is due
    asyncio.run(visit("/second", wait=True))
    assert on_disk(store.path)["participant00".ljust(24, "x")][0] == "/second"


def test_a_visit_kept_for_a_stopped_loop_does_not_overwrite_a_later_one(store: SQLiteStore) -> None:
    (record,) = participants(store, 1)

    async def visit_first() -> None:
        record.visit("/first")
        store.touch(record)  # kept for later; the loop stops before it is written

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(visit_first())
    finally:
        loop.close()
    record.visit("/second")
    store.touch(record)  # no loop now: written at once
    assert store.get(record.id).current_page == "/second"
    store.close()
    assert on_disk(store.path)[record.id][0] == "/second"
