"""Session cookies over real HTTP: ending every session, bad cookies, phantom sessions,
``Secure`` over https, and how long a session lasts.

Each test serves a small prototype with ``protonb.server.make_app`` in Tornado's
``AsyncHTTPTestCase`` (``AsyncHTTPSTestCase`` for https). ``Browser`` keeps one
participant's cookies and can be handed any raw ``Cookie`` header. Every test also watches
the log: a bad cookie must never leave a traceback there.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import tempfile
import time
import urllib.parse
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import pytest
import tornado.testing
import tornado.web

import protonb.server
from protonb.cli import build_parser
from protonb.prototype import Prototype
from protonb.session import DEFAULT_LIFETIME_HOURS, cookie_name

DEFAULTS = {"service": "Help", "claimant": {"first-name": ""}}
TEMPLATES = {
    "index.html": "<h1>Start</h1>",
    "name.html": '<form method="post"><input name="first-name"></form>',
    "dump.html": "{{ data | tojson }}",
}
FORM = "application/x-www-form-urlencoded"


def write_prototype(root: Path) -> Path:
    (root / "templates").mkdir(parents=True)
    for name, text in TEMPLATES.items():
        (root / "templates" / name).write_text(text, encoding="utf-8")
    (root / "session-data-defaults.json").write_text(json.dumps(DEFAULTS), encoding="utf-8")
    return root


class Browser:
    """One participant: the cookies it was given, sent back on every request."""

    def __init__(self, case: tornado.testing.AsyncHTTPTestCase, raw_cookie: str | None = None) -> None:
        self.case = case
        self.cookies: dict[str, str] = {}
        self.raw_cookie = raw_cookie
        self.set_cookies: list[str] = []

    def request(self, method: str, path: str, body: str | None = None, headers: dict[str, str] | None = None):
        sent = dict(headers or {})
        if self.raw_cookie is not None:
            sent["Cookie"] = self.raw_cookie
        elif self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if body is not None:
            sent["Content-Type"] = FORM
        response = self.case.fetch(
            path, method=method, body=body, headers=sent, follow_redirects=False, raise_error=False
        )
        self.set_cookies = response.headers.get_list("Set-Cookie")
        for header in self.set_cookies:
            for name, morsel in SimpleCookie(header).items():
                self.cookies[name] = morsel.value
                self.raw_cookie = None
        return response

    def get(self, path: str, headers: dict[str, str] | None = None):
        return self.request("GET", path, headers=headers)

    def post(self, path: str, fields: dict[str, str]):
        response = self.request("POST", path, urllib.parse.urlencode(fields))
        assert response.code == 302, response.body
        return response

    def data(self) -> dict[str, Any]:
        response = self.get("/dump")
        assert response.code == 200, response.body
        return json.loads(response.body)


class LogWatch(logging.Handler):
    """Keeps every log record made while a test runs."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def tracebacks(self) -> list[str]:
        return [self.format(r) for r in self.records if r.exc_info or r.levelno >= logging.ERROR]


class CookieCase(tornado.testing.AsyncHTTPTestCase):
    session_hours = DEFAULT_LIFETIME_HOURS

    def setUp(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="protonb-cookies-")
        self.root = write_prototype(Path(self._tmp.name) / "proto")
        self.proto = Prototype(self.root, session_hours=self.session_hours)
        self.log = LogWatch()
        logging.getLogger().addHandler(self.log)
        super().setUp()

    def tearDown(self) -> None:
        logging.getLogger().removeHandler(self.log)
        super().tearDown()
        self.proto.close()
        self._tmp.cleanup()

    def get_app(self) -> tornado.web.Application:
        return protonb.server.make_app(self.proto.site)

    @property
    def cookie_name(self) -> str:
        return cookie_name(self.proto.site.keys.prototype_id)

    def session_id(self, browser: Browser) -> str:
        keys = self.proto.site.keys
        value = browser.cookies[self.cookie_name]
        raw = tornado.web.decode_signed_value(keys.secrets, self.cookie_name, value)
        assert raw, "the cookie does not carry a valid signature"
        return raw.decode("ascii")

    def stored_ids(self) -> set[str]:
        return {session.id for session in self.proto.sessions}

    def ada(self) -> Browser:
        ada = Browser(self)
        ada.get("/name")
        ada.post("/name", {"first-name": "Ada"})
        assert ada.data()["first-name"] == "Ada"
        return ada


