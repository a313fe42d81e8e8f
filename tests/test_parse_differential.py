"""protonb's fast form parser against qs-codec, the reference, on random urlencoded strings.

``forms.fast_decode`` parses the common shapes of form data itself and gives up (None) on
anything else, which then goes to qs-codec. Wherever it answers, its answer must be exactly
qs-codec's under the same options: same keys, same order, same values.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from protonb import forms

NAMES = ["a", "b", "claimant", "first-name", "x y", "0", "1", "07", "__proto__", "a.b", "é", "_x"]
ESCAPED = ["%5B", "%5D", "%5b", "%5d", "%2E", "%20", "%C3%A9", "%ZZ", "%", "%F", "%FF", "+", "%2B", "%26"]
SEGMENTS = [
    "", "a", "b", "c", "first-name", "0", "1", "2", "10", "99", "100", "101", "999", "1000",
    "4294967296", "01", "-1", "+1", " 1", "1_0", "١", "__proto__", " ", "+", "%20", "[x]", ".", "a.b",
]
JUNK = ["", "", "", "]", "[", "x", "[a", "]]", ".c", "[]x"]
VALUES = [
    "", "x", "_unchecked", "a+b", "%20", "%ZZ", "%E2%82%AC", "%FF", "=", "a=b", ",", "1,2", "[]", "%5B%5D",
]

name = st.one_of(st.sampled_from(NAMES), st.sampled_from(ESCAPED), st.text("ab+%5BD.", max_size=4))
segment = st.one_of(
    st.sampled_from(SEGMENTS).map(lambda s: f"[{s}]"),
    st.sampled_from(SEGMENTS).map(lambda s: f"%5B{s}%5D"),
    st.integers(0, 2000).map(lambda i: f"[{i}]"),
)
key = st.builds(
    lambda root, segs, tail: root + "".join(segs) + tail,
    name,
    st.one_of(st.lists(segment, max_size=4), st.lists(segment, min_size=4, max_size=36)),
    st.sampled_from(JUNK),
)
value = st.one_of(st.sampled_from(VALUES), st.text("ab %+=5BDF,.", max_size=6))
pair = st.one_of(
    st.builds(lambda k, v: f"{k}={v}", key, value),
    key,
    st.sampled_from(["", "=", "=x", "&", "a]=b=c", "a[b]=1=2"]),
)
# Small pools of keys, so that names repeat and collide (a, a[b], a[], a[0] ...) often.
form = st.lists(key, min_size=1, max_size=6).flatmap(
    lambda keys: st.lists(
        st.one_of(
            st.builds(lambda k, v: f"{k}={v}", st.sampled_from(keys), value),
            st.sampled_from(keys),
            pair,
        ),
        max_size=25,
    )
).map("&".join)
garbage = st.text("ab01[]=&%5BDd+._", max_size=60)

OPTIONS = {
    "body": lambda text: forms.body_options(forms.count_parameters(text)),
    "query": lambda text: forms.query_options(),
}
DEPTH = {"body": forms.BODY_DEPTH_LIMIT, "query": forms.QUERY_DEPTH}


def reference(text: str, kind: str) -> dict | str:
    try:
        return forms.qs_decode(text, OPTIONS[kind](text))
    except IndexError:
        return "depth"


def check_same(text: str, kind: str) -> None:
    expected = reference(text, kind)
    fast = forms.fast_decode(text, DEPTH[kind])
    if fast is not None:
        assert fast == expected
        assert json.dumps(fast) == json.dumps(expected), "same data, different key order"
    parse = forms.parse_body if kind == "body" else forms.parse_query
    try:
        got: dict | str = parse(text)
    except forms.FormError as problem:
        got = problem.limit
    assert got == expected


@pytest.mark.parametrize("kind", ["body", "query"])
@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.one_of(form, garbage))
@example(text="a=1&a=2&a[]=3")
@example(text="a[b]=1&a=2")
@example(text="a=2&a[b]=1")
@example(text="a[]=1&a[b]=2")
@example(text="a[b][]=1&a[b][]=2&a[c]=3")
@example(text="a[0]=x&a[1]=y")
@example(text="a[1]=x&a[0]=y")
@example(text="a[100]=x")
@example(text="a[b]c=1")
@example(text="[a]=1")
@example(text="a[__proto__][b]=1")
@example(text="a" + "[b]" * 33 + "=1")
@example(text="a" + "[b]" * 32 + "=1")
@example(text="a" + "[b]" * 6 + "=1")
@example(text="a%5Bb%5D=1&a%5bc%5d=2")
@example(text="a+b[c+d]=e+f&%ZZ[x]=%ZZ")
@example(text="a]=b=c&x")
def test_fast_parser_agrees_with_qs_codec(kind: str, text: str) -> None:
    if forms.count_parameters(text) > forms.PARAMETER_LIMIT:
        return
    check_same(text, kind)


@pytest.mark.parametrize(
    "text",
    [
        "claimant%5Bfirst-name%5D=Ada&claimant%5Bdob%5D%5Bday%5D=14&contact%5B%5D=_unchecked"
        "&contact%5B%5D=email&employment-status=self-employed&more-detail=a+%26+b",
        "name=Ada&age=36&contact=_unchecked&contact=email&contact=phone",
        "household[adults]=2&household[children]=1&where-do-you-live=england",
        "",
    ],
)
def test_common_forms_take_the_fast_path(text: str) -> None:
    fast = forms.fast_decode(text, forms.BODY_DEPTH_LIMIT)
    assert fast is not None
    assert fast == reference(text, "body")


def test_many_fields_still_agree() -> None:
    text = "&".join(f"q{i}[answer]=v{i}&list[]={i}" for i in range(400))
    check_same(text, "body")
    assert len(forms.parse_body(text)["list"]) == 400
