"""The server over real HTTP: the prototype folder, route functions, cookies, limits, restarts.

Each test writes a small prototype folder into a temporary directory and serves it with
``protonb.server.make_app`` inside Tornado's ``AsyncHTTPTestCase``. Participants are played
by ``Browser``: it keeps cookies by name only, as browsers do for one host whatever the port,
and follows redirects. Where a test needs a restart or a second prototype it starts
``Prototype(...).start()`` on the test's own event loop, on real ports, as a notebook does.
"""

from __future__ import annotations

import base64
import datetime
import json
import logging
import os
import tempfile
import time
import urllib.parse
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import tornado.testing
import tornado.web

import protonb.server
from protonb.prototype import Prototype
from protonb.session import cookie_name, is_session_id

DEFAULTS = {
    "service": "Help with housing",
    "claimant": {"first-name": "", "address": {"town": "Leeds"}},
    "contact": ["email"],
}

TEMPLATES = {
    "index.html": "<h1>Start</h1>",
    "name.html": '<h1>Your name</h1><form method="post"><input name="first-name"'
    " value=\"{{ data['first-name'] }}\"></form>",
    "dump.html": "{{ data | tojson }}",
    "greeting.html": "<h1>Hello {{ name }}</h1><p>{{ data['first-name'] }}</p>",
    "section/index.html": "<h1>Section start</h1>",
    "section/detail.html": "<h1>Section detail</h1>",
    "section.html": "<h1>Section page</h1>",
    "broken.html": "<h1>Broken</h1>\n<p>{{ data['first-name'] }}</p>\n{% if %}\n",
    "failing.html": "<h1>Failing</h1>\n{{ data.first-name }}\n{{ 1 / 0 }}\n",
}

FORM = "application/x-www-form-urlencoded"


def write_prototype(root: Path, templates: dict[str, str] | None = None) -> Path:
    for name, text in (templates or TEMPLATES).items():
        path = root / "templates" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (root / "public" / "css").mkdir(parents=True)
    (root / "public" / "css" / "style.css").write_text("body { color: #0b0c0c; }\n", encoding="utf-8")
    (root / "session-data-defaults.json").write_text(json.dumps(DEFAULTS), encoding="utf-8")
    return root


def save(path: Path, text: str) -> None:
    """Save a file as an editor would, a moment after the last save.

    Some filesystems keep modification times to a few milliseconds; a person never saves
    twice that fast, so the new time is put a second on.
    """
    before = path.stat().st_mtime if path.exists() else time.time()
    path.write_text(text, encoding="utf-8")
    later = max(time.time(), before + 1)
    os.utime(path, (later, later))


class Response:
    def __init__(self, code: int, headers: Any, body: bytes, url: str) -> None:
        self.code = code
        self.headers = headers
        self.body = body
        self.text = body.decode("utf-8", "replace")
        self.url = url

    def json(self) -> Any:
        assert self.code == 200, f"{self.url} answered {self.code}: {self.text[:500]}"
        return json.loads(self.text)


class Browser:
    """One participant's browser: cookies kept by name for the host, redirects followed."""

    def __init__(self, case: tornado.testing.AsyncHTTPTestCase, base: str = "") -> None:
        self.case = case
        self.base = base
        self.cookies: dict[str, str] = {}
        self.set_cookie_headers: list[str] = []

    def url(self, path: str) -> str:
        if path.startswith("http"):
            return path
        return (self.base.rstrip("/") + path) if self.base else self.case.get_url(path)

    def request(
        self,
        method: str,
        path: str,
        body: str | bytes | None = None,
        content_type: str = FORM,
        follow: bool = True,
    ) -> Response:
        url = self.url(path)
        for _ in range(10):
            headers = {}
            if self.cookies:
                headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
            if body is not None:
                headers["Content-Type"] = content_type
            answer = self.case.fetch(
                url, method=method, body=body, headers=headers, follow_redirects=False, raise_error=False
            )
            self.set_cookie_headers = answer.headers.get_list("Set-Cookie")
            for header in self.set_cookie_headers:
                for name, morsel in SimpleCookie(header).items():
                    self.cookies[name] = morsel.value
            response = Response(answer.code, answer.headers, answer.body or b"", url)
            if not (follow and answer.code in (301, 302, 303)):
                return response
            url = urllib.parse.urljoin(url, answer.headers["Location"])
            method, body = "GET", None
        raise AssertionError("more than 10 redirects")

    def get(self, path: str, follow: bool = True) -> Response:
        return self.request("GET", path, follow=follow)

    def post(self, path: str, fields: dict[str, Any] | str | None = None, follow: bool = True) -> Response:
        body = fields if isinstance(fields, str) else urllib.parse.urlencode(fields or {}, doseq=True)
        return self.request("POST", path, body, follow=follow)

    def data(self, base: str = "") -> dict[str, Any]:
        """What this participant's pages see as ``data``."""
        return self.get(f"{base}/dump").json()


