"""When a request writes to the store and when it sends the cookie again.

A request that changes the answers is written (before it is answered); one that moves the
participant to another page is written; one that only repeats the page they are on within
VISIT_SAVE_SECONDS of the last write writes nothing. The cookie is sent when a session is
new or its cookie is due for refreshing, not on every change.
"""

from __future__ import annotations

import time

import tornado.web
from test_server import ServerCase

from protonb.session import (
    COOKIE_REFRESH_SECONDS,
    VISIT_SAVE_SECONDS,
    LiveSession,
    VerifiedCookies,
    cookie_fresh,
)
from protonb.store import SessionRecord


def test_a_freshly_signed_cookie_is_fresh_and_an_hour_old_one_is_not() -> None:
    now = time.time()
    value = tornado.web.create_signed_value("secret", "protonb-x", "abc", version=2, clock=lambda: now)
    assert cookie_fresh(value.decode(), now=now)
    assert cookie_fresh(value.decode(), now=now + COOKIE_REFRESH_SECONDS - 1)
    assert not cookie_fresh(value.decode(), now=now + COOKIE_REFRESH_SECONDS + 1)


def test_a_cookie_that_cannot_be_read_is_not_fresh() -> None:
    for value in (None, "", "1|x", "2|1:0", "2|1:0|10:notanumber|x", "garbage"):
        assert not cookie_fresh(value)


def _resumed(last_active: float, page: str, pages: list[str]) -> LiveSession:
    record = SessionRecord(id="x" * 24, last_active=last_active, current_page=page, pages=list(pages))
    return LiveSession.resume(record, {}, cookie_fresh=True)


def test_the_same_page_again_soon_is_not_written() -> None:
    live = _resumed(1000.0, "/name", ["/", "/name"])
    live.record.visit("/name", when=1000.0 + VISIT_SAVE_SECONDS / 2)
    assert not live.visit_worth_saving()


def test_the_same_page_after_a_while_is_written() -> None:
    live = _resumed(1000.0, "/name", ["/", "/name"])
    live.record.visit("/name", when=1000.0 + VISIT_SAVE_SECONDS)
    assert live.visit_worth_saving()


def test_another_page_is_written_at_once() -> None:
    live = _resumed(1000.0, "/name", ["/", "/name"])
    live.record.visit("/", when=1000.001)
    assert live.visit_worth_saving()
    assert live.record.pages == ["/", "/name", "/"]


class TestWrites(ServerCase):
    def _events(self) -> list[str]:
        kinds: list[str] = []
        self.addCleanup(self.proto.store.subscribe(lambda event: kinds.append(event.kind)))
        return kinds

    def test_a_changed_answer_is_stored_and_the_fresh_cookie_is_not_sent_again(self) -> None:
        browser = self.participant()
        browser.post("/name", {"first-name": "Ada"})
        sid = self.session_id_in(browser)
        kinds = self._events()
        response = browser.post("/name", {"first-name": "Eve"}, follow=False)
        assert response.code == 302
        assert browser.set_cookie_headers == []
        assert kinds == ["data"]
        assert self.proto.store.get(sid).data["first-name"] == "Eve"

    def test_reloading_the_same_page_at_once_writes_nothing(self) -> None:
        browser = self.participant()
        browser.post("/name", {"first-name": "Ada"})
        sid = self.session_id_in(browser)
        before = self.proto.store.get(sid)
        kinds = self._events()
        for _ in range(3):
            assert browser.get("/name").code == 200
        assert kinds == []
        after = self.proto.store.get(sid)
        assert (after.last_active, after.current_page, after.pages) == (
            before.last_active,
            before.current_page,
            before.pages,
        )

    def test_going_to_another_page_is_written_at_once(self) -> None:
        browser = self.participant()
        browser.post("/name", {"first-name": "Ada"})
        sid = self.session_id_in(browser)
        kinds = self._events()
        assert browser.get("/section/detail").code == 200
        assert kinds == ["visit"]
        record = self.proto.store.get(sid)
        assert record.current_page == "/section/detail"
        assert record.pages[-2:] == ["/name", "/section/detail"]


def test_a_visit_is_not_synced_but_answers_still_are(tmp_path) -> None:
    from protonb.sqlite_store import SQLiteStore

    store = SQLiteStore(tmp_path / "sessions.sqlite3")
    try:
        record = SessionRecord(id="y" * 24, data={"first-name": "Ada"})
        store.set(record, "created")
        full, normal = 2, 1

        def synchronous() -> int:
            return store._db.execute("PRAGMA synchronous").fetchone()[0]

        record.visit("/next")
        store.touch(record)
        assert synchronous() == normal
        assert store.get(record.id).current_page == "/next"
        # Every change after a visit is synced again: answers, removals, clearing, purging.
        changes = [
            lambda: store.set(record, "data"),
            lambda: store.delete(record.id),
            lambda: store.clear(),
            lambda: store.purge(time.time() + 1),
        ]
        for change in changes:
            store.set(record, "created")
            store.touch(record)
            assert synchronous() == normal
            change()
            assert synchronous() == full
    finally:
        store.close()


def test_a_verified_cookie_is_known_only_while_young_enough_and_until_cleared() -> None:
    now = time.time()
    signed = tornado.web.create_signed_value("secret", "protonb-x", "abc", version=2, clock=lambda: now)
    verified = VerifiedCookies()
    assert verified.get("protonb-x", signed.decode(), max_age_days=1, now=now) is None
    verified.add("protonb-x", signed.decode(), "abc")
    assert verified.get("protonb-x", signed.decode(), max_age_days=1, now=now) == "abc"
    assert verified.get("protonb-x", signed.decode(), max_age_days=1, now=now + 86400 - 1) == "abc"
    assert verified.get("protonb-x", signed.decode(), max_age_days=1, now=now + 86400 + 1) is None
    assert verified.get("protonb-y", signed.decode(), max_age_days=1, now=now) is None  # other name
    verified.clear()
    assert verified.get("protonb-x", signed.decode(), max_age_days=1, now=now) is None


def test_verified_cookies_keep_only_the_most_recent() -> None:
    verified = VerifiedCookies(size=3)
    values = [
        tornado.web.create_signed_value("secret", "n", f"id{i}", version=2).decode() for i in range(5)
    ]
    for i, value in enumerate(values):
        verified.add("n", value, f"id{i}")
    assert [verified.get("n", value, max_age_days=1) for value in values] == [None, None, "id2", "id3", "id4"]
    verified.add("n", "1|not|version|two", "x")  # unreadable signing time: not kept
    assert verified.get("n", "1|not|version|two", max_age_days=1) is None
