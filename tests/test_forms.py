"""How a form's fields become session data: protonb.forms, as a prototype author meets it.

Each test is one thing a form (or an address) sends and what the pages then see in
``data``, by the GOV.UK Prototype Kit's rules. The kit's exact behaviour on hundreds of
inputs is checked by the conformance suite (tests/test_conformance.py); these are the
rules one by one, and the limits.
"""

from __future__ import annotations

import copy
import json
import urllib.parse

import pytest

from protonb.forms import (
    BODY_DEPTH_LIMIT,
    PARAMETER_LIMIT,
    FormError,
    parse_body,
    parse_json,
    parse_query,
    redirect_query,
    store_data,
)


def submit(body: str, data: dict | None = None) -> dict:
    """The session data after a form posts ``body`` onto ``data``."""
    data = copy.deepcopy(data) if data is not None else {}
    store_data(parse_body(body), data)
    return data


# --------------------------------------------------------------------------- nesting


class TestNestedNames:
    def test_bracketed_names_become_nested_answers(self) -> None:
        body = urllib.parse.urlencode(
            {
                "claimant[first-name]": "Ada",
                "claimant[last-name]": "Lovelace",
                "partner[first-name]": "Charles",
            }
        )
        assert submit(body) == {
            "claimant": {"first-name": "Ada", "last-name": "Lovelace"},
            "partner": {"first-name": "Charles"},
        }

    def test_names_nest_several_levels(self) -> None:
        body = urllib.parse.urlencode(
            {"household[partner][dob][day]": "10", "household[partner][dob][year]": "1985"}
        )
        assert submit(body) == {"household": {"partner": {"dob": {"day": "10", "year": "1985"}}}}

    def test_plus_is_a_space_and_escapes_are_utf8(self) -> None:
        assert parse_body("name=Ada+Lovelace&town=S%C3%A3o+Paulo&tick=%E2%9C%93") == {
            "name": "Ada Lovelace",
            "town": "São Paulo",
            "tick": "✓",
        }

    def test_a_stray_percent_sign_stays_as_typed(self) -> None:
        assert parse_body("discount=50%&code=%zz") == {"discount": "50%", "code": "%zz"}

    def test_an_empty_answer_is_kept_as_an_empty_string(self) -> None:
        assert submit("first-name=&last-name=Lovelace") == {"first-name": "", "last-name": "Lovelace"}

    def test_a_body_nests_up_to_32_levels(self) -> None:
        name = "n" + "".join(f"[l{level}]" for level in range(1, BODY_DEPTH_LIMIT + 1))
        data = submit(f"{name}=leaf")
        for level in range(1, BODY_DEPTH_LIMIT + 1):
            data = data.get("n" if level == 1 else f"l{level - 1}")
        assert data == {"l32": "leaf"}

    def test_a_query_string_nests_5_levels_and_keeps_the_rest_as_one_key(self) -> None:
        assert parse_query("a[b][c][d][e][f][g]=1") == {"a": {"b": {"c": {"d": {"e": {"f": {"[g]": "1"}}}}}}}

    def test_a_name_called_proto_is_never_stored(self) -> None:
        assert submit("__proto__[admin]=yes&a[__proto__][x]=1&b=2") == {"a": {}, "b": "2"}


# --------------------------------------------------------------------------- lists


class TestLists:
    def test_checkbox_group_with_brackets_is_a_list(self) -> None:
        assert submit("contact[]=email&contact[]=post") == {"contact": ["email", "post"]}

    def test_the_same_name_twice_is_a_list(self) -> None:
        assert submit("contact=email&contact=post") == {"contact": ["email", "post"]}

    def test_one_ticked_box_without_brackets_is_a_plain_value(self) -> None:
        assert submit("contact=email") == {"contact": "email"}

    def test_indices_put_answers_in_order(self) -> None:
        assert submit("children[1]=Bea&children[0]=Ada") == {"children": ["Ada", "Bea"]}

    def test_gaps_in_indices_close_up(self) -> None:
        assert submit("children[7]=Bea&children[2]=Ada") == {"children": ["Ada", "Bea"]}

    def test_indexed_groups_of_fields_are_a_list_of_answers(self) -> None:
        body = urllib.parse.urlencode(
            {"people[0][name]": "Ada", "people[0][age]": "36", "people[1][name]": "Bea"}
        )
        assert submit(body) == {"people": [{"name": "Ada", "age": "36"}, {"name": "Bea"}]}

    def test_an_index_of_100_or_more_is_a_key_not_a_list_position(self) -> None:
        assert submit("a[99]=x") == {"a": ["x"]}
        assert submit("a[100]=x") == {"a": {"100": "x"}}

    def test_a_form_with_more_fields_than_100_allows_higher_indices(self) -> None:
        filler = "&".join(f"fill{i}=1" for i in range(100))
        assert submit(f"a[100]=x&{filler}")["a"] == ["x"]