class ServerCase(tornado.testing.AsyncHTTPTestCase):
    """A fresh prototype folder served over HTTP for every test."""

    def setUp(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="protonb-server-")
        self.tmp = Path(self._tmp.name)
        self.root = write_prototype(self.tmp / "proto")
        self.proto = Prototype(self.root)
        self.started: list[Prototype] = []
        super().setUp()

    def tearDown(self) -> None:
        for proto in self.started:
            proto.close()
        super().tearDown()
        self.proto.close()
        self._tmp.cleanup()

    def get_app(self) -> tornado.web.Application:
        return protonb.server.make_app(self.proto.site)

    def participant(self) -> Browser:
        return Browser(self)

    def serve(self, root: Path) -> tuple[Prototype, str]:
        """Open ``root`` as a notebook does and start it on a free port of this event loop."""
        proto = Prototype(root)
        self.started.append(proto)
        url = proto.start(show=False)
        return proto, url.rstrip("/")

    @property
    def cookie_name(self) -> str:
        return cookie_name(self.proto.folder.cookie_keys().prototype_id)

    def session_id_in(self, browser: Browser) -> str:
        keys = self.proto.folder.cookie_keys()
        raw = tornado.web.decode_signed_value(
            keys.secrets, self.cookie_name, browser.cookies[self.cookie_name]
        )
        assert raw is not None, "the cookie does not carry a valid signature"
        return raw.decode("ascii")


# --------------------------------------------------------------------------- the folder


class TestPages(ServerCase):
    def test_each_path_shows_its_template(self) -> None:
        browser = self.participant()
        assert "<h1>Start</h1>" in browser.get("/").text
        assert "<h1>Your name</h1>" in browser.get("/name").text
        assert "<h1>Section detail</h1>" in browser.get("/section/detail").text

    def test_a_folder_with_an_index_page_answers_at_its_path(self) -> None:
        (self.root / "templates" / "section.html").unlink()
        assert "<h1>Section start</h1>" in self.participant().get("/section").text

    def test_a_page_next_to_a_folder_of_the_same_name_comes_first(self) -> None:
        assert "<h1>Section page</h1>" in self.participant().get("/section").text

    def test_a_trailing_slash_shows_the_same_page(self) -> None:
        assert "<h1>Your name</h1>" in self.participant().get("/name/").text

    def test_a_path_with_no_template_is_the_404_page_naming_the_path(self) -> None:
        for path in ("/nowhere", "/section/nowhere", "/name/more"):
            response = self.participant().get(path)
            assert response.code == 404, path
            assert "Page not found" in response.text
            assert path in response.text

    def test_the_404_page_says_which_template_to_add(self) -> None:
        assert "templates/new-page.html" in self.participant().get("/new-page").text

    def test_the_404_page_shows_the_path_escaped(self) -> None:
        response = self.participant().get("/%3Cscript%3Ealert(1)%3C/script%3E")
        assert response.code == 404
        assert "<script>" not in response.text
        assert "&lt;script&gt;alert(1)" in response.text

    def test_paths_that_climb_out_of_templates_are_not_found(self) -> None:
        (self.tmp / "secret.html").write_text("<h1>outside</h1>", encoding="utf-8")
        for path in ("/../secret", "/%2e%2e/secret", "/section/%2e%2e/%2e%2e/secret", "/.protonb/secret"):
            response = self.participant().get(path)
            assert response.code == 404, path
            assert "outside" not in response.text

    def test_an_html_address_goes_to_the_page_without_it(self) -> None:
        response = self.participant().get("/name.html", follow=False)
        assert response.code == 302
        assert response.headers["Location"] == "/name"

    def test_a_template_edit_shows_on_the_next_request(self) -> None:
        browser = self.participant()
        assert "<h1>Your name</h1>" in browser.get("/name").text
        save(self.root / "templates" / "name.html", "<h1>What is your full name?</h1>")
        assert "<h1>What is your full name?</h1>" in browser.get("/name").text

    def test_an_edited_layout_shows_on_every_page_that_extends_it(self) -> None:
        templates = self.root / "templates"
        save(templates / "layout.html", "<title>Old</title>{% block content %}{% endblock %}")
        save(
            templates / "child.html",
            '{% extends "layout.html" %}{% block content %}<h1>Child</h1>{% endblock %}',
        )
        browser = self.participant()
        assert "<title>Old</title><h1>Child</h1>" in browser.get("/child").text
        save(templates / "layout.html", "<title>New</title>{% block content %}{% endblock %}")
        assert "<title>New</title><h1>Child</h1>" in browser.get("/child").text

    def test_a_new_template_answers_without_a_restart(self) -> None:
        browser = self.participant()
        assert browser.get("/later").code == 404
        save(self.root / "templates" / "later.html", "<h1>Added later</h1>")
        assert "<h1>Added later</h1>" in browser.get("/later").text

    def test_a_broken_template_names_the_template_and_line_and_the_server_carries_on(self) -> None:
        browser = self.participant()
        response = browser.get("/broken")
        assert response.code == 500
        assert "broken.html" in response.text and "line 3" in response.text
        assert "<h1>Start</h1>" in browser.get("/").text

    def test_a_template_that_fails_while_rendering_names_its_line(self) -> None:
        response = self.participant().get("/failing")
        assert response.code == 500
        assert "failing.html" in response.text
        assert "line 2" in response.text
        assert "data[&#39;first-name&#39;]" in response.text


