"""The researcher's Python API, in-process, against a real prototype served over HTTP.

Each test writes a small prototype folder (a form page, a page that prints the session data
as JSON, nested session-data defaults), serves it with ``protonb.server.make_app`` inside
Tornado's ``AsyncHTTPTestCase``, and plays participants with ``Browser``, which keeps its
cookie between requests and follows redirects the way a browser does. The researcher's side
is ``proto.sessions`` and friends, called from the test as from a notebook cell.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import pickle
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
from protonb.prototype import Prototype
from protonb.researcher import LabelTaken, ReadOnlyError, SessionGone
from protonb.session import cookie_name
from protonb.store import SessionRecord

DEFAULTS = {"claimant": {"first-name": "", "last-name": ""}, "service": "Help"}

TEMPLATES = {
    "index.html": "<h1>Start</h1>",
    "dump.html": "{{ data | tojson }}",
    "household.html": """<form method="post" action="/household">
<input name="claimant[first-name]" value="{{ data.claimant['first-name'] }}">
<input name="claimant[last-name]" value="{{ data.claimant['last-name'] }}">
<button>Continue</button>
</form>
""",
}


def write_prototype(root: Path) -> None:
    (root / "templates").mkdir()
    for name, text in TEMPLATES.items():
        (root / "templates" / name).write_text(text, encoding="utf-8")
    (root / "session-data-defaults.json").write_text(json.dumps(DEFAULTS), encoding="utf-8")


class Browser:
    """One participant: a cookie jar, and requests that follow redirects."""

    def __init__(self, case: PrototypeCase) -> None:
        self.case = case
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, fields: dict[str, Any] | None = None, follow: bool = True):
        headers = {}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        body = None
        if method == "POST":
            body = urllib.parse.urlencode(fields or {}, doseq=True)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        response = self.case.fetch(path, method=method, body=body, headers=headers, follow_redirects=False)
        for header in response.headers.get_list("Set-Cookie"):
            for name, morsel in SimpleCookie(header).items():
                self.cookies[name] = morsel.value
        if follow and response.code in (301, 302, 303, 307) and "Location" in response.headers:
            return self.request("GET", response.headers["Location"])
        return response

    def get(self, path: str):
        return self.request("GET", path)

    def post(self, path: str, fields: dict[str, Any], follow: bool = True):
        return self.request("POST", path, fields, follow)

    def data(self) -> dict[str, Any]:
        """What the prototype's pages see as ``data`` (this visits /dump)."""
        response = self.get("/dump")
        assert response.code == 200, response.body
        return json.loads(response.body)

    @property
    def session_id(self) -> str:
        """The session id this participant's signed cookie carries."""
        keys = self.case.proto.folder.cookie_keys()
        name = cookie_name(keys.prototype_id)
        raw = tornado.web.decode_signed_value(keys.secrets, name, self.cookies.get(name))
        assert raw, "this participant has no session cookie yet"
        return raw.decode("ascii")


class PrototypeCase(tornado.testing.AsyncHTTPTestCase):
    """A fresh prototype folder served over HTTP for every test."""

    def setUp(self) -> None:
        self._tmp = tempfile.TemporaryDirectory()
        self.root = Path(self._tmp.name)
        write_prototype(self.root)
        self.proto = Prototype(self.root)
        super().setUp()

    def tearDown(self) -> None:
        super().tearDown()
        self.proto.close()
        self._tmp.cleanup()

    def get_app(self) -> tornado.web.Application:
        return protonb.server.make_app(self.proto.site)

    def participant(self, first_name: str | None = None) -> Browser:
        browser = Browser(self)
        # A first page only gives the browser its cookie; the session is stored when the
        # cookie comes back (or when an answer is posted).
        assert browser.get("/").code == 200
        assert browser.get("/").code == 200
        if first_name is not None:
            browser.post("/household", {"claimant[first-name]": first_name})
        return browser


# --------------------------------------------------------------------------- finding sessions


