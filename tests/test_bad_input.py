"""Bad input over real HTTP: limits, encodings, open redirects and paths that try to climb out.

Requests that an HTTP client library would tidy up (``..``, backslashes, ``//``) are written
byte for byte on a socket. A secret file sits next to the prototype folder, and the
prototype's own files sit next to ``templates/``: none of them ever comes back.
"""

from __future__ import annotations

import asyncio
import json
import socket
import urllib.parse
from typing import Any

import pytest
import tornado.tcpclient
from hypothesis import given, settings
from hypothesis import strategies as st
from test_server import DEFAULTS, FORM, Browser, ServerCase

from protonb import forms, runner
from protonb import server as server_module
from protonb.server import DISCARD_LIMIT_BYTES, safe_location

SECRET = "TOP-SECRET-5f1c"


class BadInputCase(ServerCase):
    def setUp(self) -> None:
        super().setUp()
        self.changes: list[Any] = []
        self.proto.store.subscribe(self.changes.append)

    def given_an_answer(self) -> Browser:
        browser = self.participant()
        browser.post("/name", {"first-name": "Ada"})
        self.changes.clear()
        return browser

    def assert_nothing_stored(self, browser: Browser) -> None:
        assert self.changes == [], self.changes  # before reading: a page view is a change too
        assert browser.data() == {**DEFAULTS, "first-name": "Ada"}
        self.changes.clear()

    def raw(self, request: bytes) -> tuple[int, bytes]:
        """Send ``request`` as it is; return the status and the whole answer."""

        async def send() -> bytes:
            stream = await tornado.tcpclient.TCPClient().connect("127.0.0.1", self.get_http_port())
            await stream.write(request)
            return await stream.read_until_close()

        answer = self.io_loop.run_sync(send)
        status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0
        return status, answer

    def raw_get(self, target: bytes) -> tuple[int, bytes]:
        return self.raw(b"GET " + target + b" HTTP/1.1\r\nHost: site\r\nConnection: close\r\n\r\n")

    def raw_post(self, target: bytes, body: bytes = b"a=1") -> tuple[int, bytes]:
        head = (
            b"POST " + target + b" HTTP/1.1\r\nHost: site\r\nConnection: close\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
        )
        return self.raw(head + body)


# ------------------------------------------------------------------------------ limits


class TestLimits(BadInputCase):
    def refused(
        self, browser: Browser, body: str | bytes, content_type: str, status: int, *words: str
    ) -> None:
        response = browser.request("POST", "/name", body, content_type)
        assert response.code == status, response.text[:300]
        for word in words:
            assert word in response.text, (word, response.text[:300])
        self.assert_nothing_stored(browser)

    def test_each_limit_is_refused_with_its_name_and_nothing_is_stored(self) -> None:
        browser = self.given_an_answer()
        self.refused(browser, "first-name=Eve&x=" + "y" * 200_000, FORM, 413, "100 KB", "Limit: body size")
        self.refused(browser, "first-name=Eve&" + "&".join(f"f{i}=1" for i in range(1000)), FORM, 413, "1000")
        self.refused(browser, "first-name=Eve&a" + "[b]" * 33 + "=1", FORM, 400, "32 levels", "Limit: depth")

    def test_the_limits_themselves_are_allowed(self) -> None:
        browser = self.given_an_answer()
        fields = "&".join(f"f{i}=1" for i in range(999))
        assert browser.request("POST", "/name", "first-name=Eve&" + fields).code == 200
        assert browser.request("POST", "/name", "first-name=Eve&a" + "[b]" * 32 + "=1").code == 200
        assert browser.data()["first-name"] == "Eve"

    def test_json_limits(self) -> None:
        browser = self.given_an_answer()
        json_type = "application/json"
        deep = {"first-name": "Eve"}
        nested: Any = "x"
        for _ in range(forms.JSON_DEPTH_LIMIT):
            nested = {"a": nested}
        deep["n"] = nested
        self.refused(browser, json.dumps(deep), json_type, 400, "64 levels")
        self.refused(browser, "[" * 50_000 + "]" * 50_000, json_type, 400, "64 levels")
        self.refused(browser, json.dumps({"first-name": "Eve", "x": "y" * 200_000}), json_type, 413, "100 KB")
        self.refused(browser, '{"first-name": "Eve", "x": "\\ud800"}', json_type, 400, "not valid Unicode")
        self.refused(browser, '{"\\udfff": "Eve"}', json_type, 400, "not valid Unicode")
        self.refused(browser, '{"first-name": "Eve"', json_type, 400, "could not be read")
        self.refused(browser, '"just a string"', json_type, 400, "object or an array")

    def test_bodies_not_in_utf8(self) -> None:
        browser = self.given_an_answer()
        self.refused(browser, b"first-name=\xff\xfe", FORM, 400, "UTF-8")
        self.refused(browser, b'{"first-name": "\xe9"}', "application/json", 400, "UTF-8")
        self.refused(browser, "first-name=Eve", FORM + "; charset=windows-1252", 415, "UTF-8")
        self.refused(browser, '{"first-name": "Eve"}', 'application/json; charset="latin1"', 415, "UTF-8")

    def test_a_new_browser_refused_gets_no_session(self) -> None:
        browser = self.participant()
        response = browser.request("POST", "/name", "x=" + "y" * 200_000)
        assert response.code == 413
        assert browser.cookies == {} and self.proto.store.list() == [] and self.changes == []