class TestPublicFiles(ServerCase):
    def test_a_public_file_is_served_as_it_is(self) -> None:
        response = self.participant().get("/public/css/style.css")
        assert response.code == 200
        assert response.text == "body { color: #0b0c0c; }\n"
        assert response.headers["Content-Type"].startswith("text/css")

    def test_a_public_file_sets_no_cookie_and_stores_nothing(self) -> None:
        browser = self.participant()
        browser.post("/name", {"first-name": "Ada"})
        before = self.proto.store.get(self.session_id_in(browser))
        assert browser.get("/public/css/style.css?first-name=Eve").code == 200
        assert browser.set_cookie_headers == []
        after = self.proto.store.get(self.session_id_in(browser))
        assert after.data == before.data and after.pages == before.pages
        assert after.last_active == before.last_active
        stranger = self.participant()
        assert stranger.get("/public/css/style.css").code == 200
        assert stranger.cookies == {}

    def test_a_missing_public_file_is_404(self) -> None:
        assert self.participant().get("/public/nothing.css").code == 404

    def test_a_public_folder_is_404_not_forbidden(self) -> None:
        for path in ("/public/css/", "/public/css", "/public/"):
            response = self.participant().get(path)
            assert response.code == 404, (path, response.code)

    def test_a_public_path_never_reads_outside_public(self) -> None:
        for path in ("/public/../routes.py", "/public/%2e%2e/session-data-defaults.json"):
            response = self.participant().get(path)
            assert response.code in (403, 404), path
            assert "Help with housing" not in response.text


class TestDefaults(ServerCase):
    def test_a_new_participant_starts_from_the_defaults(self) -> None:
        assert self.participant().data() == DEFAULTS

    def test_answers_go_on_top_of_the_defaults(self) -> None:
        browser = self.participant()
        browser.post("/name", {"claimant[first-name]": "Ada", "contact": ["post", "phone"]})
        assert browser.data() == {
            "service": "Help with housing",
            "claimant": {"first-name": "Ada", "address": {"town": "Leeds"}},
            "contact": ["post", "phone"],
        }

    def test_one_sessions_nested_answer_never_shows_in_anothers_defaults(self) -> None:
        ada = self.participant()
        ada.post(
            "/name",
            {
                "claimant[address][town]": "York",
                "claimant[address][postcode]": "YO1",
                "claimant[first-name]": "Ada",
                "contact[]": ["post"],
            },
        )
        ada.post("/name", {"claimant[address][street]": "Low Petergate"})
        bea = self.participant()
        assert bea.data() == DEFAULTS
        assert ada.data()["claimant"]["address"] == {
            "town": "York",
            "postcode": "YO1",
            "street": "Low Petergate",
        }
        bea.post("/name", {"claimant[address][flat]": "2"})
        assert self.participant().data() == DEFAULTS
        assert "flat" not in ada.data()["claimant"]["address"]

    def test_a_route_function_changing_data_in_place_never_changes_the_defaults(self) -> None:
        @self.proto.route("/name", methods=["POST"])
        def add_note(req):
            req.session.data["claimant"]["address"]["notes"] = ["seen"]
            req.session.data["contact"].append("sms")

        self.participant().post("/name", {"first-name": "Ada"})
        assert self.participant().data() == DEFAULTS

    def test_edited_defaults_apply_to_participants_without_a_restart(self) -> None:
        save(self.root / "session-data-defaults.json", json.dumps({"service": "Renamed"}))
        assert self.participant().data() == {"service": "Renamed"}

    def test_broken_defaults_saved_while_serving_keep_the_last_good_ones(self) -> None:
        browser = self.participant()
        with self.assertLogs("protonb", logging.ERROR):
            save(self.root / "session-data-defaults.json", '{"service": ')
            assert browser.data() == DEFAULTS
        assert self.participant().data() == DEFAULTS