class TestFinding(PrototypeCase):
    def test_an_answer_search_skips_defaults_the_participant_left_as_they_were(self) -> None:
        self.participant("Ada")  # "service" is still the default "Help"
        bob = self.participant("Bob")
        bob.post("/household", {"service": "Help with rent"})
        assert [s.id for s in self.proto.sessions.find(answer="help")] == [bob.session_id]
        assert self.proto.sessions.find(answer="Ada") != []

    def test_the_listing_counts_answers_as_the_session_and_the_dashboard_do(self) -> None:
        ada = self.participant("Ada")
        session = self.proto.sessions[ada.session_id]
        assert session.answers == 1  # the defaults untouched are not answers
        assert f"{session.id[:8]:<10}" in repr(self.proto.sessions)
        assert "1 answer(s)" in repr(self.proto.sessions)

    def test_sessions_are_listed_newest_activity_first(self) -> None:
        ada, bob = self.participant(), self.participant()
        assert [s.id for s in self.proto.sessions] == [bob.session_id, ada.session_id]
        ada.get("/household")
        assert [s.id for s in self.proto.sessions] == [ada.session_id, bob.session_id]
        assert len(self.proto.sessions) == 2
        assert self.proto.sessions[0].id == ada.session_id
        assert self.proto.sessions[-1].id == bob.session_id

    def test_a_session_is_found_by_id_id_start_label_and_position(self) -> None:
        ada, bob = self.participant(), self.participant()
        sessions = self.proto.sessions
        assert sessions[ada.session_id].id == ada.session_id
        start = next(
            n for n in range(4, 23) if not bob.session_id.startswith(ada.session_id[:n])
        )
        assert sessions[ada.session_id[:start]].id == ada.session_id
        sessions[bob.session_id].label("P3")
        assert sessions["P3"].id == bob.session_id
        assert sessions["p3"].id == bob.session_id
        assert sessions[" P3 "].id == bob.session_id
        assert sessions[1].id == ada.session_id
        assert "p3" in sessions and "nobody" not in sessions

    def test_an_ambiguous_id_start_or_unknown_key_is_a_clear_key_error(self) -> None:
        for suffix in ("A" * 14, "B" * 14):
            self.proto.store.set(SessionRecord(id="sharedpre" + suffix), "created")
        with pytest.raises(KeyError, match="'sharedpre' starts 2 session ids: give more of the id"):
            self.proto.sessions["sharedpre"]
        assert self.proto.sessions["sharedpreA"].id == "sharedpre" + "A" * 14
        with pytest.raises(KeyError, match="no session with the id, label or id start 'P9'"):
            self.proto.sessions["P9"]
        with pytest.raises(IndexError, match="there are 2 sessions; 5 is out of range"):
            self.proto.sessions[5]
        assert self.proto.sessions.get("P9") is None

    def test_each_session_shows_id_label_times_and_pages(self) -> None:
        before = dt.datetime.now(dt.UTC)
        ada = self.participant()
        ada.get("/household")
        ada.post("/household", {"claimant[first-name]": "Ada"})
        session = self.proto.sessions[0]
        assert session.id == ada.session_id
        assert session.label == ""
        assert before - dt.timedelta(seconds=1) <= session.created <= session.last_active
        assert session.last_active <= dt.datetime.now(dt.UTC)
        assert session.current_page == "/household"
        assert session.pages == ("/", "/household")
        first_active = session.last_active
        time.sleep(0.01)
        ada.get("/")
        assert session.current_page == "/"
        assert session.pages == ("/", "/household", "/")
        assert session.last_active > first_active


# --------------------------------------------------------------------------- reading data


class TestSnapshot(PrototypeCase):
    def test_data_is_a_read_only_snapshot_that_says_how_to_change_it(self) -> None:
        self.participant("Ada")
        session = self.proto.sessions[0]
        session.set("pets", ["cat"])
        data = session.data
        attempts = [
            lambda: data.__setitem__("service", "x"),
            lambda: data["claimant"].__setitem__("first-name", "Eve"),
            lambda: data["pets"].append("dog"),
            lambda: data.update({"service": "x"}),
            lambda: data.pop("service"),
            lambda: data["claimant"].setdefault("middle", "x"),
        ]
        for attempt in attempts:
            with pytest.raises(ReadOnlyError, match=r"session\.set\(path, value\)"):
                attempt()
        with pytest.raises(ReadOnlyError):
            del data["service"]
        assert session.data == {
            "claimant": {"first-name": "Ada", "last-name": ""},
            "service": "Help",
            "pets": ["cat"],
        }

    def test_a_snapshot_copies_and_dumps_as_plain_data(self) -> None:
        self.participant("Ada")
        session = self.proto.sessions[0]
        session.set("pets", ["cat"])
        data = session.data
        plain = copy.deepcopy(data)
        plain["claimant"]["first-name"] = "Eve"
        plain["pets"].append("dog")
        assert type(plain) is dict and type(plain["pets"]) is list
        assert session.data["claimant"]["first-name"] == "Ada"
        assert json.loads(json.dumps(data)) == session.data
        assert pickle.loads(pickle.dumps(data)) == session.data
        assert pickle.loads(pickle.dumps(data["pets"])) == ["cat"]
        assert session.get("claimant.first-name") == "Ada"
        assert session.get("claimant.nickname", "-") == "-"


