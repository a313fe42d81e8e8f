"""Behind a proxy that strips a path prefix, as jupyter-server-proxy does at ``/proxy/<port>/``.

``ProxiedBrowser`` plays both the participant's browser and the proxy: the browser asks for
``/user/ada/proxy/8000/name``; the proxy strips the prefix, adds ``X-Forwarded-Prefix`` and
sends ``/name`` to protonb over real HTTP; on the way back it rewrites a root-relative
Location as server-proxy 4.6 and later do (``rewrite=True``) or passes it on unchanged as
older versions do (``rewrite=False``). The browser resolves the Location against the
address it shows and sends a cookie only under the cookie's Path. Both proxies must lead
the participant to the same pages with the prefix exactly once.
"""

from __future__ import annotations

import urllib.parse
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import pytest
import tornado.testing
from test_server import FORM, ServerCase

from protonb import proxy
from protonb.cli import build_parser
from protonb.prototype import Prototype

PREFIX = "/user/ada/proxy/8000"

TEMPLATES = {
    "index.html": "<h1>Start</h1><a href=\"{{ url('/name') }}\">Start now</a>"
    '<link rel="stylesheet" href="{{ url(\'/public/css/style.css\') }}">',
    "name.html": '<h1>Your name</h1><form method="post" action="{{ url(\'/name\') }}">'
    '<input name="first-name" value="{{ data[\'first-name\'] }}"></form>',
    "section/detail.html": "<h1>Detail</h1>"
    '<form method="post" action="{{ url(\'/section/detail\') }}"></form>',
    "done.html": "<h1>Done</h1>",
    "dump.html": "{{ data | tojson }}",
    "links.html": "<a href=\"{{ url('//evil.example/x') }}\">a</a>"
    "<a href=\"{{ url('\\\\evil.example') }}\">b</a>"
    "<a href=\"{{ url('name') }}\">c</a>",
}

ROUTES = """
from protonb import Router

router = Router()

@router.route("/name", methods=["POST"])
def next_page(req):
    if req.session.data.get("first-name") == "Sent":
        return req.redirect("/done")
    if req.session.data.get("first-name") == "Deep":
        return req.redirect("/section/detail?from=name")
"""


class ProxiedBrowser:
    """A browser at ``http://hub{prefix}/...`` talking to protonb through a prefix-stripping proxy."""

    def __init__(self, case: tornado.testing.AsyncHTTPTestCase, prefix: str, rewrite: bool) -> None:
        self.case = case
        self.prefix = prefix
        self.rewrite = rewrite
        self.cookies: dict[str, tuple[str, str]] = {}  # name -> (value, path)
        self.address = ""
        self.visited: list[str] = []

    def _cookie_header(self, path: str) -> str:
        return "; ".join(
            f"{name}={value}" for name, (value, where) in self.cookies.items() if path.startswith(where)
        )

    def request(self, method: str, address: str, body: str | None = None) -> Any:
        """``address`` is what the browser asks for: a full path on the hub, with the prefix."""
        for _ in range(10):
            self.address = address
            self.visited.append(address)
            path = urllib.parse.urlsplit(address).path
            assert path.startswith(self.prefix + "/") or path == self.prefix, f"left the proxy: {address}"
            backend = address[len(self.prefix) :] or "/"
            headers = {"X-Forwarded-Prefix": self.prefix}
            if cookies := self._cookie_header(path):
                headers["Cookie"] = cookies
            if body is not None:
                headers["Content-Type"] = FORM
            answer = self.case.fetch(
                backend, method=method, body=body, headers=headers, follow_redirects=False, raise_error=False
            )
            for header in answer.headers.get_list("Set-Cookie"):
                for name, morsel in SimpleCookie(header).items():
                    self.cookies[name] = (morsel.value, morsel["path"] or "/")
            if answer.code not in (301, 302, 303):
                return answer
            location = answer.headers["Location"]
            if self.rewrite and location.startswith("/"):
                location = self.prefix + location
            address = urllib.parse.urlsplit(urllib.parse.urljoin("http://hub" + address, location))
            assert address.netloc == "hub", f"the redirect left the site: {location}"
            address = address.path + ("?" + address.query if address.query else "")
            method, body = "GET", None
        raise AssertionError("more than 10 redirects")

    def get(self, address: str) -> Any:
        return self.request("GET", address)

    def post(self, address: str, fields: dict[str, str]) -> Any:
        return self.request("POST", address, urllib.parse.urlencode(fields))