# --------------------------------------------------------------------------- storing answers


class TestPostAndRedirect(ServerCase):
    def test_a_post_is_stored_and_answered_with_a_redirect_to_the_same_page(self) -> None:
        browser = self.participant()
        response = browser.post("/name", {"first-name": "Ada"}, follow=False)
        assert response.code == 302
        assert response.headers["Location"] == "/name"
        page = browser.get("/name")
        assert 'value="Ada"' in page.text

    def test_the_redirect_keeps_the_query_string(self) -> None:
        response = self.participant().post("/name?change=yes&return[to]=check", {"a": "1"}, follow=False)
        assert response.headers["Location"] == "/name?change=yes&return[to]=check"

    def test_a_post_to_a_page_with_no_template_still_stores_and_redirects(self) -> None:
        browser = self.participant()
        response = browser.post("/no-such-page", {"first-name": "Ada"}, follow=False)
        assert (response.code, response.headers["Location"]) == (302, "/no-such-page")
        assert browser.data()["first-name"] == "Ada"

    def test_a_query_string_is_stored_and_shown_on_the_same_request(self) -> None:
        browser = self.participant()
        assert "<p>Ada</p>" in browser.get("/greeting?first-name=Ada").text
        assert browser.data()["first-name"] == "Ada"

    def test_a_json_body_is_stored(self) -> None:
        browser = self.participant()
        response = browser.request("POST", "/name", '{"claimant": {"first-name": "Ada"}}', "application/json")
        assert response.code == 200
        assert browser.data()["claimant"] == {"first-name": "Ada", "address": {"town": "Leeds"}}

    def test_answers_are_shown_escaped(self) -> None:
        browser = self.participant()
        browser.post("/name", {"first-name": '"><script>alert(1)</script>'})
        page = browser.get("/name").text
        assert "<script>" not in page
        assert "&lt;script&gt;" in page

    def test_no_redirect_after_a_post_leaves_the_site(self) -> None:
        for path in ("//evil.example/x", "///evil.example/x", "/\\evil.example/x", "/\\\\evil.example"):
            response = self.participant().post(path, {"a": "1"}, follow=False)
            if response.code in (301, 302, 303, 307, 308):
                assert_stays_on_site(response.headers["Location"])

    def test_no_html_address_redirect_leaves_the_site(self) -> None:
        for path in ("//evil.example/page.html", "/\\evil.example/page.html"):
            response = self.participant().get(path, follow=False)
            assert response.code == 302
            assert_stays_on_site(response.headers["Location"])


def assert_stays_on_site(location: str) -> None:
    """A browser given this Location stays on the prototype's own host."""
    assert location.startswith("/"), location
    assert not location.startswith("//") and "\\" not in location, location
    assert urllib.parse.urlsplit(location).netloc == "", location
    assert urllib.parse.urljoin("http://127.0.0.1:3000/a/b", location).startswith("http://127.0.0.1:3000/")


# --------------------------------------------------------------------------- route functions


ROUTES = """
from protonb import Router

router = Router()


@router.route("/over-18", methods=["POST"])
def eligibility(req):
    if req.session.data.get("over-18") == "no":
        return req.redirect("/ineligible")
    return req.redirect("/name")


@router.route("/hello")
def hello(req):
    return req.render("greeting", name=req.query.get("who", "stranger"))


@router.route("/name", methods=["POST"])
def note(req):
    req.session.data["seen-by-route"] = req.body.get("first-name", "")


@router.route("/crash")
def crash(req):
    raise RuntimeError("the route broke")


@router.route("/elsewhere")
def elsewhere(req):
    return req.redirect("https://evil.example/steal")
"""