# --------------------------------------------------------------------------- changing data


class TestChanging(PrototypeCase):
    def test_set_takes_dotted_bracket_and_list_paths(self) -> None:
        ada = self.participant()
        session = self.proto.sessions[ada.session_id]
        session.set("claimant.first-name", "Ada")
        session.set("claimant[last-name]", "Lovelace")
        session.set(["contact", "email"], "ada@example.org")
        session.set("age", 36)
        expected = {
            "claimant": {"first-name": "Ada", "last-name": "Lovelace"},
            "contact": {"email": "ada@example.org"},
            "age": 36,
            "service": "Help",
        }
        assert session.data == expected
        assert ada.data() == expected

    def test_set_through_a_plain_value_is_refused_and_stores_nothing(self) -> None:
        self.participant("Ada")
        session = self.proto.sessions[0]
        session.set("pets", ["cat"])
        before = copy.deepcopy(session.data)
        with pytest.raises(ValueError, match="'claimant.first-name' holds 'Ada', not a dict"):
            session.set("claimant.first-name.initial", "A")
        with pytest.raises(ValueError, match="holds 'cat', not a dict"):
            session.set("pets.0.name", "Tom")
        with pytest.raises(ValueError, match="holds 'cat', not a dict"):
            session.set("pets.0.name.first", "Tom")
        assert session.data == before

    def test_a_path_whose_brackets_do_not_pair_up_is_refused_and_stores_nothing(self) -> None:
        self.participant("Ada")
        session = self.proto.sessions[0]
        before = copy.deepcopy(session.data)
        for path in ("a[b", "a]b", "a[b]c", "a[b]]", "a[[b]]", "claimant[first-name", "a[b][c"):
            with pytest.raises(ValueError, match="its brackets do not pair up"):
                session.set(path, "v")
            with pytest.raises(ValueError, match="its brackets do not pair up"):
                session.delete(path)
        with pytest.raises(ValueError, match="is not a path to an answer"):
            session.set("a..b", "v")
        assert session.data == before
        session.set("[pets][cat]", "Tom")
        assert session.get("pets.cat") == "Tom"

    def test_set_refuses_a_new_name_starting_with_underscore_which_no_form_could_change(self) -> None:
        ada = self.participant("Ada")
        session = self.proto.sessions[0]
        before = copy.deepcopy(session.data)
        for path in ("_x", "claimant._note", "_notes.x", ["claimant", "_note"], "claimant[_note]"):
            with pytest.raises(ValueError, match="names starting with '_' are skipped by forms"):
                session.set(path, "v")
        assert session.data == before
        # One already there (put by a route function or the defaults) may still be changed.
        record = self.proto.store.get(session.id)
        record.data["_seen"] = "no"
        self.proto.store.set(record, "data")
        session.set("_seen", "yes")
        assert session.get("_seen") == "yes" and ada.data()["_seen"] == "yes"

    def test_set_of_a_value_that_is_not_json_is_refused_and_stores_nothing(self) -> None:
        self.participant("Ada")
        session = self.proto.sessions[0]
        before = copy.deepcopy(session.data)
        with pytest.raises(TypeError, match="is a set"):
            session.set("pets", {"cat", "dog"})
        with pytest.raises(TypeError, match="is a datetime"):
            session.set("claimant.born", dt.datetime(1815, 12, 10))
        with pytest.raises(TypeError, match="is a datetime"):
            session.update({"claimant": {"born": dt.datetime(1815, 12, 10)}})
        assert session.data == before

    def test_delete_removes_an_answer_and_a_missing_one_is_a_key_error(self) -> None:
        ada = self.participant("Ada")
        session = self.proto.sessions[0]
        session.delete("claimant.first-name")
        assert session.data["claimant"] == {"last-name": ""}
        assert ada.data()["claimant"] == {"last-name": ""}
        with pytest.raises(KeyError, match="no answer at 'claimant.first-name'"):
            session.delete("claimant.first-name")
        with pytest.raises(KeyError, match="no answer at"):
            session.delete(["contact", "email"])

    def test_update_merges_by_the_kits_rules(self) -> None:
        self.participant("Ada")
        session = self.proto.sessions[0]
        session.set("pets", ["cat", "dog"]).set("colour", "red")
        session.update(
            {
                "claimant": {"last-name": "Lovelace", "_hint": "skipped"},
                "colour": "_unchecked",
                "pets": ["fish"],
                "_csrf": "skipped",
            }
        )
        assert session.data == {
            "claimant": {"first-name": "Ada", "last-name": "Lovelace"},
            "service": "Help",
            "pets": ["fish"],
        }

    def test_clear_brings_back_the_defaults_and_the_next_page_shows_no_answers(self) -> None:
        ada = self.participant("Ada")
        session = self.proto.sessions[0]
        session.label("P1")
        session.set("age", 36)
        session.clear()
        assert session.data == DEFAULTS
        assert session.label == "P1"
        assert ada.data() == DEFAULTS
        page = ada.get("/household").body.decode()
        assert 'value="Ada"' not in page and 'value=""' in page

    def test_a_label_another_session_holds_is_refused_naming_that_session(self) -> None:
        ada, bob = self.participant(), self.participant()
        sessions = self.proto.sessions
        sessions[ada.session_id].label("P7")
        with pytest.raises(LabelTaken) as refused:
            sessions[bob.session_id].label("  p7 ")
        assert str(refused.value) == (
            f"'P7' is already the label of session {ada.session_id[:8]}: clear that label first,"
            " or pass move=True to move it here"
        )
        assert isinstance(refused.value, ValueError)  # the dashboard's status line shows it
        assert sessions[ada.session_id].label == "P7"
        assert sessions[bob.session_id].label == ""
        assert sessions["P7"].id == ada.session_id

    def test_a_label_moves_from_the_session_that_had_it_only_when_asked(self) -> None:
        ada, bob = self.participant(), self.participant()
        sessions = self.proto.sessions
        sessions[ada.session_id].label("P3")
        sessions[ada.session_id].label("P3")  # its own label again: fine
        sessions[bob.session_id].label("  p3 ", move=True)
        assert sessions[ada.session_id].label == ""
        assert sessions[bob.session_id].label == "p3"
        assert sessions["P3"].id == bob.session_id
        with pytest.raises(ValueError, match="at most 40 characters"):
            sessions[ada.session_id].label("x" * 41)
        with pytest.raises(TypeError, match="a label is text"):
            sessions[ada.session_id].label(3)  # type: ignore[arg-type]
        sessions[bob.session_id].label("")
        assert "p3" not in sessions

    def test_a_label_that_is_a_session_id_or_its_start_is_refused(self) -> None:
        ada, bob = self.participant(), self.participant()
        sessions = self.proto.sessions
        a, b = sessions[ada.session_id], sessions[bob.session_id]
        for label in (a.short_id, a.short_id.upper(), a.id, a.id[:5]):
            with pytest.raises(ValueError, match=f"of session {a.short_id}, so proto.sessions"):
                b.label(label)
        assert b.label == ""
        assert sessions[a.short_id].id == a.id
        with pytest.raises(ValueError, match=r"is the id of session .*give a label like 'P3' instead"):
            b.label(a.id)

    def test_remove_makes_the_next_request_start_a_new_empty_session(self) -> None:
        ada = self.participant("Ada")
        old = ada.session_id
        session = self.proto.sessions[old]
        session.remove()
        assert old not in self.proto.sessions and len(self.proto.sessions) == 0
        with pytest.raises(SessionGone, match="is gone"):
            session.data  # noqa: B018
        with pytest.raises(SessionGone, match="already gone"):
            session.remove()
        assert ada.data() == DEFAULTS
        assert ada.session_id != old
        assert [s.id for s in self.proto.sessions] == [ada.session_id]

    def test_clear_all_clears_every_session_and_keeps_them(self) -> None:
        self.participant("Ada")
        self.participant("Bob")
        assert self.proto.clear_all() == 2
        assert [s.data for s in self.proto.sessions] == [DEFAULTS, DEFAULTS]