# --------------------------------------------------------------------------- ending every session


class TestEndAllSessions(CookieCase):
    def test_every_old_cookie_starts_fresh_in_the_running_server(self) -> None:
        ada, bob = self.ada(), Browser(self)
        bob.post("/name", {"first-name": "Bob"})
        old_ids = {self.session_id(ada), self.session_id(bob)}
        old_cookie = ada.cookies[self.cookie_name]
        version = self.proto.site.keys.key_version

        self.proto.end_all_sessions()

        keys = json.loads((self.root / ".protonb" / "secret.json").read_text())
        assert keys["key_version"] == version + 1
        assert list(keys["secrets"]) == [str(version + 1)], "the old key must be gone"
        assert self._app.settings["key_version"] == version + 1  # the running app, no restart
        assert ada.data() == DEFAULTS
        assert bob.data() == DEFAULTS
        assert ada.cookies[self.cookie_name] != old_cookie
        assert self.session_id(ada) not in old_ids
        # The ended sessions' answers stay for the researcher.
        assert {self.proto.sessions[sid].data["first-name"] for sid in old_ids} == {"Ada", "Bob"}
        ada.post("/name", {"first-name": "Ada again"})
        assert ada.data()["first-name"] == "Ada again"
        assert self.proto.sessions[self.session_id(ada)].data["first-name"] == "Ada again"
        assert self.log.tracebacks() == []

    def test_a_cookie_signed_with_the_old_key_is_refused_even_for_a_known_session(self) -> None:
        ada = self.ada()
        old_keys, old_id = self.proto.site.keys, self.session_id(ada)
        self.proto.end_all_sessions()
        replay = Browser(self, f"{self.cookie_name}={ada.cookies[self.cookie_name]}")
        assert replay.data() == DEFAULTS
        forged = tornado.web.create_signed_value(
            old_keys.secrets, self.cookie_name, old_id, key_version=old_keys.key_version
        )
        assert Browser(self, f"{self.cookie_name}={forged.decode()}").data() == DEFAULTS

    def test_the_new_key_outlives_a_restart(self) -> None:
        self.proto.end_all_sessions()
        ada = self.ada()
        reopened = Prototype(self.root)
        try:
            assert reopened.site.keys == self.proto.site.keys
        finally:
            reopened.close()
        assert ada.data()["first-name"] == "Ada"


class TestSecret(CookieCase):
    def test_the_secret_is_created_once_owner_only_and_never_shown(self) -> None:
        path = self.root / ".protonb" / "secret.json"
        assert path.stat().st_mode & 0o777 == 0o600
        assert (self.root / ".protonb").stat().st_mode & 0o777 == 0o700
        secret = self.proto.site.keys.secrets[self.proto.site.keys.key_version]
        reopened = Prototype(self.root)
        try:
            assert reopened.site.keys == self.proto.site.keys
        finally:
            reopened.close()
        ada = self.ada()
        shown = [
            repr(self.proto),
            self.proto._repr_html_(),
            self.proto.sessions.to_json(),
            repr(self.proto.sessions[0]),
            ada.get("/").body.decode(),
            ada.get("/nowhere").body.decode(),
            "".join(ada.set_cookies),
            *(self.log.format(record) for record in self.log.records),
        ]
        assert not [text for text in shown if secret in text]

    def test_ending_every_session_keeps_the_secret_owner_only(self) -> None:
        self.proto.end_all_sessions()
        path = self.root / ".protonb" / "secret.json"
        assert path.stat().st_mode & 0o777 == 0o600
        assert not list(path.parent.glob("*.tmp"))


# --------------------------------------------------------------------------- bad cookies