class TestRoutesFile(ServerCase):
    def setUp(self) -> None:
        super().setUp()
        save(self.root / "routes.py", ROUTES)

    def test_a_route_can_redirect_on_an_answer_already_stored(self) -> None:
        browser = self.participant()
        response = browser.post("/over-18", {"over-18": "no"}, follow=False)
        assert (response.code, response.headers["Location"]) == (302, "/ineligible")
        response = browser.post("/over-18", {"over-18": "yes"}, follow=False)
        assert response.headers["Location"] == "/name"
        assert browser.data()["over-18"] == "yes"

    def test_a_route_can_render_a_template_with_its_own_values(self) -> None:
        browser = self.participant()
        browser.post("/name", {"first-name": "Ada"})
        page = browser.get("/hello?who=<world>")
        assert page.code == 200
        assert "<h1>Hello &lt;world&gt;</h1>" in page.text
        assert "<p>Ada</p>" in page.text

    def test_a_route_rendering_a_template_that_is_not_there_says_which(self) -> None:
        @self.proto.route("/summary")
        def summary(req):
            return req.render("sumary", status=200)

        with self.assertLogs("protonb", logging.ERROR):
            response = self.participant().get("/summary")
        assert response.code == 500
        assert "There is no template called &#39;sumary.html&#39; in templates/" in response.text

    def test_a_route_that_returns_nothing_lets_protonb_answer_and_keeps_its_changes(self) -> None:
        browser = self.participant()
        response = browser.post("/name", {"first-name": "Ada"}, follow=False)
        assert (response.code, response.headers["Location"]) == (302, "/name")
        data = browser.data()
        assert data["first-name"] == "Ada" and data["seen-by-route"] == "Ada"

    def test_saving_routes_py_replaces_the_function_without_a_restart(self) -> None:
        browser = self.participant()
        assert browser.post("/over-18", {"over-18": "no"}, follow=False).headers["Location"] == "/ineligible"
        save(self.root / "routes.py", ROUTES.replace('"/ineligible"', '"/not-eligible"'))
        assert (
            browser.post("/over-18", {"over-18": "no"}, follow=False).headers["Location"] == "/not-eligible"
        )

    def test_deleting_routes_py_removes_its_routes(self) -> None:
        browser = self.participant()
        (self.root / "routes.py").unlink()
        response = browser.post("/over-18", {"over-18": "no"}, follow=False)
        assert response.headers["Location"] == "/over-18"

    def test_a_routes_py_that_fails_to_load_keeps_the_routes_loaded_before(self) -> None:
        browser = self.participant()
        assert browser.post("/over-18", {"over-18": "no"}, follow=False).headers["Location"] == "/ineligible"
        with self.assertLogs("protonb", logging.ERROR) as logged:
            save(self.root / "routes.py", ROUTES + "\ndef broken(:\n")
            response = browser.post("/over-18", {"over-18": "no"}, follow=False)
        assert response.headers["Location"] == "/ineligible"
        assert any("routes.py" in line for line in logged.output)
        assert browser.get("/").code == 200

    def test_a_route_that_raises_shows_an_error_page_and_everyone_carries_on(self) -> None:
        browser, other = self.participant(), self.participant()
        browser.post("/name", {"first-name": "Ada"})
        with self.assertLogs("protonb", logging.ERROR) as logged:
            response = browser.get("/crash?step=1")
        assert response.code == 500
        assert "crash" in response.text and "the route broke" in response.text
        assert "Traceback" not in response.text
        assert any("RuntimeError: the route broke" in line for line in logged.output)
        assert browser.get("/").code == 200
        assert browser.data()["first-name"] == "Ada"
        assert other.get("/").code == 200
        assert other.post("/over-18", {"over-18": "no"}, follow=False).headers["Location"] == "/ineligible"

    def test_a_route_redirect_never_leaves_the_site(self) -> None:
        response = self.participant().get("/elsewhere", follow=False)
        assert response.code == 302
        assert response.headers["Location"] == "/steal"

    def test_a_route_that_returns_something_else_says_what_to_return(self) -> None:
        @self.proto.route("/odd")
        def odd(req):
            return "/name"

        with self.assertLogs("protonb", logging.ERROR) as logged:
            response = self.participant().get("/odd")
        assert response.code == 500
        assert "odd" in response.text
        assert any("req.redirect" in line for line in logged.output)