# --------------------------------------------------------------------------- watching changes


class TestOnChange(PrototypeCase):
    def test_callbacks_get_each_kind_of_change_with_the_data_after_it(self) -> None:
        seen: list[tuple[str, str, Any]] = []
        stop = self.proto.on_change(
            lambda change: seen.append((change.kind, change.session_id, change.data))
        )
        ada = self.participant()
        sid = ada.session_id
        assert seen == [("created", sid, DEFAULTS)]
        seen.clear()
        ada.post("/household", {"claimant[first-name]": "Ada"})
        with_ada = {"claimant": {"first-name": "Ada", "last-name": ""}, "service": "Help"}
        # The redirect's GET of the same page, at once, writes nothing more (see test_session_writes).
        assert seen == [("data", sid, with_ada)]
        seen.clear()
        session = self.proto.sessions[sid]
        session.label("P1")
        session.set("age", 36)
        session.remove()
        assert seen == [
            ("label", sid, with_ada),
            ("data", sid, {**with_ada, "age": 36}),
            ("deleted", sid, None),
        ]
        seen.clear()
        stop()
        self.participant("Bob")
        assert seen == []

    def test_a_change_says_which_session_changed(self) -> None:
        changes: list[Any] = []
        self.proto.on_change(changes.append)
        ada = self.participant()
        assert changes[0].session.id == ada.session_id
        self.proto.sessions[0].remove()
        assert changes[-1].kind == "deleted" and changes[-1].session is None
        with pytest.raises(TypeError, match="on_change"):
            self.proto.on_change("not a function")  # type: ignore[arg-type]

    def test_a_failing_callback_never_breaks_the_participants_request(self) -> None:
        kinds: list[str] = []

        def broken(change: Any) -> None:
            raise RuntimeError("the researcher's callback is broken")

        self.proto.on_change(broken)
        self.proto.on_change(lambda change: kinds.append(change.kind))
        ada = Browser(self)
        assert ada.get("/").code == 200
        assert ada.get("/").code == 200
        response = ada.post("/household", {"claimant[first-name]": "Ada"}, follow=False)
        assert response.code == 302
        assert ada.data()["claimant"]["first-name"] == "Ada"
        assert kinds[:2] == ["created", "data"]


