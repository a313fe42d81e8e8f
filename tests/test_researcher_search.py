"""``proto.sessions.find(answer=...)`` reads stored JSON text first; it must find what a full
search finds: every session with an answer containing the text (case-insensitive), in order.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protonb.researcher import Sessions, _mentions
from protonb.sqlite_store import SQLiteStore
from protonb.store import MemoryStore, SessionRecord

TRICKY = ["Ada", "ada", "ß", "SS", "Σίσυφος", "İ", "\"quoted\"", "back\\slash", "line\nbreak", "tab\t",
          "null", "None", "true", "é", "\u2028", "x/y", "{}", "[1]"]
leaf = st.one_of(
    st.sampled_from(TRICKY),
    st.text(max_size=6),
    st.none(),
    st.booleans(),
    st.integers(-10**20, 10**20),
    st.floats(allow_nan=False, allow_infinity=False),
)
answers = st.recursive(
    leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
session_data = st.dictionaries(st.sampled_from(["name", "a", "b", "contact"]), answers, max_size=4)
needles = st.one_of(
    st.sampled_from(TRICKY + ["n", "on", "non", "one", "ru", "1", "0", ".", "e+", "\"", "\\", "\n", "a\"d"]),
    st.text(max_size=3),
)


#: Defaults a session may still hold as they were: they are not its answers.
DEFAULTS = {"name": "Ada", "contact": ["email", "phone"], "a": {"b": None}}


def brute_force(store, needle: str) -> list[str]:
    return [record.id for record in store.list() if _mentions(record.data, needle, DEFAULTS)]


def fill(store, datas: list[dict]) -> None:
    for i, data in enumerate(datas):
        store.set(SessionRecord(id=f"s{i:03d}" + "x" * 20, data=data, last_active=1000.0 + i), "created")


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(datas=st.lists(session_data, max_size=6), needle=needles)
def test_an_answer_search_finds_what_a_full_search_finds(kind: str, tmp_path: Path, datas, needle) -> None:
    store = MemoryStore() if kind == "memory" else SQLiteStore(tmp_path / f"s{id(datas)}.sqlite3")
    try:
        fill(store, datas)
        sessions = Sessions(store, lambda: DEFAULTS)
        assert [s.id for s in sessions.find(answer=needle)] == brute_force(store, needle)
    finally:
        store.close()


def test_a_session_is_found_by_its_id_label_or_id_start(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.sqlite3")
    try:
        fill(store, [{"name": "Ada"}, {"name": "Eve"}])
        sessions = Sessions(store, dict)
        record = store.get("s001" + "x" * 20)
        record.label = "P3"
        store.set(record, "label")
        assert sessions["s000" + "x" * 20].id == "s000" + "x" * 20
        assert sessions["P3"].id == "s001" + "x" * 20
        assert sessions["s000"].id == "s000" + "x" * 20
        with pytest.raises(KeyError):
            sessions["nobody"]
    finally:
        store.close()