class TestNotebookRoutes(ServerCase):
    def test_a_notebook_route_runs_with_the_answers_of_the_request(self) -> None:
        seen: list[dict[str, Any]] = []

        @self.proto.route("/name", methods=["POST"])
        def check(req):
            seen.append(json.loads(json.dumps(req.session.data)))
            if req.session.data.get("first-name") == "":
                return req.redirect("/name?error=empty")
            return req.redirect("/greeting")

        browser = self.participant()
        assert (
            browser.post("/name", {"first-name": ""}, follow=False).headers["Location"] == "/name?error=empty"
        )
        assert browser.post("/name", {"first-name": "Ada"}, follow=False).headers["Location"] == "/greeting"
        assert seen[-1]["first-name"] == "Ada" and seen[-1]["service"] == "Help with housing"

    def test_running_the_cell_again_replaces_the_route(self) -> None:
        @self.proto.route("/next", methods=["GET"])
        def first(req):
            return req.redirect("/one")

        browser = self.participant()
        assert browser.get("/next", follow=False).headers["Location"] == "/one"

        @self.proto.route("/next", methods=["GET"])
        def second(req):
            return req.redirect("/two")

        assert browser.get("/next", follow=False).headers["Location"] == "/two"
        assert len(self.proto.router.routes()) == 1

    def test_a_route_storing_a_value_that_is_not_json_says_so_and_keeps_the_answers(self) -> None:
        @self.proto.route("/name", methods=["POST"])
        def stamp(req):
            req.session.data["first-name"] = req.session.data["first-name"].upper()
            req.session.data["sent-at"] = datetime.datetime(2026, 1, 2, 9, 30)

        browser = self.participant()
        with self.assertLogs("protonb", logging.ERROR) as logged:
            response = browser.post("/name", {"first-name": "Ada"})
        assert response.code == 500
        assert "stamp" in response.text and "datetime" in response.text
        assert any("stamp" in line for line in logged.output)
        data = browser.data()
        assert data["first-name"] == "Ada" and "sent-at" not in data
        self.proto.router.remove("/name")
        browser.post("/name", {"first-name": "Bea"})
        assert browser.data()["first-name"] == "Bea"

    def test_a_notebook_route_for_post_leaves_get_alone(self) -> None:
        @self.proto.route("/name", methods=["POST"])
        def only_post(req):
            return req.redirect("/greeting")

        assert "<h1>Your name</h1>" in self.participant().get("/name").text


# --------------------------------------------------------------------------- cookies


class TestCookies(ServerCase):
    def session_cookie(self, browser: Browser) -> str:
        headers = [h for h in browser.set_cookie_headers if h.startswith(self.cookie_name + "=")]
        assert len(headers) == 1, browser.set_cookie_headers
        return headers[0]

    def test_the_cookie_is_httponly_samesite_lax_for_the_whole_site(self) -> None:
        browser = self.participant()
        browser.post("/name", {"first-name": "Ada"}, follow=False)
        header = self.session_cookie(browser)
        morsel = SimpleCookie(header)[self.cookie_name]
        assert morsel["httponly"] is True
        assert morsel["samesite"] == "Lax"
        assert morsel["path"] == "/"
        assert morsel["expires"]
        assert not morsel["secure"]

    def test_the_cookie_holds_only_a_signed_session_id(self) -> None:
        browser = self.participant()
        browser.post("/name", {"first-name": "Ada Lovelace", "claimant[first-name]": "Ada"})
        value = browser.cookies[self.cookie_name]
        session_id = self.session_id_in(browser)
        assert is_session_id(session_id)
        assert self.proto.store.get(session_id).data["first-name"] == "Ada Lovelace"
        pieces = value.split("|")
        readable = value + "".join(_b64(piece) for piece in pieces)
        assert "Ada" not in readable and "Lovelace" not in readable and "claimant" not in readable
        assert len(value) < 200

    def test_each_browser_gets_its_own_session_id(self) -> None:
        ada, bea = self.participant(), self.participant()
        ada.post("/name", {"first-name": "Ada"})
        bea.post("/name", {"first-name": "Bea"})
        assert self.session_id_in(ada) != self.session_id_in(bea)
        assert (ada.data()["first-name"], bea.data()["first-name"]) == ("Ada", "Bea")

    def test_the_cookie_name_is_this_prototypes_own(self) -> None:
        browser = self.participant()
        browser.post("/name", {"first-name": "Ada"})
        other_root = write_prototype(self.tmp / "other")
        other = Prototype(other_root)
        try:
            assert cookie_name(other.folder.cookie_keys().prototype_id) != self.cookie_name
        finally:
            other.close()

    def test_a_tampered_cookie_starts_a_fresh_session(self) -> None:
        ada = self.participant()
        ada.post("/name", {"first-name": "Ada"})
        value = ada.cookies[self.cookie_name]
        forger = self.participant()
        forger.cookies[self.cookie_name] = value[:-4] + ("0000" if not value.endswith("0000") else "1111")
        page = forger.get("/dump")
        assert page.code == 200
        assert forger.data() == DEFAULTS
        assert self.session_id_in(forger) != self.session_id_in(ada)
        assert ada.data()["first-name"] == "Ada"

    def test_garbled_cookies_never_break_a_page(self) -> None:
        keys = self.proto.folder.cookie_keys()
        signed_junk = sign(keys, self.cookie_name, "../../etc/passwd")
        unknown_id = sign(keys, self.cookie_name, "A" * 24)
        other_name = sign(keys, "protonb-other", "B" * 24)
        for value in (
            "",
            "garbage",
            "2|1:0|10:1700000000|",
            "2|1:0|10:notanumber|4:name|8:AAAAAAAA|" + "0" * 64,
            "x" * 3000,
            '"quoted"',
            signed_junk.decode(),
            unknown_id.decode(),
            other_name.decode(),
        ):
            browser = self.participant()
            browser.cookies[self.cookie_name] = value
            response = browser.post("/name", {"first-name": "Eve"})
            assert response.code == 200, (value, response.text[:300])
            assert browser.data() == {**DEFAULTS, "first-name": "Eve"}, value

    def test_a_session_id_never_given_out_is_not_taken_up(self) -> None:
        keys = self.proto.folder.cookie_keys()
        chosen = "C" * 24
        browser = self.participant()
        browser.cookies[self.cookie_name] = sign(keys, self.cookie_name, chosen).decode()
        browser.post("/name", {"first-name": "Eve"})
        assert self.session_id_in(browser) != chosen
        assert self.proto.store.get(chosen) is None