class TestBigBodiesOnTheRealServer(BadInputCase):
    """Through protonb's own server settings (8 MB transport limit), not the test server's."""

    def setUp(self) -> None:
        super().setUp()
        self.url = self.proto.start(port=0, show=False).rstrip("/")
        self.started.append(self.proto)

    def test_a_body_over_the_transport_limit_still_gets_the_limit_page(self) -> None:
        browser = Browser(self, self.url)
        browser.post("/name", {"first-name": "Ada"})
        self.changes.clear()
        size = runner.MAX_TRANSPORT_BODY + 1024
        assert size < DISCARD_LIMIT_BYTES
        response = browser.request("POST", "/name", b"first-name=Eve&x=" + b"y" * size)
        assert response.code == 413 and "100 KB" in response.text and f"{size + 17:,}" in response.text
        assert self.changes == []
        assert browser.data()["first-name"] == "Ada"

    def test_a_body_too_big_even_to_read_is_answered_with_the_limit_page_at_once(self) -> None:
        port = int(self.url.rsplit(":", 1)[1])

        def send() -> bytes:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(
                    b"POST /name HTTP/1.1\r\nHost: site\r\nContent-Type: " + FORM.encode() + b"\r\n"
                    b"Content-Length: " + str(DISCARD_LIMIT_BYTES + 1).encode() + b"\r\n\r\nfirst-name=Eve&x="
                )
                answer = b""
                try:
                    while chunk := sock.recv(65536):
                        answer += chunk
                except ConnectionResetError:
                    pass  # the rest of the body is never read: the connection is closed
                return answer

        answer = self.io_loop.run_sync(lambda: asyncio.get_running_loop().run_in_executor(None, send))
        assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
        assert b"Limit: body size" in answer and f"{DISCARD_LIMIT_BYTES + 1:,}".encode() in answer
        assert self.changes == [] and self.proto.store.list() == []


# ------------------------------------------------------------------------------ redirects


def assert_same_site(location: str, at: str = "/page") -> None:
    """A browser at ``http://site{at}`` following ``location`` stays on http://site."""
    assert "\\" not in location and not any(ord(c) < 32 for c in location), location
    resolved = urllib.parse.urlsplit(urllib.parse.urljoin("http://site" + at, location))
    assert (resolved.scheme, resolved.netloc) == ("http", "site"), location
    assert not resolved.path.startswith("//"), location