class ProxyCase(ServerCase):
    def setUp(self) -> None:
        super().setUp()
        for name, text in TEMPLATES.items():
            path = self.root / "templates" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        (self.root / "routes.py").write_text(ROUTES, encoding="utf-8")

    def through(self, rewrite: bool, prefix: str = PREFIX) -> ProxiedBrowser:
        return ProxiedBrowser(self, prefix, rewrite)

    def fetch_with(self, path: str, prefix: str | None, **kwargs: Any) -> Any:
        headers = dict(kwargs.pop("headers", {}))
        if prefix is not None:
            headers["X-Forwarded-Prefix"] = prefix
        return self.fetch(path, headers=headers, follow_redirects=False, raise_error=False, **kwargs)


BOTH_PROXIES = pytest.mark.parametrize("rewrite", [True, False], ids=["server-proxy>=4.6", "older proxy"])


class TestThroughTheProxy(ProxyCase):
    def test_links_forms_and_assets_carry_the_prefix_from_the_header(self) -> None:
        page = self.fetch_with("/", PREFIX).body.decode()
        assert f'href="{PREFIX}/name"' in page
        assert f'href="{PREFIX}/public/css/style.css"' in page
        form = self.fetch_with("/name", PREFIX).body.decode()
        assert f'action="{PREFIX}/name"' in form

    def test_the_asset_a_prefixed_link_names_loads_through_the_proxy(self) -> None:
        for rewrite in (True, False):
            answer = self.through(rewrite).get(f"{PREFIX}/public/css/style.css")
            assert answer.code == 200 and b"color" in answer.body

    def test_the_cookie_path_is_the_prefix(self) -> None:
        answer = self.fetch_with(
            "/name", PREFIX, method="POST", body="first-name=Ada", headers={"Content-Type": FORM}
        )
        (header,) = answer.headers.get_list("Set-Cookie")
        morsel = next(iter(SimpleCookie(header).values()))
        assert morsel["path"] == PREFIX + "/"

    def test_a_trailing_slash_in_the_header_is_not_doubled(self) -> None:
        page = self.fetch_with("/", PREFIX + "/").body.decode()
        assert f'href="{PREFIX}/name"' in page

    def test_a_journey_lands_on_each_page_with_the_prefix_once_whichever_proxy(self) -> None:
        for rewrite in (True, False):
            browser = self.through(rewrite)
            start = browser.get(f"{PREFIX}/").body.decode()
            assert f'href="{PREFIX}/name"' in start
            browser.get(f"{PREFIX}/name")
            page = browser.post(f"{PREFIX}/name", {"first-name": "Ada"})
            assert page.code == 200 and "Your name" in page.body.decode()
            assert browser.address == f"{PREFIX}/name", (rewrite, browser.visited)
            assert 'value="Ada"' in page.body.decode(), "the session cookie came back under the prefix"
            assert browser.get(f"{PREFIX}/dump").body.decode().count("Ada") == 1

    def test_a_route_redirect_keeps_the_prefix_once_whichever_proxy(self) -> None:
        for rewrite in (True, False):
            browser = self.through(rewrite)
            browser.post(f"{PREFIX}/name", {"first-name": "Sent"})
            assert browser.address == f"{PREFIX}/done", (rewrite, browser.visited)

    def test_a_redirect_to_a_deeper_page_with_a_query_keeps_the_prefix_once(self) -> None:
        for rewrite in (True, False):
            browser = self.through(rewrite)
            page = browser.post(f"{PREFIX}/name", {"first-name": "Deep"})
            assert browser.address == f"{PREFIX}/section/detail?from=name", (rewrite, browser.visited)
            assert "Detail" in page.body.decode()

    def test_a_post_from_a_deeper_page_comes_back_to_it(self) -> None:
        for rewrite in (True, False):
            browser = self.through(rewrite)
            browser.post(f"{PREFIX}/section/detail?x=1", {"a": "b"})
            assert browser.address == f"{PREFIX}/section/detail?x=1", (rewrite, browser.visited)

    def test_an_html_address_goes_to_the_page_under_the_prefix(self) -> None:
        for rewrite in (True, False):
            browser = self.through(rewrite)
            assert browser.get(f"{PREFIX}/section/detail.html").code == 200
            assert browser.address == f"{PREFIX}/section/detail", (rewrite, browser.visited)

    def test_clear_data_works_under_the_prefix(self) -> None:
        browser = self.through(True)
        browser.post(f"{PREFIX}/name", {"first-name": "Ada"})
        page = browser.get(f"{PREFIX}/manage-prototype/clear-data").body.decode()
        assert f'action="{PREFIX}/manage-prototype/clear-data"' in page
        browser.post(f"{PREFIX}/manage-prototype/clear-data", {})
        assert "Ada" not in browser.get(f"{PREFIX}/dump").body.decode()

    def test_a_404_page_links_to_the_start_under_the_prefix(self) -> None:
        page = self.fetch_with("/nowhere", PREFIX)
        assert page.code == 404 and f'href="{PREFIX}/"' in page.body.decode()

    def test_url_never_makes_a_link_to_another_site(self) -> None:
        for prefix in (None, PREFIX):
            page = self.fetch_with("/links", prefix).body.decode()
            base = prefix or ""
            assert f'href="{base}/evil.example/x"' in page
            assert f'href="{base}/evil.example"' in page
            assert f'href="{base}/name"' in page


