"""Random input over real HTTP: never a 5xx, stored data always JSON, other sessions untouched.

Hypothesis throws urlencoded and JSON bodies, raw bodies under any content type, query
strings, paths and cookies at a prototype served by ``protonb.server.make_app`` in
Tornado's ``AsyncHTTPTestCase`` (the prototype has nested defaults and route functions).
After every input: the answer is below 500, every stored session's data is strict JSON
(no NaN, no lone surrogates) that round-trips, and a bystander participant's answers are
exactly as they were. After each property the server still serves pages to everyone. The
number of inputs tried is printed in the test summary (see ``conftest.py``).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import urllib.parse
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import pytest
import tornado.testing
import tornado.web
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import protonb.server
from protonb.config import ConfigError
from protonb.prototype import Prototype

DEFAULTS = {
    "service": "Help",
    "claimant": {"first-name": "", "address": {"town": "Leeds"}},
    "contact": ["email"],
}
TEMPLATES = {
    "index.html": "<h1>Start</h1>",
    "name.html": "<p>{{ data['first-name'] }} {{ data.claimant['first-name'] }} {{ data.contact }}</p>",
    "dump.html": "{{ data | tojson }}",
    "section/index.html": "<p>{{ checked('contact', 'email') }}</p>",
}
ROUTES = """
from protonb import Router

router = Router()

@router.route("/eligible", methods=["POST"])
def eligible(req):
    if req.session.data.get("age") == "under-18":
        return req.redirect("/ineligible?from=" + str(req.body.get("next", "")))

@router.route("/summary", methods=["GET"])
def summary(req):
    return req.render("name", extra=req.query)
"""
FUZZ = settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
BYSTANDER = {"first-name": "Bob", "claimant": {"first-name": "Robert"}, "contact": ["post", "phone"]}

# --------------------------------------------------------------------------- strategies

ROOTS = ["a", "first-name", "claimant", "contact", "service", "__proto__", "_csrf", "0", "é", "x y", ""]
SEGMENTS = [
    "",
    "0",
    "1",
    "100",
    "101",
    "1000",
    "-1",
    "first-name",
    "address",
    "town",
    "__proto__",
    "_x",
    "][",
]
VALUES = [
    "",
    "_unchecked",
    "Ada",
    "a+b",
    "%",
    "%ZZ",
    "%FF",
    "%ED%A0%80",
    "=",
    "&",
    "[]",
    "null",
    "\u2028",
    "😀",
]

field_name = st.builds(
    lambda root, segments, tail: root + "".join(segments) + tail,
    st.one_of(st.sampled_from(ROOTS), st.text(max_size=6)),
    st.lists(st.one_of(st.sampled_from(SEGMENTS), st.text(max_size=4)).map(lambda s: f"[{s}]"), max_size=8),
    st.sampled_from(["", "", "[]", "[", "]", ".x"]),
)
field_value = st.one_of(st.sampled_from(VALUES), st.text(max_size=20))


def _encode(pairs: list[tuple[str, str, bool]]) -> str:
    return "&".join(
        (urllib.parse.quote_plus(k) + "=" + urllib.parse.quote_plus(v)) if quoted else f"{k}={v}"
        for k, v, quoted in pairs
    )


urlencoded = st.one_of(
    st.lists(st.tuples(field_name, field_value, st.booleans()), max_size=30).map(_encode),
    st.text(alphabet="ab=&[]%5BDF+._0é", max_size=80),
)

json_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(VALUES),
    st.text(max_size=10),
)
json_value = st.recursive(
    json_scalar,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(
            st.one_of(st.sampled_from(ROOTS + SEGMENTS), st.text(max_size=6)), children, max_size=5
        ),
    ),
    max_leaves=30,
)
JSON_TRICKS = [
    "[NaN]",
    '{"a": Infinity}',
    '{"a": -Infinity}',
    '{"a": 1e400}',
    '{"a": -1e400}',
    '{"a": "\\ud800"}',
    '{"\\udfff": 1}',
    "[" * 70 + "]" * 70,
    '{"a":' * 40 + "1" + "}" * 40,
    "1" * 5000,
    '"text"',
    "null",
    '{"a": 1',
    "",
    "   ",
    '{"__proto__": {"x": 1}}',
    '{"_unchecked": "_unchecked"}',
]
json_body = st.one_of(
    json_value.map(json.dumps),
    json_value.map(lambda v: json.dumps(v, ensure_ascii=False)),
    st.sampled_from(JSON_TRICKS),
    st.text(alphabet='{}[]",:0123456789aeEnNu\\ .-+', max_size=60),
)

PATH_PIECES = [
    "",
    ".",
    "..",
    "%2e%2e",
    "%2E",
    "%2f",
    "%5c",
    "\\",
    "name",
    "name.html",
    "section",
    "dump",
    "public",
    "manage-prototype",
    "clear-data",
    "eligible",
    "summary",
    "%00",
    "%ff",
    "é",
    "%C3%A9",
    "index",
    "templates",
    "..%2f..%2fetc%2fpasswd",
    "%252e",
    ";x",
    "a b",
    "~",
    "*",
]
path = st.lists(st.one_of(st.sampled_from(PATH_PIECES), st.text(max_size=8)), min_size=1, max_size=6).map(
    lambda pieces: "/" + "/".join(urllib.parse.quote(p, safe="%\\;~*.") for p in pieces)
)
query = st.one_of(
    urlencoded,
    st.text(alphabet="ab=&[]%5BDFEfd+._0;#?/", max_size=80),
    st.lists(st.tuples(field_name, field_value, st.just(True)), max_size=10).map(_encode),
)
cookie_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=300
)
CONTENT_TYPES = [
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=utf-8",
    "application/x-www-form-urlencoded; charset=latin-1",
    "application/json",
    "application/json; charset=UTF-8",
    "APPLICATION/JSON",
    "text/plain",
    "multipart/form-data; boundary=x",
    "",
    ";",
    "application/json; charset",
]


def strict_json(value: Any) -> str:
    """The data as strict JSON text (no NaN or Infinity), which must also be valid UTF-8."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    text.encode("utf-8")
    return text


