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
    "section/detail.html": '<h1>Detail</h1>'
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