# --------------------------------------------------------------------------- racing the participant


class TestInterleaving(PrototypeCase):
    def test_a_researcher_edit_then_a_participant_post_both_survive(self) -> None:
        ada = self.participant()
        self.proto.sessions[ada.session_id].set("claimant.last-name", "Lovelace")
        ada.post("/household", {"claimant[first-name]": "Ada"}, follow=False)
        claimant = self.proto.sessions[ada.session_id].data["claimant"]
        assert claimant == {"first-name": "Ada", "last-name": "Lovelace"}
        assert ada.data()["claimant"] == claimant

    def test_a_participant_post_then_a_researcher_edit_both_survive(self) -> None:
        ada = self.participant()
        ada.post("/household", {"claimant[first-name]": "Ada"}, follow=False)
        self.proto.sessions[ada.session_id].set("claimant.last-name", "Lovelace")
        ada.get("/household")
        claimant = self.proto.sessions[ada.session_id].data["claimant"]
        assert claimant == {"first-name": "Ada", "last-name": "Lovelace"}
        assert ada.data()["claimant"] == claimant


# --------------------------------------------------------------------------- exports


class TestExports(PrototypeCase):
    def test_to_dataframe_has_a_row_per_session_and_flattened_columns(self) -> None:
        empty = self.proto.sessions.to_dataframe()
        assert len(empty) == 0 and "current_page" in empty.columns
        ada, bob = self.participant("Ada"), self.participant("Bob")
        self.proto.sessions[ada.session_id].label("P1")
        frame = self.proto.sessions.to_dataframe()
        assert len(frame) == 2
        assert {"id", "label", "current_page", "answers", "claimant.first-name", "claimant.last-name"} <= set(
            frame.columns
        )
        by_id = frame.set_index("id")
        assert by_id.loc[ada.session_id, "claimant.first-name"] == "Ada"
        assert by_id.loc[bob.session_id, "claimant.first-name"] == "Bob"
        assert by_id.loc[ada.session_id, "label"] == "P1"
        assert by_id.loc[ada.session_id, "answers"] == 1

    def test_to_json_round_trips_and_writes_a_file(self) -> None:
        ada = self.participant("Ada")
        self.participant("Bob")
        text = self.proto.sessions.to_json()
        records = json.loads(text)
        assert [r["id"] for r in records] == [s.id for s in self.proto.sessions]
        mine = next(r for r in records if r["id"] == ada.session_id)
        assert mine["data"]["claimant"]["first-name"] == "Ada"
        assert mine["current_page"] == "/household"
        assert dt.datetime.fromisoformat(mine["created"]) == self.proto.sessions[ada.session_id].created
        path = self.root / "export.json"
        assert self.proto.sessions.to_json(str(path)) == path.read_text(encoding="utf-8")
        assert json.loads(path.read_text(encoding="utf-8")) == records