def sign(keys: Any, name: str, value: str) -> bytes:
    """A cookie value signed with this prototype's own secret, as protonb would sign it."""
    return tornado.web.create_signed_value(keys.secrets, name, value, key_version=keys.key_version)


def _b64(piece: str) -> str:
    try:
        return base64.b64decode(piece + "=" * (-len(piece) % 4), validate=False).decode("utf-8", "replace")
    except ValueError:
        return ""


# --------------------------------------------------------------------------- limits


class TestLimits(ServerCase):
    def given_an_answer(self) -> Browser:
        browser = self.participant()
        browser.post("/name", {"first-name": "Ada"})
        return browser

    def assert_refused(self, browser: Browser, response: Response, status: int, *words: str) -> None:
        assert response.code == status, response.text[:500]
        for word in words:
            assert word in response.text, (word, response.text[:500])
        assert browser.data() == {**DEFAULTS, "first-name": "Ada"}

    def test_a_body_over_100_kb_is_refused_naming_the_limit(self) -> None:
        browser = self.given_an_answer()
        body = "first-name=Eve&essay=" + "x" * (100 * 1024)
        response = browser.request("POST", "/name", body)
        self.assert_refused(browser, response, 413, "100 KB", "Nothing from this page was stored")

    def test_a_body_of_exactly_100_kb_is_stored(self) -> None:
        browser = self.given_an_answer()
        prefix = "first-name=Eve&essay="
        body = prefix + "x" * (100 * 1024 - len(prefix))
        assert browser.request("POST", "/name", body).code == 200
        assert browser.data()["first-name"] == "Eve"

    def test_over_1000_fields_are_refused_naming_the_limit(self) -> None:
        browser = self.given_an_answer()
        body = "first-name=Eve&" + "&".join(f"f{i}=1" for i in range(1000))
        self.assert_refused(browser, browser.request("POST", "/name", body), 413, "1000")

    def test_a_name_nested_over_32_levels_is_refused_naming_the_limit(self) -> None:
        browser = self.given_an_answer()
        body = "first-name=Eve&n" + "[x]" * 33 + "=1"
        self.assert_refused(browser, browser.request("POST", "/name", body), 400, "32 levels")

    def test_a_body_that_is_not_utf8_is_refused(self) -> None:
        browser = self.given_an_answer()
        response = browser.request("POST", "/name", b"first-name=Ev\xe9")
        self.assert_refused(browser, response, 400, "UTF-8")

    def test_a_body_in_another_charset_is_refused(self) -> None:
        browser = self.given_an_answer()
        response = browser.request("POST", "/name", "first-name=Eve", FORM + "; charset=iso-8859-1")
        self.assert_refused(browser, response, 415, "UTF-8")

    def test_an_address_with_over_1000_query_parameters_is_refused(self) -> None:
        browser = self.given_an_answer()
        query = "first-name=Eve&" + "&".join(f"q{i}=1" for i in range(1000))
        self.assert_refused(browser, browser.get(f"/name?{query}"), 400, "1000")

    def test_broken_json_is_refused_in_plain_text(self) -> None:
        browser = self.given_an_answer()
        response = browser.request("POST", "/name", '{"first-name": "Eve"', "application/json")
        self.assert_refused(browser, response, 400, "could not be read")
        assert response.headers["Content-Type"].startswith("text/plain")

    def test_after_a_refusal_the_next_answer_is_stored(self) -> None:
        browser = self.given_an_answer()
        browser.request("POST", "/name", "n" + "[x]" * 40 + "=1")
        browser.post("/name", {"first-name": "Bea"})
        assert browser.data()["first-name"] == "Bea"


