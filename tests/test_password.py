"""Password protection over real HTTP: the password page, the return path, the cookie, the CLI.

A participant's browser is ``test_server.Browser`` (cookies by name, redirects followed);
``follow=False`` shows each answer as it is sent.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from test_server import DEFAULTS, FORM, Browser, ServerCase, write_prototype

from protonb import auth, runner
from protonb.prototype import Prototype
from protonb.session import cookie_name

PASSWORD = "correct horse battery staple"
PASSWORD_PAGE = "/manage-prototype/password"
REPO = Path(__file__).resolve().parent.parent


class PasswordCase(ServerCase):
    password: str | None = PASSWORD
    prefix: str | None = None

    def get_app(self) -> Any:
        self.proto.close()
        self.proto = Prototype(self.root, password=self.password, url_prefix=self.prefix)
        self.changes: list[Any] = []
        self.proto.store.subscribe(self.changes.append)
        return super().get_app()

    @property
    def auth_cookie(self) -> str:
        return cookie_name(self.proto.folder.cookie_keys().prototype_id) + "-auth"

    def log_in(self, browser: Browser, password: str = PASSWORD, return_to: str = "/") -> Any:
        return browser.post(PASSWORD_PAGE, {"password": password, "returnURL": return_to})

    def assert_nothing_stored(self) -> None:
        assert self.proto.sessions.store.list() == []
        assert self.changes == []


class TestAskingForThePassword(PasswordCase):
    def test_a_page_sends_the_browser_to_the_password_page_keeping_the_return_path(self) -> None:
        browser = self.participant()
        answer = browser.get("/name?from=email", follow=False)
        assert answer.code == 302
        location = urllib.parse.urlsplit(answer.headers["Location"])
        assert location.path == PASSWORD_PAGE
        assert urllib.parse.parse_qs(location.query) == {"returnURL": ["/name?from=email"]}
        page = browser.get("/name?from=email")
        assert page.code == 200
        assert 'type="password"' in page.text and '<label for="password">' in page.text
        assert 'name="returnURL" value="/name?from=email"' in page.text
        assert f'action="{PASSWORD_PAGE}"' in page.text
        assert browser.cookies == {}, "no session (and no cookie) before the password"
        self.assert_nothing_stored()

    def test_the_right_password_leads_back_to_the_page_asked_for(self) -> None:
        browser = self.participant()
        answer = self.log_in(browser, return_to="/name?from=email")
        assert answer.code == 200 and "Your name" in answer.text
        assert answer.url.endswith("/name?from=email")
        assert browser.get("/name").code == 200

    def test_the_password_cookie_is_its_own_httponly_lax_and_signed(self) -> None:
        browser = self.participant()
        browser.post(PASSWORD_PAGE, {"password": PASSWORD}, follow=False)
        (header,) = browser.set_cookie_headers
        morsel = SimpleCookie(header)[self.auth_cookie]
        assert morsel["httponly"] and morsel["samesite"] == "Lax" and morsel["path"] == "/"
        assert PASSWORD not in header and PASSWORD.split()[0] not in header
        browser.post("/name", {"first-name": "Ada"})
        assert set(browser.cookies) == {self.auth_cookie, self.cookie_name}

    def test_a_wrong_password_shows_the_page_again_with_a_message_and_401(self) -> None:
        browser = self.participant()
        page = self.log_in(browser, "wrong", "/name")
        assert page.code == 401
        assert "The password is not right" in page.text
        assert 'name="returnURL" value="/name"' in page.text
        assert browser.cookies == {}
        self.assert_nothing_stored()
        assert browser.get("/name", follow=False).code == 302

    def test_an_empty_or_missing_password_is_wrong(self) -> None:
        browser = self.participant()
        assert self.log_in(browser, "").code == 401
        assert browser.post(PASSWORD_PAGE, "returnURL=/").code == 401
        assert browser.post(PASSWORD_PAGE, "password[x]=1").code == 401
        self.assert_nothing_stored()

    def test_a_form_posted_without_the_password_stores_nothing(self) -> None:
        browser = self.participant()
        answer = browser.post("/name", {"first-name": "Ada"}, follow=False)
        assert answer.code == 302 and PASSWORD_PAGE in answer.headers["Location"]
        self.assert_nothing_stored()
        self.log_in(browser)
        assert browser.data() == DEFAULTS

    def test_the_password_is_never_stored_in_session_data(self) -> None:
        browser = self.participant()
        self.log_in(browser)
        browser.post("/name", {"first-name": "Ada"})
        self.log_in(browser)  # again, with a session this time
        data = browser.data()
        assert data == {**DEFAULTS, "first-name": "Ada"}
        for record in self.proto.store.list():
            assert PASSWORD not in repr(record.data) and "password" not in record.data
        database = self.proto.folder.store_path
        for path in database.parent.iterdir():
            if path.is_file():
                assert PASSWORD.encode() not in path.read_bytes(), path

    def test_public_files_load_without_the_password(self) -> None:
        answer = self.participant().get("/public/css/style.css")
        assert answer.code == 200 and "color" in answer.text

    def test_a_tampered_or_forged_password_cookie_is_asked_again(self) -> None:
        browser = self.participant()
        self.log_in(browser)
        good = browser.cookies[self.auth_cookie]
        for forged in (good[:-2] + "xx", "1", auth.Password("other").token("key"), ""):
            browser.cookies = {self.auth_cookie: forged}
            assert browser.get("/name", follow=False).code == 302, forged

    def test_the_password_never_shows_in_logs_or_reprs(self) -> None:
        records: list[logging.LogRecord] = []
        handler = logging.Handler(logging.DEBUG)
        handler.emit = records.append  # type: ignore[method-assign]
        logger = logging.getLogger()
        logger.addHandler(handler)
        old_level = logger.level
        logger.setLevel(logging.DEBUG)
        try:
            browser = self.participant()
            self.log_in(browser, PASSWORD + "x")
            self.log_in(browser)
            browser.post("/name", {"first-name": "Ada"})
        finally:
            logger.removeHandler(handler)
            logger.setLevel(old_level)
        assert any("wrong password" in r.getMessage() for r in records)
        for record in records:
            assert PASSWORD not in record.getMessage()
        for text in (
            repr(self.proto),
            repr(self.proto.site),
            repr(self.proto.site.password),
            str(vars(self.proto)),
        ):
            assert PASSWORD not in text


class TestPasswordNotInTheDashboard(PasswordCase):
    def test_no_widget_of_the_dashboard_holds_the_password(self) -> None:
        pytest.importorskip("anywidget")
        browser = self.participant()
        self.log_in(browser)
        browser.post("/name", {"first-name": "Ada"})
        dash = self.proto.dashboard()
        try:
            dash.flush()
            dash.detail.show(self.proto.sessions[0].id)
            seen = []
            stack = [dash]
            while stack:
                widget = stack.pop()
                stack.extend(getattr(widget, "children", ()))
                seen.append(json.dumps(widget.get_state(), default=str))
            text = "\n".join(seen)
            assert "Ada" in text, "the walk reached the answers"
            assert PASSWORD not in text
        finally:
            dash.close()


RETURN_URLS = [
    "//evil.example/x",
    "https://evil.example/x",
    "/\\evil.example",
    "\\\\evil.example",
    "/%2F%2Fevil.example",
    " //evil.example",
    "\t//evil.example",
    "javascript:alert(1)",
    "http:evil.example",
    PASSWORD_PAGE,
    PASSWORD_PAGE + "?returnURL=//evil.example",
]


class TestTheReturnPath(PasswordCase):
    def test_the_return_path_never_leaves_the_site(self) -> None:
        for return_to in RETURN_URLS:
            browser = self.participant()
            answer = self.log_in_without_following(browser, return_to)
            assert answer.code == 303, return_to
            location = answer.headers["Location"]
            resolved = urllib.parse.urlsplit(
                urllib.parse.urljoin("http://site/manage-prototype/password", location)
            )
            assert resolved.netloc == "site", (return_to, location)
            assert not resolved.path.startswith("//") and "\\" not in location, (return_to, location)
            assert not resolved.path.startswith(PASSWORD_PAGE), (return_to, location)

    def test_the_return_path_in_the_page_is_never_another_site(self) -> None:
        for return_to in RETURN_URLS:
            query = urllib.parse.urlencode({"returnURL": return_to})
            page = self.participant().get(f"{PASSWORD_PAGE}?{query}").text
            value = page.split('name="returnURL" value="', 1)[1].split('"', 1)[0]
            assert value.startswith("/") and not value.startswith("//"), (return_to, value)
            assert "\\" not in value and "://" not in value, (return_to, value)

    def log_in_without_following(self, browser: Browser, return_to: str) -> Any:
        body = urllib.parse.urlencode({"password": PASSWORD, "returnURL": return_to})
        return browser.request("POST", PASSWORD_PAGE, body, FORM, follow=False)


class TestPasswordBehindAProxy(PasswordCase):
    def test_the_password_page_and_the_way_back_keep_the_prefix_once(self) -> None:
        from test_proxy import PREFIX, ProxiedBrowser

        for rewrite in (True, False):
            browser = ProxiedBrowser(self, PREFIX, rewrite)
            page = browser.get(f"{PREFIX}/name?x=1")
            assert browser.address.startswith(f"{PREFIX}{PASSWORD_PAGE}?"), browser.visited
            assert f'action="{PREFIX}{PASSWORD_PAGE}"' in page.body.decode()
            page = browser.post(f"{PREFIX}{PASSWORD_PAGE}", {"password": PASSWORD, "returnURL": "/name?x=1"})
            assert browser.address == f"{PREFIX}/name?x=1", (rewrite, browser.visited)
            assert "Your name" in page.body.decode()
            assert browser.cookies[self.auth_cookie][1] == PREFIX + "/"


class TestWithoutAPassword(PasswordCase):
    password = None

    def test_pages_open_at_once_and_the_password_page_is_not_there(self) -> None:
        with mock.patch.dict(os.environ, {auth.PASSWORD_ENV: ""}):
            assert self.participant().get("/name", follow=False).code == 200
            assert self.participant().get(PASSWORD_PAGE).code == 404


class TestPasswordSources:
    def test_the_environment_variable_is_the_default(self, tmp_path: Path) -> None:
        root = write_prototype(tmp_path / "proto")
        with mock.patch.dict(os.environ, {auth.PASSWORD_ENV: "from env"}):
            proto = Prototype(root)
            assert proto.site.password is not None and proto.site.password.matches("from env")
            proto.close()
            proto = Prototype(root, password="given")
            assert proto.site.password.matches("given") and not proto.site.password.matches("from env")
            proto.close()
        with mock.patch.dict(os.environ, {auth.PASSWORD_ENV: ""}):
            proto = Prototype(root)
            assert proto.site.password is None
            proto.close()

    def test_an_empty_password_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="non-empty"):
            Prototype(write_prototype(tmp_path / "proto"), password="")

    def test_matches_only_the_exact_password(self) -> None:
        password = auth.Password("pässword")
        assert password.matches("pässword")
        for other in ("passwörd", "pässword ", "PÄSSWORD", "", "pässwor"):
            assert not password.matches(other)


class TestExposureWarning:
    @pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2", "[::1]"])
    def test_no_warning_on_loopback(self, host: str) -> None:
        assert auth.exposure_warning(host, protected=False) is None

    @pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "192.168.1.20", "example.org"])
    def test_a_warning_saying_to_set_a_password_elsewhere_and_none_with_one(self, host: str) -> None:
        message = auth.exposure_warning(host, protected=False)
        assert message and "Set a password" in message and "--password-env" in message
        assert auth.exposure_warning(host, protected=True) is None

    def test_start_warns_when_open_to_others_without_a_password(self, tmp_path: Path) -> None:
        """Prototype.start checks the host it binds (the socket is faked: tests bind 127.0.0.1 only)."""

        class NoSocket:
            def __init__(self, app: Any, host: str, port: int) -> None:
                self.host, self.port, self.running = host, 1, True

            def stop(self) -> None:
                self.running = False

        root = write_prototype(tmp_path / "proto")
        for password, expect in ((None, True), ("secret", False)):
            with (
                mock.patch.dict(os.environ, {auth.PASSWORD_ENV: ""}),
                mock.patch.object(runner, "RunningServer", NoSocket),
                mock.patch("protonb.prototype.log") as log,
            ):
                proto = Prototype(root, password=password)
                proto.start(host="0.0.0.0", show=False)
                proto.close()
            warned = [c for c in log.warning.call_args_list if "Set a password" in str(c)]
            assert bool(warned) is expect, password


# ------------------------------------------------------------------------------ the command line


def _serve(root: Path, *extra: str, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "protonb", "serve", str(root), "--port", "0", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
        cwd=REPO,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert " at http://" in line, line + (proc.stderr.read() if proc.poll() is not None else "")
    return proc, line.split(" at ", 1)[1].split()[0].rstrip("/")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any) -> None:
        return None


def _status(url: str, data: bytes | None = None) -> tuple[int, Any]:
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(url, data=data, timeout=10) as answer:
            return answer.status, answer.headers
    except urllib.error.HTTPError as error:
        return error.code, error.headers


class TestCommandLine:
    def test_password_env_names_the_variable_and_the_password_stays_out_of_the_arguments(
        self, tmp_path: Path
    ) -> None:
        root = write_prototype(tmp_path / "proto")
        proc, url = _serve(root, "--password-env", "STUDY_PASSWORD", env={"STUDY_PASSWORD": PASSWORD})
        try:
            cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
            assert PASSWORD.encode() not in cmdline
            status, headers = _status(url + "/name")
            assert status == 302 and PASSWORD_PAGE in headers["Location"]
            body = urllib.parse.urlencode({"password": PASSWORD, "returnURL": "/name"}).encode()
            status, headers = _status(url + PASSWORD_PAGE, body)
            assert status == 303 and headers["Location"] == "/name"
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=10)
        assert PASSWORD not in err

    def test_protonb_password_is_read_without_an_option(self, tmp_path: Path) -> None:
        root = write_prototype(tmp_path / "proto")
        proc, url = _serve(root, env={auth.PASSWORD_ENV: PASSWORD})
        try:
            status, headers = _status(url + "/name")
            assert status == 302 and PASSWORD_PAGE in headers["Location"]
        finally:
            proc.terminate()
            proc.communicate(timeout=10)

    def test_a_missing_variable_stops_with_a_message(self, tmp_path: Path) -> None:
        root = write_prototype(tmp_path / "proto")
        env = {k: v for k, v in os.environ.items() if k != "NOT_SET_ANYWHERE"}
        started = time.monotonic()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "protonb",
                "serve",
                str(root),
                "--port",
                "0",
                "--password-env",
                "NOT_SET_ANYWHERE",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
            cwd=REPO,
        )
        assert done.returncode == 2, (done.stdout, done.stderr, time.monotonic() - started)
        assert "NOT_SET_ANYWHERE" in done.stderr and "not set" in done.stderr


def test_on_another_address_the_warning_says_to_set_a_password_and_is_gone_with_one(tmp_path: Path) -> None:
    from test_cli import _isolated_network, serving

    prefix = _isolated_network()
    if prefix is None:
        pytest.skip("needs `unshare -rn` to listen on a non-loopback address without exposing it")
    root = write_prototype(tmp_path / "proto")
    with serving(str(root), "--port", "0", "--host", "10.99.0.1", prefix=prefix) as server:
        _, _, stderr = server.stop()
    assert "Set a password" in stderr and "--password-env" in stderr and "10.99.0.1" in stderr
    with mock.patch.dict(os.environ, {"STUDY_PASSWORD": PASSWORD}):
        with serving(
            str(root), "--port", "0", "--host", "10.99.0.1", "--password-env", "STUDY_PASSWORD", prefix=prefix
        ) as server:
            _, _, stderr = server.stop()  # (its own network: this process cannot reach it)
    assert "anyone who can reach" not in stderr and "Set a password" not in stderr
    assert PASSWORD not in stderr