class TestBadCookies(CookieCase):
    def bad_cookies(self) -> dict[str, str]:
        ada = self.ada()
        good = ada.cookies[self.cookie_name]
        other_root = write_prototype(Path(self._tmp.name) / "other")
        other = Prototype(other_root)
        try:
            other_keys = other.site.keys
            other_name = cookie_name(other_keys.prototype_id)
            other_value = tornado.web.create_signed_value(
                other_keys.secrets, other_name, "A" * 24, key_version=other_keys.key_version
            ).decode()
            # Another prototype's cookie, signed with its secret but sent under our name.
            other_under_ours = tornado.web.create_signed_value(
                other_keys.secrets, self.cookie_name, self.session_id(ada), key_version=other_keys.key_version
            ).decode()
        finally:
            other.close()
        name = self.cookie_name
        return {
            "garbage": f"{name}=garbage",
            "empty": f"{name}=",
            "tampered signature": f"{name}={good[:-3]}{'abc' if not good.endswith('abc') else 'xyz'}",
            "tampered id": f"{name}={good.replace('|', '|x', 1)}",
            "truncated": f"{name}={good[: len(good) // 2]}",
            "8 KB": f"{name}={good}{'A' * (8192 - len(good))}",
            "8 KB of junk": f"{name}={'x' * 8192}",
            "not UTF-8": f"{name}=\xff\xfe\xc3\x28{good}",
            "quoted and tampered": f'{name}="{good[:-1]}{"0" if not good.endswith("0") else "1"}"',
            "two of ours": f"{name}=garbage; {name}=more-garbage",
            "other prototype's": f"{other_name}={other_value}",
            "other prototype's under our name": f"{name}={other_under_ours}",
            "no name": "=just-a-value",
            "not a cookie list": ";;;=;=;",
        }

    def test_each_gives_200_a_fresh_session_and_no_traceback(self) -> None:
        bad = self.bad_cookies()
        stored_before = self.stored_ids()
        for what, header in bad.items():
            browser = Browser(self, header)
            page = browser.get("/name")
            assert page.code == 200, (what, page.body[:300])
            assert self.cookie_name in browser.cookies, what
            assert browser.data() == DEFAULTS, what
            browser.post("/name", {"first-name": "Eve"})
            assert browser.data() == {**DEFAULTS, "first-name": "Eve"}, what
            assert self.proto.sessions[self.session_id(browser)].data["first-name"] == "Eve"
        assert self.log.tracebacks() == []
        # Ada's own session is untouched by all of it.
        ada = next(s for s in self.proto.sessions if s.id in stored_before)
        assert ada.data["first-name"] == "Ada"

    def test_control_characters_in_the_header_are_refused_by_http_itself(self) -> None:
        # Tornado refuses a header holding control characters before protonb sees it.
        for value in ("a\x01b", "a\x7fb"):
            assert Browser(self, f"{self.cookie_name}={value}").get("/").code == 400
        assert self.stored_ids() == set() and self.log.tracebacks() == []

    def test_none_of_them_leaves_a_session_behind_on_its_own(self) -> None:
        bad = self.bad_cookies()
        stored_before = self.stored_ids()
        for what, header in bad.items():
            assert Browser(self, header).get("/").code == 200, what
            assert Browser(self, header).get("/no-such-page").code == 404, what
        assert self.stored_ids() == stored_before
        assert self.log.tracebacks() == []


# --------------------------------------------------------------------------- phantom sessions