class TestWithoutAProxy(ProxyCase):
    def test_redirects_stay_root_relative_as_the_kit_sends_them(self) -> None:
        answer = self.fetch_with(
            "/name", None, method="POST", body="first-name=Ada", headers={"Content-Type": FORM}
        )
        assert answer.headers["Location"] == "/name"
        answer = self.fetch_with(
            "/name", None, method="POST", body="first-name=Sent", headers={"Content-Type": FORM}
        )
        assert answer.headers["Location"] == "/done"

    def test_links_and_the_cookie_are_at_the_root(self) -> None:
        assert 'href="/name"' in self.fetch_with("/", None).body.decode()
        answer = self.fetch_with(
            "/name", None, method="POST", body="first-name=Ada", headers={"Content-Type": FORM}
        )
        morsel = next(iter(SimpleCookie(answer.headers["Set-Cookie"]).values()))
        assert morsel["path"] == "/"


UNSAFE_HEADERS = [
    "https://evil.example/x",
    "//evil.example",
    "/\\evil.example",
    "evil.example",
    "javascript:alert(1)",
    '/x"><script>alert(1)</script>',
    "/x'onmouseover='alert(1)",
    "/a b",
    "/a;HttpOnly",
    "/a,b",
    "/a/../b",
    "/a?b=c",
    "/a#b",
    "/a%zz",
    "/" + "a" * 600,
]