EVIL_TARGETS = [
    "//evil.example",
    "//evil.example/x",
    "///evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "\\/evil.example",
    "https://evil.example/x",
    "HTTPS://evil.example",
    "http:evil.example",
    "http:/evil.example",
    "https:\\\\evil.example",
    " //evil.example",
    "\t//evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "\x00//evil.example",
    "javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "/%2F%2Fevil.example",
    "%2F%2Fevil.example",
    "/%5Cevil.example",
    "//evil.example%2F",
    "//%65vil.example",
    "/.//evil.example",
]


class TestNoRedirectLeavesTheSite(BadInputCase):
    def test_safe_location_keeps_every_target_on_the_site(self) -> None:
        for target in EVIL_TARGETS:
            assert_same_site(safe_location(target))

    def test_a_post_to_a_path_that_looks_like_another_site(self) -> None:
        # Paths with a dot are not redirected after a POST (404, as in the kit): use dotless hosts.
        for target in [
            b"//evil",
            b"//evil/x",
            b"/\\evil",
            b"/%2F%2Fevil",
            b"/%5C%5Cevil",
            b"///evil",
            b"/\\/evil",
            b"//evil?a=1",
            b"//localhost:1",
        ]:
            status, answer = self.raw_post(target)
            assert status == 302, (target, answer[:200])
            location = answer.split(b"\r\nLocation: ", 1)[1].split(b"\r\n", 1)[0].decode()
            assert_same_site(location, target.decode())
        status, _ = self.raw_post(b"//evil.example")
        assert status == 404

    def test_an_html_address_that_looks_like_another_site(self) -> None:
        for target in [b"//evil.example.html", b"/\\evil.example.html", b"//evil.example/x.html"]:
            status, answer = self.raw_get(target)
            if status in (301, 302):
                location = answer.split(b"\r\nLocation: ", 1)[1].split(b"\r\n", 1)[0].decode()
                assert_same_site(location, target.decode())

    def test_a_route_function_redirect_never_leaves_the_site(self) -> None:
        chosen: dict[str, str] = {}

        @self.proto.route("/go", methods=["POST"])
        def go(req: Any) -> Any:
            return req.redirect(chosen["target"])

        for target in EVIL_TARGETS:
            chosen["target"] = target
            answer = self.fetch("/go", method="POST", body="a=1", follow_redirects=False, raise_error=False)
            assert answer.code == 302, (target, answer.code)
            assert_same_site(answer.headers["Location"], "/go")

    def test_a_route_redirect_under_a_proxy_prefix_never_leaves_the_site(self) -> None:
        chosen: dict[str, str] = {}

        @self.proto.route("/go", methods=["POST"])
        def go(req: Any) -> Any:
            return req.redirect(chosen["target"])

        for target in EVIL_TARGETS:
            chosen["target"] = target
            answer = self.fetch(
                "/go",
                method="POST",
                body="a=1",
                follow_redirects=False,
                raise_error=False,
                headers={"X-Forwarded-Prefix": "/user/ada/proxy/8000"},
            )
            assert_same_site(answer.headers["Location"], "/user/ada/proxy/8000/go")


# ------------------------------------------------------------------------------ paths


TRAVERSALS = [
    b"/../secret",
    b"/../../secret",
    b"/../secret.html",
    b"/%2e%2e/secret",
    b"/%2E%2E/secret",
    b"/.%2e/secret",
    b"/..%2fsecret",
    b"/..%2Fsecret",
    b"/%2e%2e%2fsecret",
    b"/%252e%252e/secret",
    b"/%252e%252e%252fsecret",
    b"/..\\secret",
    b"/..%5csecret",
    b"/%5c..%5csecret",
    b"/x/../../secret",
    b"/templates/../../secret",
    b"/..%00/secret",
    b"/secret%00.html",
    b"/%00",
    b"/..%c0%afsecret",
    b"/%c0%ae%c0%ae/secret",
    b"/..;/secret",
    b"/.%2e/.%2e/secret",
    b"/../routes",
    b"/..%2froutes.py",
    b"/../session-data-defaults.json",
    b"/../.protonb/secret.json",
    b"/..%2f.protonb%2fsecret.json",
    b"/%2e%2e%2f%2eprotonb%2fsecret",
    b"/public/../../secret.html",
    b"/public/..%2f..%2fsecret.html",
    b"/public/%2e%2e/%2e%2e/secret.html",
    b"/public/%252e%252e/%252e%252e/secret.html",
    b"/public/..\\..\\secret.html",
    b"/public/%5c..%5c..%5csecret.html",
    b"/public/../routes.py",
    b"/public/..%2froutes.py",
    b"/public/../.protonb/secret.json",
    b"/public//etc/passwd",
    b"/public/%2fetc%2fpasswd",
    b"/public/\x00",
    b"/.protonb/secret",
    b"/.protonb/secret.json",
]