class TestPhantomSessions(CookieCase):
    def test_requests_without_a_cookie_store_nothing(self) -> None:
        for path in ("/", "/name", "/dump", "/no-such-page", "/?_ga=1", "/name.html"):
            response = Browser(self).get(path)
            assert response.code in (200, 302, 404)
            assert self.cookie_name in "".join(response.headers.get_list("Set-Cookie")), path
        # A file is no page: not even a cookie.
        response = Browser(self).get("/wp-login.php")
        assert response.code == 404 and response.headers.get_list("Set-Cookie") == []
        assert self.stored_ids() == set()

    def test_files_a_browser_fetches_after_its_first_page_store_no_session(self) -> None:
        ada = Browser(self)
        ada.get("/")
        files = ("/favicon.ico", "/public/x.css", "/css/site.css", "/robots.txt", "/favicon.ico?a=1")
        files += ("/x%2Ecss",)  # an encoded dot is a dot
        for path in files:
            response = ada.get(path)
            assert response.code == 404, path
            assert ada.set_cookies == [], path
        assert self.stored_ids() == set()
        ada.get("/name")  # the next page is what stores the session
        assert self.stored_ids() == {self.session_id(ada)}
        assert self.proto.sessions[0].data == DEFAULTS

    def test_a_file_request_leaves_a_stored_session_as_it_was(self) -> None:
        ada = self.ada()
        before = self.proto.sessions[0].to_dict()
        time.sleep(1.1)  # past VISIT_SAVE_SECONDS: a touch would change last_active
        for path in ("/favicon.ico?first-name=Eve", "/public/x.css?first-name=Eve"):
            assert ada.get(path).code == 404, path
            assert ada.set_cookies == [], path
        assert self.proto.sessions[0].to_dict() == before

    def test_a_dotted_path_that_a_template_answers_is_a_page(self) -> None:
        (self.root / "templates" / "notes.v2.html").write_text("<h1>Notes</h1>", encoding="utf-8")
        ada = Browser(self)
        ada.get("/")
        response = ada.get("/notes.v2?topic=rent")
        assert response.code == 200 and b"<h1>Notes</h1>" in response.body
        assert self.proto.sessions[self.session_id(ada)].data["topic"] == "rent"

    def test_a_page_in_a_dotted_folder_is_noted_in_the_participants_pages(self) -> None:
        (self.root / "templates" / "v1.2").mkdir()
        (self.root / "templates" / "v1.2" / "name.html").write_text("<h1>Name</h1>", encoding="utf-8")
        ada = Browser(self)
        ada.get("/")
        assert ada.get("/v1.2/name").code == 200
        assert self.proto.sessions[self.session_id(ada)].current_page == "/v1.2/name"

    def test_the_first_page_is_in_pages_when_the_next_page_names_it_as_referer(self) -> None:
        ada = Browser(self)
        ada.get("/")
        ada.get("/name", headers={"Referer": self.get_url("/")})
        assert self.proto.sessions[self.session_id(ada)].pages == ("/", "/name")
        assert self.proto.sessions[self.session_id(ada)].current_page == "/name"

    def test_after_a_session_is_removed_the_next_one_does_not_start_with_the_last_page_seen(self) -> None:
        ada = Browser(self)
        ada.get("/")
        ada.get("/name", headers={"Referer": self.get_url("/")})
        sid = self.session_id(ada)
        self.proto.sessions[sid].remove()  # the researcher, before the next participant
        keys = self.proto.site.keys
        then = time.time() - 1200
        signed = tornado.web.create_signed_value(
            keys.secrets, self.cookie_name, sid, key_version=keys.key_version, clock=lambda: then
        )
        ada.cookies[self.cookie_name] = signed.decode()  # given 20 minutes ago
        ada.get("/", headers={"Referer": self.get_url("/name")})
        assert self.proto.sessions[self.session_id(ada)].pages == ("/",)

    def test_behind_a_proxy_the_first_page_is_read_from_the_referer_without_the_prefix(self) -> None:
        prefix = "/user/ada/proxy/3000"
        ada = Browser(self)
        ada.get("/", headers={"X-Forwarded-Prefix": prefix})
        referer = self.get_url(prefix + "/")
        ada.get("/name", headers={"X-Forwarded-Prefix": prefix, "Referer": referer})
        assert self.proto.sessions[self.session_id(ada)].pages == ("/", "/name")

    def test_a_referer_from_another_site_or_for_a_file_is_not_taken_as_the_first_page(self) -> None:
        for referer in (
            "https://mail.example.org/inbox",
            self.get_url("/public/x.css"),
            self.get_url("/public/leaflet"),
            "::not a url::",
        ):
            bob = Browser(self)
            bob.get("/")
            bob.get("/name", headers={"Referer": referer})
            assert self.proto.sessions[self.session_id(bob)].pages == ("/name",), referer

    def test_the_first_page_gives_a_cookie_and_the_second_stores_the_session(self) -> None:
        ada = Browser(self)
        ada.get("/")
        assert self.stored_ids() == set()
        ada.get("/name")
        assert self.stored_ids() == {self.session_id(ada)}
        session = self.proto.sessions[0]
        assert session.current_page == "/name"
        assert session.data == DEFAULTS

    def test_a_get_then_a_post_keeps_one_session_with_the_answer(self) -> None:
        ada = Browser(self)
        ada.get("/name")
        ada.post("/name", {"first-name": "Ada"})
        assert ada.data()["first-name"] == "Ada"
        assert len(self.proto.sessions) == 1
        assert self.proto.sessions[0].data["first-name"] == "Ada"
        assert self.proto.sessions[0].id == self.session_id(ada)

    def test_a_first_request_that_stores_an_answer_is_kept_at_once(self) -> None:
        Browser(self).post("/name", {"first-name": "Ada"})
        query = Browser(self).get("/?claimant[first-name]=Bob")
        assert query.code == 200
        names = sorted(s.get("first-name") or s.get("claimant.first-name") for s in self.proto.sessions)
        assert names == ["Ada", "Bob"]

    def test_a_query_that_changes_nothing_stores_nothing(self) -> None:
        Browser(self).get("/?_ga=123&_unchecked=x")
        Browser(self).get("/?service=Help")  # the same as the default
        assert self.stored_ids() == set()

    def test_a_double_submitted_first_answer_lands_in_one_session(self) -> None:
        ada = Browser(self)
        ada.get("/name")
        cookie = f"{self.cookie_name}={ada.cookies[self.cookie_name]}"
        first, second = Browser(self, cookie), Browser(self, cookie)
        first.post("/name", {"first-name": "Ada"})
        second.post("/name", {"first-name": "Ada"})
        assert self.session_id(first) == self.session_id(second)
        assert len(self.proto.sessions) == 1

    def test_removing_a_session_makes_the_next_page_start_a_new_empty_one(self) -> None:
        ada = self.ada()
        old = self.session_id(ada)
        self.proto.sessions[old].remove()
        assert ada.data() == DEFAULTS
        new = self.session_id(ada)
        assert new != old
        assert self.stored_ids() == {new}
        assert self.proto.sessions[new].current_page == "/dump"

    def test_clearing_the_data_of_a_browser_with_no_session_stores_nothing(self) -> None:
        browser = Browser(self)
        assert browser.request("POST", "/manage-prototype/clear-data", "").code == 200
        assert self.stored_ids() == set()
        ada = self.ada()
        assert ada.request("POST", "/manage-prototype/clear-data", "").code == 200
        assert ada.data() == DEFAULTS
        assert self.stored_ids() == {self.session_id(ada)}

    def test_a_bot_with_a_fixed_garbage_cookie_stores_nothing_however_often_it_comes(self) -> None:
        for _ in range(20):
            Browser(self, f"{self.cookie_name}=garbage").get("/")
        assert self.stored_ids() == set()