class TestUnsafeHeader(ProxyCase):
    def test_an_unsafe_header_is_ignored_everywhere(self) -> None:
        for value in UNSAFE_HEADERS:
            page = self.fetch_with("/", value).body.decode()
            assert 'href="/name"' in page, value
            assert "evil" not in page and "<script>" not in page and "onmouseover" not in page, value
            answer = self.fetch_with(
                "/name", value, method="POST", body="first-name=Ada", headers={"Content-Type": FORM}
            )
            assert answer.headers["Location"] == "/name", value
            morsel = next(iter(SimpleCookie(answer.headers["Set-Cookie"]).values()))
            assert morsel["path"] == "/", value

    def test_clean_prefix_accepts_paths_only(self) -> None:
        for value in UNSAFE_HEADERS + ["/a\r\nSet-Cookie: x=1", "/a\x00", "/a\tb", "/a<b", "/a>b", '/a"b']:
            assert proxy.clean_prefix(value) is None, value
        assert proxy.clean_prefix(PREFIX) == PREFIX
        assert proxy.clean_prefix(PREFIX + "/") == PREFIX
        assert (
            proxy.clean_prefix("/user/ada%40example.org/proxy/8000") == "/user/ada%40example.org/proxy/8000"
        )
        assert proxy.clean_prefix("/") == ""
        assert proxy.clean_prefix("") == ""


class ExplicitPrefixCase(ServerCase):
    """Served by a Prototype given ``url_prefix=explicit``."""

    explicit: str | None = None

    def get_app(self) -> Any:
        (self.root / "templates" / "index.html").write_text("<a href=\"{{ url('/name') }}\">x</a>")
        self.proto.close()
        self.proto = Prototype(self.root, url_prefix=self.explicit)
        return super().get_app()


class TestExplicitPrefix(ExplicitPrefixCase):
    explicit = "/research"

    def test_an_explicit_prefix_wins_over_the_header(self) -> None:
        page = self.fetch("/", headers={"X-Forwarded-Prefix": PREFIX}).body.decode()
        assert 'href="/research/name"' in page
        answer = self.fetch(
            "/name",
            method="POST",
            body="first-name=Ada",
            follow_redirects=False,
            raise_error=False,
            headers={"X-Forwarded-Prefix": PREFIX, "Content-Type": FORM},
        )
        assert answer.headers["Location"] == "name"
        morsel = next(iter(SimpleCookie(answer.headers["Set-Cookie"]).values()))
        assert morsel["path"] == "/research/"

    def test_a_prefix_that_is_not_a_path_is_refused_saying_what_to_write(self) -> None:
        for bad in ("https://x/y", "//x", "/a b", '/a"b', "/a/../b"):
            with pytest.raises(ValueError, match="plain path"):
                Prototype(self.root, url_prefix=bad)
        other = Prototype(self.root, url_prefix="research/")
        assert other.site.url_prefix == "/research"
        other.close()

    def test_the_command_line_takes_a_url_prefix(self) -> None:
        args = build_parser().parse_args(["serve", str(self.root), "--url-prefix", "/research"])
        assert args.url_prefix == "/research"


class TestEmptyExplicitPrefix(ExplicitPrefixCase):
    explicit = ""

    def test_an_empty_prefix_turns_the_header_off(self) -> None:
        page = self.fetch("/", headers={"X-Forwarded-Prefix": PREFIX}).body.decode()
        assert 'href="/name"' in page


class TestRelativeLocation:
    @pytest.mark.parametrize(
        ("request_path", "target", "expected"),
        [
            ("/name", "/over-18", "over-18"),
            ("/name", "/", "./"),
            ("/", "/name", "name"),
            ("/a/b", "/x/y?z=1", "../x/y?z=1"),
            ("/a/b/", "/", "../../"),
            ("/name", "/javascript:alert(1)", "./javascript:alert(1)"),
            ("/name", "/?a=1", "./?a=1"),
        ],
    )
    def test_each_resolves_back_to_its_target(self, request_path: str, target: str, expected: str) -> None:
        location = proxy.relative_location(request_path, target)
        assert location == expected
        for prefix in ("", PREFIX):
            resolved = urllib.parse.urljoin(f"http://hub{prefix}{request_path}", location)
            assert resolved == f"http://hub{prefix}{target}", (prefix, resolved)


# ---------------------------------------------------------------------- the real proxy

HUB_BASE = "/user/ada/"
HUB_TOKEN = "protonb-proxy-test"
PROXY_PASSWORD = "proxy password 7"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(url: str, process: Any, log: Path, headers: dict[str, str] | None = None) -> None:
    import time
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=2)
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(log.read_text()[-3000:]) from None
            time.sleep(0.2)