# --------------------------------------------------------------------------- skipped names


class TestUnderscoreNames:
    def test_a_top_level_name_starting_with_underscore_is_not_stored(self) -> None:
        assert submit("_csrf=abc&_action=save&name=Ada") == {"name": "Ada"}

    def test_nested_names_starting_with_underscore_are_skipped_at_every_level(self) -> None:
        body = urllib.parse.urlencode(
            {"claimant[_token]": "x", "claimant[name]": "Ada", "claimant[address][_hint]": "y"}
        )
        assert submit(body) == {"claimant": {"name": "Ada", "address": {}}}

    def test_an_underscore_key_in_json_is_skipped_too(self) -> None:
        data: dict = {}
        store_data(parse_json('{"claimant": {"_secret": 1, "name": "Ada"}, "_meta": 2}'), data)
        assert data == {"claimant": {"name": "Ada"}}

    def test_an_underscore_name_never_removes_what_is_stored(self) -> None:
        assert submit("_name=_unchecked", {"_name": "kept"}) == {"_name": "kept"}


# --------------------------------------------------------------------------- unticking


class TestUnchecked:
    def test_unticking_every_box_removes_the_answer(self) -> None:
        before = {"contact": ["email", "post"], "name": "Ada"}
        assert submit("contact=_unchecked", before) == {"name": "Ada"}

    def test_the_hidden_field_is_dropped_from_ticked_boxes(self) -> None:
        before = {"contact": ["email", "post"]}
        assert submit("contact=_unchecked&contact=phone", before) == {"contact": ["phone"]}
        assert submit("contact[]=_unchecked&contact[]=email&contact[]=post") == {"contact": ["email", "post"]}

    def test_unticking_a_nested_group_removes_only_that_answer(self) -> None:
        before = {"claimant": {"name": "Ada", "benefits": ["pension"]}}
        assert submit("claimant[benefits]=_unchecked", before) == {"claimant": {"name": "Ada"}}

    def test_unticking_an_answer_never_given_changes_nothing(self) -> None:
        assert submit("contact=_unchecked", {"name": "Ada"}) == {"name": "Ada"}

    def test_a_list_of_only_the_hidden_field_stores_an_empty_list(self) -> None:
        assert submit("contact[]=_unchecked", {"contact": ["email"]}) == {"contact": []}


# --------------------------------------------------------------------------- merging


class TestMerging:
    def test_nested_answers_merge_into_what_is_stored(self) -> None:
        before = {"claimant": {"first-name": "Ada", "last-name": "Lovelace"}, "over-18": "yes"}
        assert submit("claimant[first-name]=Augusta", before) == {
            "claimant": {"first-name": "Augusta", "last-name": "Lovelace"},
            "over-18": "yes",
        }

    def test_merging_goes_all_the_way_down(self) -> None:
        before = {"a": {"b": {"c": "1", "d": "2"}, "e": "3"}}
        assert submit("a[b][c]=new", before) == {"a": {"b": {"c": "new", "d": "2"}, "e": "3"}}

    def test_a_list_replaces_the_list_stored(self) -> None:
        assert submit("contact=phone&contact=text", {"contact": ["email", "post"]}) == {
            "contact": ["phone", "text"]
        }

    def test_a_plain_value_replaces_a_stored_list_or_object(self) -> None:
        assert submit("contact=email", {"contact": ["email", "post"]}) == {"contact": "email"}
        assert submit("claimant=nobody", {"claimant": {"name": "Ada"}}) == {"claimant": "nobody"}

    def test_nested_answers_replace_a_stored_plain_value(self) -> None:
        assert submit("claimant[name]=Ada", {"claimant": "unknown"}) == {"claimant": {"name": "Ada"}}

    def test_a_query_string_merges_by_the_same_rules(self) -> None:
        data = {"claimant": {"name": "Ada"}}
        store_data(parse_query("claimant[age]=36&_from=start"), data)
        assert data == {"claimant": {"name": "Ada", "age": "36"}}

    def test_stored_answers_share_nothing_with_the_form(self) -> None:
        incoming = parse_body("people[0][name]=Ada&contact=email&contact=post")
        data: dict = {}
        store_data(incoming, data)
        incoming["people"][0]["name"] = "changed"
        incoming["contact"].append("changed")
        assert data == {"people": [{"name": "Ada"}], "contact": ["email", "post"]}


