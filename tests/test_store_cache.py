"""The SQLite store keeps recently used sessions ready, and never serves a stale or shared one.

A CLI server and a notebook can serve one prototype folder at the same time: each process has
its own store on the same file. A change committed by the other process must be seen by the
very next request here, and a change made here must not overwrite it with an older copy.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import urllib.parse
from pathlib import Path

import pytest
from test_durability import Browser, StoreCase

from protonb.sqlite_store import CACHE_SIZE, SQLiteStore
from protonb.store import SessionRecord


def other_process(db: Path, code: str) -> None:
    """Run ``code`` in another Python process with ``store`` open on the file ``db``."""
    script = "from protonb.sqlite_store import SQLiteStore\nfrom protonb.store import SessionRecord\n"
    script += f"store = SQLiteStore({str(db)!r})\n" + textwrap.dedent(code) + "\nstore.close()\n"
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)


@pytest.fixture
def stores(tmp_path: Path):
    path = tmp_path / "sessions.sqlite3"
    here, there = SQLiteStore(path), SQLiteStore(path)
    yield here, there
    here.close()
    there.close()


SID = "s" * 24


def test_a_change_by_another_store_on_the_same_file_is_seen_at_once(stores) -> None:
    here, there = stores
    here.set(SessionRecord(id=SID, data={"name": "Ada"}), "created")
    assert here.get(SID).data == {"name": "Ada"}  # now held ready here

    record = there.get(SID)
    record.data["name"] = "Grace"
    there.set(record)
    assert here.get(SID).data == {"name": "Grace"}

    record.visit("/elsewhere")
    there.touch(record)
    assert here.get(SID).current_page == "/elsewhere"
    assert here.get(SID).data == {"name": "Grace"}

    there.delete(SID)
    assert here.get(SID) is None


def test_a_change_by_another_process_is_seen_at_once(stores, tmp_path: Path) -> None:
    here, _ = stores
    here.set(SessionRecord(id=SID, data={"name": "Ada"}), "created")
    assert here.get(SID).data == {"name": "Ada"}
    other_process(
        tmp_path / "sessions.sqlite3",
        f"""
        record = store.get({SID!r})
        record.data["name"] = "Grace"
        store.set(record)
        """,
    )
    assert here.get(SID).data == {"name": "Grace"}
    other_process(tmp_path / "sessions.sqlite3", f"store.delete({SID!r})")
    assert here.get(SID) is None


def test_every_record_handed_out_is_its_own_copy(stores) -> None:
    here, _ = stores
    here.set(SessionRecord(id=SID, data={"name": "Ada", "pets": ["cat"]}, pages=["/a"]), "created")
    first = here.get(SID)
    first.data["pets"].append("dog")
    first.data["name"] = "changed"
    first.pages.append("/b")
    second = here.get(SID)
    assert second.data == {"name": "Ada", "pets": ["cat"]}
    assert second.pages == ["/a"]
    assert second.stored_data == '{"name":"Ada","pets":["cat"]}'


def test_a_change_that_cannot_be_stored_leaves_the_session_as_it_was(stores) -> None:
    here, there = stores
    here.set(SessionRecord(id=SID, data={"name": "Ada"}), "created")
    assert here.get(SID).data == {"name": "Ada"}
    broken = here.get(SID)
    broken.data["score"] = float("nan")
    with pytest.raises(ValueError):
        here.set(broken)
    assert here.get(SID).data == {"name": "Ada"}
    assert there.get(SID).data == {"name": "Ada"}


def test_more_sessions_than_are_held_ready_all_read_back_right(stores) -> None:
    here, there = stores
    ids = [f"{n:024d}" for n in range(CACHE_SIZE + 20)]
    for n, sid in enumerate(ids):
        here.set(SessionRecord(id=sid, data={"n": n}), "created")
    for n, sid in enumerate(ids):
        assert here.get(sid).data == {"n": n}
    record = there.get(ids[-1])
    record.data["n"] = -1
    there.set(record)
    assert here.get(ids[-1]).data == {"n": -1}
    assert [here.get(sid).data["n"] for sid in ids[:-1]] == list(range(len(ids) - 1))


class TestTwoProcessesOnOneFolder(StoreCase):
    """A browser served here while another process (a notebook, say) changes its answers."""

    def test_the_other_process_change_shows_and_survives_the_next_answer(self) -> None:
        ada = Browser(self)
        ada.post({"first-name": "Ada"})
        assert ada.data()["first-name"] == "Ada"  # read, so held ready here
        sid = self.session_id(ada)
        other_process(
            self.data_dir / "sessions.sqlite3",
            f"""
            record = store.get({sid!r})
            record.data["checked-by"] = "researcher"
            store.set(record)
            """,
        )
        assert ada.data()["checked-by"] == "researcher"
        response = ada.request("POST", "/answer", urllib.parse.urlencode({"last-name": "Lovelace"}))
        assert response.code == 302
        on_disk = json.loads(self.on_disk()[sid])
        assert on_disk["checked-by"] == "researcher"
        assert on_disk["first-name"] == "Ada"
        assert on_disk["last-name"] == "Lovelace"

    def test_a_session_removed_by_the_other_process_is_not_served_from_memory(self) -> None:
        ada = Browser(self)
        ada.post({"first-name": "Ada"})
        assert ada.data()["first-name"] == "Ada"
        sid = self.session_id(ada)
        other_process(self.data_dir / "sessions.sqlite3", f"store.delete({sid!r})")
        assert "first-name" not in ada.data()