class TestPathsStayInside(BadInputCase):
    def setUp(self) -> None:
        super().setUp()
        for name in ("secret", "secret.html", "secret.txt"):
            (self.tmp / name).write_text(f"<h1>{SECRET}</h1>", encoding="utf-8")
        (self.root / "routes.py").write_text(f"# {SECRET}\nfrom protonb import Router\nrouter = Router()\n")
        (self.root / "session-data-defaults.json").write_text(json.dumps({"x": SECRET}))
        keys = self.proto.folder.cookie_keys()
        self.key = keys.secrets[keys.key_version]

    def test_no_path_reads_a_file_outside_templates_or_public(self) -> None:
        for target in TRAVERSALS:
            for method in ("GET", "HEAD", "POST"):
                request = (
                    method.encode() + b" " + target + b" HTTP/1.1\r\nHost: site\r\nConnection: close\r\n"
                )
                request += b"Content-Length: 0\r\n\r\n" if method == "POST" else b"\r\n"
                status, answer = self.raw(request)
                assert SECRET.encode() not in answer, (method, target, answer[:300])
                assert self.key.encode() not in answer, (method, target)
                assert b"<h1>Start</h1>" not in answer or target.startswith(b"/templates"), (method, target)
                assert status in (0, 302, 400, 403, 404, 405), (method, target, status, answer[:200])

    def test_the_defaults_are_read_but_never_served_as_a_file(self) -> None:
        # The sentinel is in the defaults: pages may show it as data, never the file itself.
        status, answer = self.raw_get(b"/session-data-defaults.json")
        assert status == 404 and b'{"x"' not in answer

    def test_a_route_function_cannot_render_a_file_outside_templates(self) -> None:
        chosen: dict[str, str] = {}

        @self.proto.route("/show")
        def show(req: Any) -> Any:
            return req.render(chosen["name"])

        for name in (
            "../secret",
            "../secret.html",
            "../../secret.html",
            "/etc/passwd",
            "..\\secret.html",
            "%2e%2e/secret.html",
            "../routes.py",
            "../.protonb/secret.json",
        ):
            chosen["name"] = name
            answer = self.fetch("/show", raise_error=False)
            assert SECRET not in answer.body.decode("utf-8", "replace"), name
            assert self.key not in answer.body.decode("utf-8", "replace"), name
            assert answer.code in (404, 500), (name, answer.code)


@pytest.mark.parametrize("target", EVIL_TARGETS)
def test_safe_location_answers_a_path(target: str) -> None:
    location = safe_location(target)
    assert_same_site(location)


_SEGMENT = st.text(alphabet="abcXYZ019_-.~%/\\:@?#\n é", min_size=0, max_size=12)


@settings(max_examples=400, deadline=None)
@given(st.lists(_SEGMENT, min_size=0, max_size=4), st.sampled_from(["/", "//", "", "\\", " /"]))
def test_safe_location_gives_the_same_as_the_full_tidying_for_every_target(
    segments: list[str], lead: str
) -> None:
    """The shortcut for plain paths (``/question``) must agree with the full tidying."""
    target = lead + "/".join(segments)
    assert safe_location(target) == server_module._tidy_location(target)
    plain = "/" + "/".join(s for s in ("".join(c for c in seg if c.isascii() and (c.isalnum() or c in "_-"))
                                      for seg in segments) if s)
    if plain != "/":
        assert safe_location(plain) == server_module._tidy_location(plain) == plain