# --------------------------------------------------------------------------- JSON bodies


class TestJson:
    def test_a_json_object_is_stored_like_a_form(self) -> None:
        data = {"claimant": {"name": "Ada"}}
        store_data(parse_json('{"claimant": {"age": 36}, "contact": ["email", "_unchecked"]}'), data)
        assert data == {"claimant": {"name": "Ada", "age": 36}, "contact": ["email"]}

    def test_a_json_array_is_stored_under_its_indices(self) -> None:
        assert parse_json('["a", "b"]') == {"0": "a", "1": "b"}

    def test_an_empty_body_is_no_answers(self) -> None:
        assert parse_json("  ") == {}
        assert parse_body("") == {}
        assert parse_query("") == {}

    @pytest.mark.parametrize("text", ['"just text"', "3", "true", "null"])
    def test_json_that_is_not_an_object_or_array_is_refused(self, text: str) -> None:
        with pytest.raises(FormError) as caught:
            parse_json(text)
        assert caught.value.status == 400
        assert "object or an array" in caught.value.message

    def test_broken_json_is_refused_saying_where(self) -> None:
        with pytest.raises(FormError) as caught:
            parse_json('{"name": "Ada",}')
        assert caught.value.status == 400
        assert caught.value.limit == "json"
        assert "column" in caught.value.message


# --------------------------------------------------------------------------- limits


class TestLimits:
    def test_1000_fields_are_stored(self) -> None:
        body = "&".join(f"f{i}=1" for i in range(PARAMETER_LIMIT))
        assert len(parse_body(body)) == PARAMETER_LIMIT

    def test_a_form_with_over_1000_fields_is_refused_as_too_large(self) -> None:
        body = "&".join(f"f{i}=1" for i in range(PARAMETER_LIMIT + 1))
        with pytest.raises(FormError) as caught:
            parse_body(body)
        assert caught.value.status == 413
        assert caught.value.limit == "parameters"
        assert "1001 fields" in caught.value.message and "limit is 1000" in caught.value.message

    def test_an_address_with_over_1000_query_parameters_is_refused(self) -> None:
        with pytest.raises(FormError) as caught:
            parse_query("&".join(f"q{i}=1" for i in range(PARAMETER_LIMIT + 1)))
        assert caught.value.status == 400
        assert "limit is 1000" in caught.value.message

    def test_a_name_nested_33_levels_is_refused(self) -> None:
        name = "n" + "[x]" * (BODY_DEPTH_LIMIT + 1)
        with pytest.raises(FormError) as caught:
            parse_body(f"{name}=leaf&also=this")
        assert caught.value.status == 400
        assert caught.value.limit == "depth"
        assert "32 levels" in caught.value.message

    @pytest.mark.parametrize("levels", [65, 100_000])
    def test_json_nested_too_deep_is_refused_without_crashing(self, levels: int) -> None:
        with pytest.raises(FormError) as caught:
            parse_json("[" * levels + "]" * levels)
        assert caught.value.status == 400
        assert caught.value.limit == "depth"
        assert "64 levels" in caught.value.message

    def test_json_nested_64_levels_is_stored(self) -> None:
        text = '{"a":' * 63 + "{}" + "}" * 63
        assert json.dumps(parse_json(text)).count("{") == 64


# --------------------------------------------------------------------------- after a POST


class TestRedirectQuery:
    def test_flat_values_and_lists_are_sent_on(self) -> None:
        raw = "page=2&tag[]=a&tag[]=b"
        assert redirect_query(raw, parse_query(raw)) == "page=2&tag=a&tag=b"

    def test_values_are_escaped_again(self) -> None:
        raw = "q=fish+%26+chips&name=Ada%20L"
        assert redirect_query(raw, parse_query(raw)) == "q=fish%20%26%20chips&name=Ada%20L"

    def test_a_nested_value_keeps_the_query_as_sent(self) -> None:
        raw = "claimant[name]=Ada&page=2"
        assert redirect_query(raw, parse_query(raw)) == raw