# --------------------------------------------------------------------------- clearing data


class TestClearData(ServerCase):
    def test_get_asks_first_and_changes_nothing(self) -> None:
        browser = self.participant()
        browser.post("/name", {"first-name": "Ada"})
        page = browser.get("/manage-prototype/clear-data?first-name=Eve")
        assert page.code == 200
        assert 'method="post"' in page.text and 'action="/manage-prototype/clear-data"' in page.text
        assert browser.data()["first-name"] == "Ada"

    def test_post_clears_this_browsers_answers_back_to_the_defaults(self) -> None:
        ada, bea = self.participant(), self.participant()
        ada.post("/name", {"first-name": "Ada", "claimant[address][town]": "York"})
        bea.post("/name", {"first-name": "Bea"})
        page = ada.post("/manage-prototype/clear-data")
        assert page.code == 200 and "Data cleared" in page.text
        assert ada.data() == DEFAULTS
        assert bea.data()["first-name"] == "Bea"

    def test_fields_sent_with_the_clear_are_not_stored(self) -> None:
        browser = self.participant()
        browser.post("/manage-prototype/clear-data", {"first-name": "Eve"})
        assert browser.data() == DEFAULTS

    def test_other_manage_addresses_are_not_found(self) -> None:
        assert self.participant().get("/manage-prototype/anything").code == 404


# --------------------------------------------------------------------------- restarts and ports


class TestRestart(ServerCase):
    def test_after_a_restart_the_same_browser_sees_its_answers(self) -> None:
        proto, url = self.serve(self.root)
        browser = Browser(self, url)
        browser.post("/name", {"claimant[first-name]": "Ada", "contact": ["post"]})
        browser.get("/section")
        before = browser.data()
        proto.close()

        again, new_url = self.serve(self.root)
        browser.base = new_url
        assert browser.data() == before
        assert before["claimant"] == {"first-name": "Ada", "address": {"town": "Leeds"}}
        assert "<h1>Your name</h1>" in browser.get("/name").text
        record = again.sessions[0]
        assert record.data["claimant"]["first-name"] == "Ada"
        assert "/section" in record.pages

    def test_after_a_restart_a_new_browser_still_starts_afresh(self) -> None:
        proto, url = self.serve(self.root)
        Browser(self, url).post("/name", {"first-name": "Ada"})
        proto.close()
        _, new_url = self.serve(self.root)
        assert Browser(self, new_url).data() == DEFAULTS


class TestTwoPrototypes(ServerCase):
    def test_two_prototypes_on_two_ports_keep_one_browsers_sessions_apart(self) -> None:
        first, first_url = self.serve(write_prototype(self.tmp / "first"))
        second, second_url = self.serve(write_prototype(self.tmp / "second"))
        assert first_url != second_url
        browser = Browser(self)  # one cookie jar for 127.0.0.1, whatever the port

        browser.post(f"{first_url}/name", {"first-name": "Ada", "claimant[address][town]": "York"})
        browser.post(f"{second_url}/name", {"first-name": "Bea"})
        browser.post(f"{first_url}/name", {"claimant[first-name]": "Augusta"})
        assert len(browser.cookies) == 2

        on_first = browser.data(first_url)
        on_second = browser.data(second_url)
        assert on_first["first-name"] == "Ada"
        assert on_first["claimant"] == {"first-name": "Augusta", "address": {"town": "York"}}
        assert on_second == {**DEFAULTS, "first-name": "Bea"}
        assert [s.data.get("first-name") for s in first.sessions] == ["Ada"]
        assert [s.data.get("first-name") for s in second.sessions] == ["Bea"]

    def test_clearing_one_prototype_leaves_the_other(self) -> None:
        _, first_url = self.serve(write_prototype(self.tmp / "first"))
        _, second_url = self.serve(write_prototype(self.tmp / "second"))
        browser = Browser(self)
        browser.post(f"{first_url}/name", {"first-name": "Ada"})
        browser.post(f"{second_url}/name", {"first-name": "Bea"})
        browser.post(f"{first_url}/manage-prototype/clear-data")
        assert browser.data(first_url) == DEFAULTS
        assert browser.data(second_url)["first-name"] == "Bea"