# --------------------------------------------------------------------------- the server


class FuzzCase(tornado.testing.AsyncHTTPTestCase):
    def setUp(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="protonb-fuzz-")
        root = Path(self._tmp.name) / "proto"
        for name, text in TEMPLATES.items():
            (root / "templates" / name).parent.mkdir(parents=True, exist_ok=True)
            (root / "templates" / name).write_text(text, encoding="utf-8")
        (root / "public").mkdir()
        (root / "public" / "style.css").write_text("body {}", encoding="utf-8")
        (root / "session-data-defaults.json").write_text(json.dumps(DEFAULTS), encoding="utf-8")
        (root / "routes.py").write_text(ROUTES, encoding="utf-8")
        self.proto = Prototype(root)
        super().setUp()
        self.bob_cookie = self.participant_with(BYSTANDER)
        [bob] = self.proto.store.list()
        self.bob_id, self.bob_stored = bob.id, bob.data
        self.bob_expected = self.data(self.bob_cookie)
        self.eve_cookie = self.participant_with({"first-name": "Eve"})

    def tearDown(self) -> None:
        super().tearDown()
        self.proto.close()
        self._tmp.cleanup()

    def get_app(self) -> tornado.web.Application:
        return protonb.server.make_app(self.proto.site)

    @pytest.fixture(autouse=True)
    def _count_inputs(self, fuzz_counts: dict[str, int]) -> None:
        self.counts = fuzz_counts

    def participant_with(self, answers: dict[str, Any]) -> str:
        response = self.fetch(
            "/name",
            method="POST",
            body=json.dumps(answers),
            headers={"Content-Type": "application/json"},
            follow_redirects=False,
        )
        assert response.code == 302
        cookie = SimpleCookie(response.headers["Set-Cookie"])
        return "; ".join(f"{name}={morsel.value}" for name, morsel in cookie.items())

    def data(self, cookie: str) -> dict[str, Any]:
        response = self.fetch("/dump", headers={"Cookie": cookie})
        assert response.code == 200
        return json.loads(response.body)

    def send(
        self,
        what: str,
        method: str,
        target: str,
        body: bytes | str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        self.counts[what] = self.counts.get(what, 0) + 1
        response = self.fetch(
            target,
            method=method,
            body=body if method == "POST" else None,
            headers=headers or {},
            follow_redirects=False,
            raise_error=False,
            allow_nonstandard_methods=True,
        )
        assert response.code < 500, (method, target, body, headers, response.code, response.body[:500])
        assert response.code != 599, "the server did not answer"
        self.check_store()
        return response

    def check_store(self) -> None:
        for record in self.proto.store.list():
            assert json.loads(strict_json(record.data)) == record.data
        bob = self.proto.store.get(self.bob_id)
        assert bob is not None and bob.data == self.bob_stored, "the bystander's answers changed"

    def still_serving(self) -> None:
        assert self.fetch("/").code == 200
        assert self.fetch("/public/style.css").code == 200
        assert self.data(self.bob_cookie) == self.bob_expected
        eve = self.data(self.eve_cookie)
        strict_json(eve)

    # ----------------------------------------------------------------------- properties

    def test_urlencoded_bodies(self) -> None:
        @FUZZ
        @given(
            body=urlencoded, target=st.sampled_from(["/name", "/eligible", "/section", "/x", "/dump?_a=1"])
        )
        @example(body="a[__proto__][x]=1&a[]=1&a[b]=2", target="/name")
        @example(body="next=%ED%A0%80&age=under-18", target="/eligible")
        def check(body: str, target: str) -> None:
            headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": self.eve_cookie}
            self.send("urlencoded bodies", "POST", target, body.encode("utf-8"), headers)
            strict_json(self.data(self.eve_cookie))

        check()
        self.still_serving()

    def test_json_bodies(self) -> None:
        @FUZZ
        @given(body=json_body, target=st.sampled_from(["/name", "/eligible", "/section", "/x"]))
        @example(body="[NaN]", target="/name")
        @example(body='{"a": 1e400}', target="/name")
        @example(body='{"a": "\\ud800"}', target="/name")
        def check(body: str, target: str) -> None:
            headers = {"Content-Type": "application/json", "Cookie": self.eve_cookie}
            self.send("JSON bodies", "POST", target, body.encode("utf-8", "surrogatepass"), headers)
            strict_json(self.data(self.eve_cookie))

        check()
        self.still_serving()

    def test_raw_bodies_under_any_content_type(self) -> None:
        @FUZZ
        @given(body=st.binary(max_size=300), content_type=st.sampled_from(CONTENT_TYPES), target=path)
        def check(body: bytes, content_type: str, target: str) -> None:
            headers = {"Content-Type": content_type, "Cookie": self.eve_cookie}
            self.send("raw bodies", "POST", target, body, headers)

        check()
        self.still_serving()

    def test_query_strings(self) -> None:
        @FUZZ
        @given(
            text=query,
            target=st.sampled_from(["/", "/name", "/summary", "/dump", "/nowhere", "/section/"]),
            method=st.sampled_from(["GET", "POST", "HEAD"]),
        )
        @example(text="a[b][c][d][e][f][g]=1&a=2", target="/name", method="GET")
        def check(text: str, target: str, method: str) -> None:
            raw = urllib.parse.quote(text, safe="%[]&=+;/?,:@!$'()*~#").split("#")[0]
            headers = {"Cookie": self.eve_cookie}
            if method == "POST":
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            self.send("query strings", method, f"{target}?{raw}", b"" if method == "POST" else None, headers)

        check()
        self.still_serving()

    def test_paths(self) -> None:
        @FUZZ
        @given(target=path, method=st.sampled_from(["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS"]))
        @example(target="/..%2f..%2fetc%2fpasswd", method="GET")
        @example(target="/public/..%2f..%2froutes.py", method="GET")
        @example(target="/public/%00", method="GET")  # was a 500: os.path raised on the NUL
        def check(target: str, method: str) -> None:
            headers = {"Cookie": self.eve_cookie}
            body = b"first-name=Eve" if method in ("POST", "PUT") else None
            if body is not None:
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            response = self.send("paths", method, target, body, headers)
            assert b"import protonb" not in response.body and b"from protonb" not in response.body
            assert b"root:" not in response.body

        check()
        self.still_serving()

    def test_cookies(self) -> None:
        @FUZZ
        @given(value=cookie_text, extra=cookie_text, method=st.sampled_from(["GET", "POST"]))
        @example(value="\xff\xfe", extra="", method="GET")
        def check(value: str, extra: str, method: str) -> None:
            name = self.bob_cookie.split("=", 1)[0]
            headers = {"Cookie": f"{name}={value}; other={extra}"}
            body = None
            if method == "POST":
                headers["Content-Type"] = "application/x-www-form-urlencoded"
                body = b"first-name=Mallory"
            before = len(self.proto.store.list())
            response = self.send("cookies", method, "/name", body, headers)
            if method == "GET" and response.code == 200:
                assert len(self.proto.store.list()) == before, "a bad cookie alone stored a session"

        check()
        self.still_serving()


# --------------------------------------------------------------------------- strict JSON from every writer

NOT_JSON = {
    "NaN": float("nan"),
    "Infinity": float("inf"),
    "-Infinity": float("-inf"),
    "lone surrogate": "\ud800",
}


class TestOnlyStrictJsonIsStored(tornado.testing.AsyncHTTPTestCase):
    """Route functions, the researcher and the defaults file can never put non-JSON in the store."""

    def setUp(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="protonb-strict-")
        self.root = Path(self._tmp.name) / "proto"
        (self.root / "templates").mkdir(parents=True)
        (self.root / "templates" / "dump.html").write_text("{{ data | tojson }}", encoding="utf-8")
        (self.root / "session-data-defaults.json").write_text(json.dumps(DEFAULTS), encoding="utf-8")
        self.proto = Prototype(self.root)
        self.bad: Any = None

        @self.proto.route("/bad", methods=["POST"])
        def put_bad_value(req: Any) -> None:
            req.session.data["bad"] = self.bad

        @self.proto.route("/bad-key", methods=["POST"])
        def put_bad_key(req: Any) -> None:
            req.session.data["\udc00"] = "x"

        super().setUp()

    def tearDown(self) -> None:
        super().tearDown()
        self.proto.close()
        self._tmp.cleanup()

    def get_app(self) -> tornado.web.Application:
        return protonb.server.make_app(self.proto.site)

    def post(self, path: str, cookie: str = "") -> Any:
        return self.fetch(
            path,
            method="POST",
            body="first-name=Ada",
            headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie},
            follow_redirects=False,
            raise_error=False,
        )

    def stored(self) -> list[dict[str, Any]]:
        data = [record.data for record in self.proto.store.list()]
        for item in data:
            strict_json(item)
        return data

    def test_a_route_function_putting_a_value_json_cannot_hold_stores_nothing_of_it(self) -> None:
        first = self.post("/name")
        cookie = "; ".join(f"{k}={m.value}" for k, m in SimpleCookie(first.headers["Set-Cookie"]).items())
        for what, value in NOT_JSON.items():
            self.bad = value
            page = self.post("/bad", cookie)
            assert page.code == 500 and b"cannot be stored" in page.body, what
            assert self.stored() == [{**DEFAULTS, "first-name": "Ada"}], what
        assert self.post("/bad-key", cookie).code == 500
        assert self.stored() == [{**DEFAULTS, "first-name": "Ada"}]
        assert self.fetch("/dump", headers={"Cookie": cookie}).code == 200

    def test_the_researcher_cannot_set_a_value_json_cannot_hold(self) -> None:
        self.post("/name")
        session = self.proto.sessions[0]
        for what, value in NOT_JSON.items():
            with pytest.raises(ValueError, match="cannot be stored"):
                session.set("bad", value)
            with pytest.raises(ValueError, match="cannot be stored"):
                session.update({"nested": {"bad": value}})
            assert self.stored() == [{**DEFAULTS, "first-name": "Ada"}], what
        with pytest.raises(ValueError, match="cannot be stored"):
            session.update({"\udc00": 1})

    def test_defaults_that_are_not_strict_json_are_refused(self) -> None:
        self.post("/name")
        for text in ('{"a": NaN}', '{"a": Infinity}', '{"a": 1e400}', '{"a": "\\ud800"}'):
            with pytest.raises(ConfigError, match="could not be read"):
                Prototype(self._write_defaults(text))
        # Saved while serving: the last good defaults stay, every page still answers.
        (self.root / "session-data-defaults.json").write_text('{"service": NaN}', encoding="utf-8")
        later = time.time() + 2
        os.utime(self.root / "session-data-defaults.json", (later, later))
        assert json.loads(self.fetch("/dump").body) == DEFAULTS
        assert self.post("/name").code == 302
        self.stored()

    def _write_defaults(self, text: str) -> Path:
        other = Path(self._tmp.name) / f"other-{abs(hash(text))}"
        (other / "templates").mkdir(parents=True)
        (other / "session-data-defaults.json").write_text(text, encoding="utf-8")
        return other
