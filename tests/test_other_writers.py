"""A store's listeners hear of the changes another process makes to the same store file.

The researcher's notebook may show the dashboard of a prototype that ``protonb serve`` in a
terminal serves: two stores on one file. Here the second store stands in for the other process.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from protonb.sqlite_store import OTHER_WRITERS_SECONDS, SQLiteStore
from protonb.store import ChangeEvent, SessionRecord

pytest.importorskip("anywidget")

from protonb.researcher import Sessions  # noqa: E402
from protonb.widgets import Dashboard  # noqa: E402


async def _until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("not told in time")
        await asyncio.sleep(0.02)


def _run(body: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(body())


Stores = tuple[SQLiteStore, SQLiteStore]


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[Stores]:
    """Two stores on one file: ``here`` listens, ``there`` stands in for the other process."""
    path = tmp_path / "sessions.sqlite3"
    here, there = SQLiteStore(path), SQLiteStore(path)
    yield here, there
    here.close()
    there.close()


def test_a_listener_hears_of_each_kind_of_change_another_process_makes(stores: Stores) -> None:
    here, there = stores
    heard: list[ChangeEvent] = []

    async def body() -> None:
        stop = here.subscribe(heard.append)
        sid = "o" * 24
        there.set(SessionRecord(id=sid, data={"name": "Ada"}, current_page="/name"), "created")
        await _until(lambda: len(heard) == 1)
        assert heard[0].kind == "created" and heard[0].record.data == {"name": "Ada"}

        record = there.get(sid)
        record.data["name"] = "Grace"
        there.set(record)
        await _until(lambda: len(heard) == 2)
        assert heard[1].kind == "data" and heard[1].record.data == {"name": "Grace"}

        record.label = "P1"
        there.set(record, "label")
        await _until(lambda: len(heard) == 3)
        assert heard[2].kind == "label" and heard[2].record.label == "P1"

        record.visit("/answers")
        there.touch(record)
        there.flush_visits()
        await _until(lambda: len(heard) == 4)
        assert heard[3].kind == "visit" and heard[3].record.current_page == "/answers"

        there.delete(sid)
        await _until(lambda: len(heard) == 5)
        assert (heard[4].kind, heard[4].session_id, heard[4].record) == ("deleted", sid, None)
        stop()

    _run(body)


def test_a_listener_hears_of_its_own_stores_changes_once(stores: Stores) -> None:
    here, there = stores
    heard: list[tuple[str, str]] = []

    async def body() -> None:
        stop = here.subscribe(lambda event: heard.append((event.kind, event.session_id)))
        here.set(SessionRecord(id="h" * 24, data={"name": "Ada"}), "created")
        there.set(SessionRecord(id="t" * 24, data={"name": "Bob"}), "created")
        await _until(lambda: len(heard) >= 2)
        await asyncio.sleep(3 * OTHER_WRITERS_SECONDS)  # time for any second telling
        assert heard == [("created", "h" * 24), ("created", "t" * 24)]
        stop()

    _run(body)


def test_nothing_is_checked_once_the_last_listener_has_gone(stores: Stores) -> None:
    here, there = stores
    heard: list[ChangeEvent] = []

    async def body() -> None:
        stop = here.subscribe(heard.append)
        stop()
        stop()  # a second call changes nothing
        there.set(SessionRecord(id="g" * 24, data={}), "created")
        await asyncio.sleep(3 * OTHER_WRITERS_SECONDS)
        assert heard == []
        assert here._follow is None  # no timer left running for nobody

    _run(body)


def test_the_dashboard_shows_answers_given_to_a_server_in_another_process(stores: Stores) -> None:
    here, there = stores

    async def body() -> None:
        dash = Dashboard(Sessions(here, dict))
        dash.table.send = lambda content, buffers=None: None  # type: ignore[method-assign]
        try:
            there.set(SessionRecord(id="d" * 24, data={"first-name": "Ada"}), "created")
            await _until(lambda: len(dash.table.rows) == 1)
            assert "1 session" in dash.heading.value
        finally:
            dash.close()

    _run(body)


def test_a_listener_leaving_and_coming_back_in_its_callback_leaves_one_check_running(stores: Stores) -> None:
    here, there = stores
    heard: list[str] = []
    stops: list[Callable[[], None]] = []

    def listener(event: ChangeEvent) -> None:
        heard.append(event.session_id)
        stops.pop()()
        stops.append(here.subscribe(listener))

    async def body() -> None:
        stops.append(here.subscribe(listener))
        there.set(SessionRecord(id="r" * 24, data={}), "created")
        await _until(lambda: len(heard) == 1)
        loop = asyncio.get_running_loop()
        timers = [h for h in loop._scheduled if not h.cancelled()]  # type: ignore[attr-defined]
        assert len(timers) == 1
        stops.pop()()

    _run(body)


def test_a_listener_from_before_any_loop_ran_does_not_stop_a_later_one_hearing_others(stores: Stores) -> None:
    here, there = stores
    early: list[ChangeEvent] = []
    here.subscribe(early.append)  # e.g. proto.on_change in a script, before any server ran
    heard: list[ChangeEvent] = []

    async def body() -> None:
        stop = here.subscribe(heard.append)
        there.set(SessionRecord(id="e" * 24, data={"name": "Ada"}), "created")
        await _until(lambda: len(heard) == 1)
        assert heard[0].record.data == {"name": "Ada"} and len(early) == 1
        stop()

    _run(body)


def test_a_closed_store_refuses_a_listener_and_counts_none(tmp_path: Path) -> None:
    from protonb.store import StoreClosed

    here = SQLiteStore(tmp_path / "sessions.sqlite3")
    here.close()
    with pytest.raises(StoreClosed, match="was closed"):
        here.subscribe(lambda event: None)
    assert not here._hub  # no listener counted