@pytest.fixture(scope="module")
def real_proxy(tmp_path_factory: pytest.TempPathFactory):
    """jupyter-server with base_url /user/ada/ and jupyter-server-proxy in front of two
    ``protonb serve`` processes (one with a password); yields the hub address and the ports."""
    import os
    import signal
    import subprocess
    import sys

    pytest.importorskip("jupyter_server_proxy")
    home = tmp_path_factory.mktemp("proxy-home")
    processes: list[tuple[subprocess.Popen[bytes], Any]] = []

    def spawn(command: list[str], name: str, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], Path]:
        log_path = home / f"{name}.log"
        log = open(log_path, "w")  # noqa: SIM115
        proc = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env}, start_new_session=True
        )
        processes.append((proc, log))
        return proc, log_path

    try:
        protos = {}
        for name, password in (("open", None), ("locked", PROXY_PASSWORD)):
            root = tmp_path_factory.mktemp(f"proxied-{name}")
            (root / "templates").mkdir()
            for template, text in TEMPLATES.items():
                (root / "templates" / template).parent.mkdir(parents=True, exist_ok=True)
                (root / "templates" / template).write_text(text, encoding="utf-8")
            (root / "routes.py").write_text(ROUTES, encoding="utf-8")
            (root / "public" / "css").mkdir(parents=True)
            (root / "public" / "css" / "style.css").write_text("body { color: #0b0c0c; }")
            port = _free_port()
            extra = ["--password-env", "PROXY_TEST_PASSWORD"] if password else []
            env = {"PROXY_TEST_PASSWORD": password} if password else {}
            env["PROTONB_PASSWORD"] = ""
            proc, log = spawn(
                [sys.executable, "-m", "protonb", "serve", str(root), "--port", str(port), *extra], name, env
            )
            _wait_for(f"http://127.0.0.1:{port}/", proc, log)
            protos[name] = port
        hub_port = _free_port()
        command = [
            str(Path(sys.executable).with_name("jupyter")),
            "server",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={hub_port}",
            f"--ServerApp.base_url={HUB_BASE}",
            f"--IdentityProvider.token={HUB_TOKEN}",
            f"--ServerApp.root_dir={home}",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            command.append("--allow-root")
        env = {
            "JUPYTER_CONFIG_DIR": str(home / "config"),
            "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
            "IPYTHONDIR": str(home / "ipython"),
        }
        proc, log = spawn(command, "jupyter", env)
        hub = f"http://127.0.0.1:{hub_port}"
        _wait_for(f"{hub}{HUB_BASE}api/status?token={HUB_TOKEN}", proc, log)
        yield hub, protos
    finally:
        for proc, handle in processes:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(15)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
            handle.close()


class _HubClient:
    """Plain HTTP through the hub, with the token, a cookie jar that honours Path, no auto-redirects."""

    def __init__(self, hub: str) -> None:
        import http.cookiejar
        import urllib.request

        class Stay(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: Any) -> None:
                return None

        self.hub = hub
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(Stay, urllib.request.HTTPCookieProcessor(self.jar))

    def send(self, method: str, path: str, fields: dict[str, str] | None = None) -> tuple[int, Any, str]:
        import urllib.error
        import urllib.request

        data = urllib.parse.urlencode(fields).encode() if fields is not None else None
        request = urllib.request.Request(
            self.hub + path, data=data, method=method, headers={"Authorization": f"token {HUB_TOKEN}"}
        )
        try:
            with self.opener.open(request, timeout=10) as answer:
                return answer.status, answer.headers, answer.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.headers, error.read().decode()

    def follow(
        self, method: str, path: str, fields: dict[str, str] | None = None
    ) -> tuple[str, str, list[str]]:
        locations = []
        for _ in range(10):
            status, headers, body = self.send(method, path, fields)
            if status not in (301, 302, 303):
                assert status == 200, (status, path, body[:300])
                return path, body, locations
            locations.append(headers["Location"])
            target = urllib.parse.urlsplit(urllib.parse.urljoin(self.hub + path, headers["Location"]))
            assert f"{target.scheme}://{target.netloc}" == self.hub, headers["Location"]
            path = target.path + ("?" + target.query if target.query else "")
            method, fields = "GET", None
        raise AssertionError("more than 10 redirects")


@pytest.mark.slow
class TestThroughJupyterServerProxy:
    def test_a_journey_through_the_real_proxy_keeps_the_prefix_once(self, real_proxy: Any) -> None:
        hub, ports = real_proxy
        prefix = f"{HUB_BASE}proxy/{ports['open']}"
        client = _HubClient(hub)
        path, start, _ = client.follow("GET", prefix + "/")
        assert f'href="{prefix}/name"' in start and f'href="{prefix}/public/css/style.css"' in start
        assert client.follow("GET", prefix + "/public/css/style.css")[1].startswith("body")
        path, page, locations = client.follow("POST", prefix + "/name", {"first-name": "Ada"})
        assert path == prefix + "/name", locations
        assert 'value="Ada"' in page
        cookie = next(c for c in client.jar if c.name.startswith("protonb-"))
        assert cookie.path == prefix + "/"
        path, _, locations = client.follow("POST", prefix + "/name", {"first-name": "Deep"})
        assert path == prefix + "/section/detail?from=name", locations
        path, _, locations = client.follow("POST", prefix + "/name", {"first-name": "Sent"})
        assert path == prefix + "/done", locations

    def test_the_password_page_through_the_real_proxy(self, real_proxy: Any) -> None:
        hub, ports = real_proxy
        prefix = f"{HUB_BASE}proxy/{ports['locked']}"
        client = _HubClient(hub)
        path, page, _ = client.follow("GET", prefix + "/name?x=1")
        assert path.startswith(prefix + "/manage-prototype/password?")
        assert f'action="{prefix}/manage-prototype/password"' in page
        status, _, page = client.send("POST", prefix + "/manage-prototype/password", {"password": "no"})
        assert status == 401
        path, page, locations = client.follow(
            "POST",
            prefix + "/manage-prototype/password",
            {"password": PROXY_PASSWORD, "returnURL": "/name?x=1"},
        )
        assert path == prefix + "/name?x=1", locations and "Your name" in page
        auth_cookie = next(c for c in client.jar if c.name.endswith("-auth"))
        assert auth_cookie.path == prefix + "/"

    @pytest.mark.browser
    def test_a_participant_in_chromium_through_the_real_proxy(self, real_proxy: Any) -> None:
        from test_browser import CHROMIUM, CHROMIUM_ARGS, _need_chromium

        _need_chromium()
        from playwright.sync_api import sync_playwright

        hub, ports = real_proxy
        prefix = f"{HUB_BASE}proxy/{ports['locked']}"
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            try:
                page = chromium.new_context().new_page()
                page.goto(f"{hub}{HUB_BASE}api/status?token={HUB_TOKEN}")  # logs the browser in to Jupyter
                page.goto(f"{hub}{prefix}/name")
                assert urllib.parse.urlsplit(page.url).path == prefix + "/manage-prototype/password"
                page.fill("#password", "wrong")
                page.click("button[type=submit]")
                assert "The password is not right" in page.content()
                page.fill("#password", PROXY_PASSWORD)
                page.click("button[type=submit]")
                page.wait_for_url(f"{hub}{prefix}/name")
                page.fill("input[name=first-name]", "Deep")
                page.press("input[name=first-name]", "Enter")
                page.wait_for_url(f"{hub}{prefix}/section/detail?from=name")
                page.goto(f"{hub}{prefix}/dump")
                assert '"first-name": "Deep"' in page.content() or '"first-name":"Deep"' in page.content()
            finally:
                chromium.close()