# --------------------------------------------------------------------------- Secure


class TestSecureFlag(CookieCase):
    def morsel(self, browser: Browser):
        [header] = [h for h in browser.set_cookies if h.startswith(self.cookie_name + "=")]
        return SimpleCookie(header)[self.cookie_name]

    def test_over_plain_http_the_cookie_is_not_secure(self) -> None:
        browser = Browser(self)
        browser.get("/")
        morsel = self.morsel(browser)
        assert not morsel["secure"]
        assert morsel["httponly"] and morsel["samesite"] == "Lax"

    def test_behind_an_https_proxy_the_cookie_is_secure(self) -> None:
        for value in ("https", "HTTPS"):
            browser = Browser(self)
            browser.get("/", headers={"X-Forwarded-Proto": value})
            assert self.morsel(browser)["secure"], value
            browser.request("POST", "/name", "first-name=Ada", headers={"X-Forwarded-Proto": value})
            assert self.morsel(browser)["secure"], value

    def test_a_forwarded_http_is_not_secure(self) -> None:
        browser = Browser(self)
        browser.get("/", headers={"X-Forwarded-Proto": "http"})
        assert not self.morsel(browser)["secure"]


class TestSecureOverHttps(tornado.testing.AsyncHTTPSTestCase):
    def setUp(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="protonb-https-")
        self.proto = Prototype(write_prototype(Path(self._tmp.name) / "proto"))
        super().setUp()

    def tearDown(self) -> None:
        super().tearDown()
        self.proto.close()
        self._tmp.cleanup()

    def get_app(self) -> tornado.web.Application:
        return protonb.server.make_app(self.proto.site)

    def test_over_https_the_cookie_is_secure_and_works(self) -> None:
        assert self.get_url("/").startswith("https://")
        browser = Browser(self)
        browser.post("/name", {"first-name": "Ada"})
        name = cookie_name(self.proto.site.keys.prototype_id)
        [header] = [h for h in browser.set_cookies if h.startswith(name + "=")]
        assert SimpleCookie(header)[name]["secure"]
        assert browser.data()["first-name"] == "Ada"


# --------------------------------------------------------------------------- lifetime


class TestDefaultLifetime(CookieCase):
    def test_a_session_lasts_at_least_20_hours_by_default(self) -> None:
        assert DEFAULT_LIFETIME_HOURS >= 20
        assert self.proto.site.lifetime_hours == DEFAULT_LIFETIME_HOURS
        assert build_parser().parse_args(["serve", "."]).session_hours == DEFAULT_LIFETIME_HOURS
        browser = Browser(self)
        browser.get("/")
        [header] = [h for h in browser.set_cookies if h.startswith(self.cookie_name + "=")]
        expires = SimpleCookie(header)[self.cookie_name]["expires"]
        left = time.mktime(time.strptime(expires, "%a, %d %b %Y %H:%M:%S GMT")) - time.mktime(time.gmtime())
        assert left >= 20 * 3600 - 60

    def test_a_session_idle_for_19_hours_is_still_there(self) -> None:
        ada = self.ada()
        self.age(self.session_id(ada), hours=19)
        assert ada.data()["first-name"] == "Ada"

    def age(self, session_id: str, hours: float) -> None:
        """As if the participant had been idle for ``hours`` (their last visits long written)."""
        self.proto.store.flush_visits()
        with sqlite3.connect(self.proto.folder.store_path) as db:
            db.execute(
                "UPDATE sessions SET last_active = ? WHERE id = ?", (time.time() - hours * 3600, session_id)
            )


class TestExpiry(CookieCase):
    session_hours = 1.0

    def age(self, session_id: str, hours: float) -> None:
        """As if the participant had been idle for ``hours`` (their last visits long written)."""
        self.proto.store.flush_visits()
        with sqlite3.connect(self.proto.folder.store_path) as db:
            db.execute(
                "UPDATE sessions SET last_active = ? WHERE id = ?", (time.time() - hours * 3600, session_id)
            )

    def on_disk(self) -> set[str]:
        with sqlite3.connect(self.proto.folder.store_path) as db:
            return {row[0] for row in db.execute("SELECT id FROM sessions")}

    def test_an_expired_session_starts_fresh_and_is_deleted_from_disk(self) -> None:
        ada = self.ada()
        old = self.session_id(ada)
        self.age(old, hours=1.5)
        assert ada.data() == DEFAULTS
        assert old not in self.on_disk()
        assert self.session_id(ada) != old
        assert self.on_disk() == {self.session_id(ada)}
        ada.post("/name", {"first-name": "Ada"})
        assert ada.data()["first-name"] == "Ada"

    def test_a_session_within_its_lifetime_is_kept(self) -> None:
        ada = self.ada()
        self.age(self.session_id(ada), hours=0.9)
        assert ada.data()["first-name"] == "Ada"

    def test_expired_sessions_that_never_come_back_are_purged(self) -> None:
        ada, bob = self.ada(), Browser(self)
        bob.post("/name", {"first-name": "Bob"})
        self.age(self.session_id(ada), hours=3)
        assert self.proto.purge_expired() == 1
        assert self.on_disk() == {self.session_id(bob)}
        assert [s.data["first-name"] for s in self.proto.sessions] == ["Bob"]

    def test_starting_the_server_purges_expired_sessions(self) -> None:
        ada = self.ada()
        self.age(self.session_id(ada), hours=2)
        self.proto.start(show=False)
        try:
            assert self.on_disk() == set()
        finally:
            self.proto.stop()


@pytest.mark.parametrize("hours", [0, -1])
def test_a_lifetime_of_zero_or_less_is_refused(tmp_path: Path, hours: float) -> None:
    with pytest.raises(ValueError, match="session_hours must be more than 0"):
        Prototype(write_prototype(tmp_path / "proto"), session_hours=hours)
