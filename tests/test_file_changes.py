"""Files edited while a prototype is served show at the very next request, told by inotify.

On Linux protonb does not check each file's time on every request: the kernel tells it what
changed (protonb/watch.py). These tests edit the prototype the ways editors and people do
(save in place, save by renaming over, add folders, delete) and expect the next request to
show it, without the one-second pause that time stamps would need. Where the watch cannot be
trusted (a symbolic link in templates/), protonb checks the files' times instead.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path

import pytest
from test_server import ServerCase, save

from protonb.prototype import Prototype
from protonb.sqlite_store import SQLiteStore
from protonb.store import SessionRecord
from protonb.watch import FolderWatch

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")


@linux_only
class TestEditsWhileServing(ServerCase):
    def test_the_watch_is_on(self) -> None:
        assert self.proto.site.files.active
        assert self.proto.store._watch.active  # type: ignore[attr-defined]

    def test_two_saves_within_the_same_moment_both_show(self) -> None:
        browser = self.participant()
        page = self.root / "templates" / "name.html"
        for n in range(5):  # no time stamp could tell these apart
            page.write_text(f"<h1>Version {n}</h1>", encoding="utf-8")
            assert f"<h1>Version {n}</h1>" in browser.get("/name").text

    def test_a_save_by_renaming_over_the_old_file_shows(self) -> None:
        browser = self.participant()
        assert "Your name" in browser.get("/name").text
        new = self.root / "templates" / ".name.html.swp"
        new.write_text("<h1>Saved atomically</h1>", encoding="utf-8")
        os.replace(new, self.root / "templates" / "name.html")
        assert "<h1>Saved atomically</h1>" in browser.get("/name").text

    def test_a_folder_of_pages_added_while_serving_answers_and_its_edits_show(self) -> None:
        browser = self.participant()
        assert browser.get("/apply/step-one").code == 404
        folder = self.root / "templates" / "apply"
        folder.mkdir()
        (folder / "step-one.html").write_text("<h1>Step one</h1>", encoding="utf-8")
        assert "<h1>Step one</h1>" in browser.get("/apply/step-one").text
        (folder / "step-one.html").write_text("<h1>Step 1</h1>", encoding="utf-8")
        assert "<h1>Step 1</h1>" in browser.get("/apply/step-one").text

    def test_a_deleted_page_is_not_found_at_once(self) -> None:
        browser = self.participant()
        assert browser.get("/greeting").code == 200
        (self.root / "templates" / "greeting.html").unlink()
        assert browser.get("/greeting").code == 404

    def test_a_layout_edited_twice_quickly_shows_the_last_edit(self) -> None:
        templates = self.root / "templates"
        (templates / "layout.html").write_text("<title>A</title>{% block c %}{% endblock %}")
        (templates / "child.html").write_text('{% extends "layout.html" %}{% block c %}x{% endblock %}')
        browser = self.participant()
        assert "<title>A</title>x" in browser.get("/child").text
        (templates / "layout.html").write_text("<title>B</title>{% block c %}{% endblock %}")
        (templates / "layout.html").write_text("<title>C</title>{% block c %}{% endblock %}")
        assert "<title>C</title>x" in browser.get("/child").text

    def test_the_templates_folder_replaced_whole_is_served(self) -> None:
        browser = self.participant()
        templates = self.root / "templates"
        templates.rename(self.tmp / "old-templates")
        fresh = self.tmp / "new-templates"
        (fresh / "section").mkdir(parents=True)
        (fresh / "name.html").write_text("<h1>New branch</h1>", encoding="utf-8")
        (fresh / "section" / "index.html").write_text("<h1>New section</h1>", encoding="utf-8")
        fresh.rename(templates)  # as a git checkout of another branch might
        assert "<h1>New branch</h1>" in browser.get("/name").text
        assert browser.get("/greeting").code == 404
        assert "<h1>New section</h1>" in browser.get("/section").text
        (templates / "section" / "index.html").write_text("<h1>Edited section</h1>", encoding="utf-8")
        assert "<h1>Edited section</h1>" in browser.get("/section").text

    def test_edits_show_after_the_watch_gives_up_while_serving(self) -> None:
        browser = self.participant()
        assert "Your name" in browser.get("/name").text
        outside = self.tmp / "outside"
        outside.mkdir()
        moved_in = self.tmp / "moved-in"
        moved_in.mkdir()
        (moved_in / "link").symlink_to(outside, target_is_directory=True)
        moved_in.rename(self.root / "templates" / "sub")  # a folder holding a link: no watch
        assert browser.get("/name").code == 200
        assert not self.proto.site.files.active
        save(self.root / "templates" / "name.html", "<h1>Edited after</h1>")
        assert "<h1>Edited after</h1>" in browser.get("/name").text

    def test_a_link_to_a_folder_made_while_serving_shows_edits_behind_it(self) -> None:
        browser = self.participant()
        shared = self.tmp / "shared"
        shared.mkdir()
        save(shared / "help.html", "<h1>Help</h1>")
        (self.root / "templates" / "shared").symlink_to(shared, target_is_directory=True)
        assert "<h1>Help</h1>" in browser.get("/shared/help").text
        save(shared / "help.html", "<h1>More help</h1>")
        assert "<h1>More help</h1>" in browser.get("/shared/help").text

    def test_a_link_to_a_page_made_while_serving_shows_edits_behind_it(self) -> None:
        browser = self.participant()
        target = self.tmp / "kept-elsewhere.html"
        save(target, "<h1>One</h1>")
        (self.root / "templates" / "linked.html").symlink_to(target)
        assert "<h1>One</h1>" in browser.get("/linked").text
        save(target, "<h1>Two</h1>")
        assert "<h1>Two</h1>" in browser.get("/linked").text


class TestALinkInTemplates(ServerCase):
    """A page behind a symbolic link: its edits are not told by the watch, so times are checked."""

    def get_app(self):  # type: ignore[no-untyped-def]
        self.shared = self.tmp / "shared-pages"
        self.shared.mkdir()
        save(self.shared / "help.html", "<h1>Help</h1>")
        (self.root / "templates" / "shared").symlink_to(self.shared, target_is_directory=True)
        self.proto.close()
        self.proto = Prototype(self.root)  # opened with the link already there
        return super().get_app()

    def test_an_edit_behind_the_link_shows(self) -> None:
        assert not self.proto.site.files.active
        browser = self.participant()
        assert "<h1>Help</h1>" in browser.get("/shared/help").text
        save(self.shared / "help.html", "<h1>More help</h1>")
        assert "<h1>More help</h1>" in browser.get("/shared/help").text
        save(self.root / "templates" / "name.html", "<h1>Name, edited</h1>")
        assert "<h1>Name, edited</h1>" in browser.get("/name").text


@linux_only
def test_a_watch_tells_each_topic_once_per_change(tmp_path: Path) -> None:
    (tmp_path / "views" / "deep").mkdir(parents=True)
    watch = FolderWatch()
    watch.add("views", tmp_path / "views", tree=True)
    watch.add("settings", tmp_path / "settings.json")
    assert watch.active
    assert watch.changed("views") and watch.changed("settings")  # unknown at first: check once
    watch.poll()
    assert not watch.changed("views") and not watch.changed("settings")

    (tmp_path / "views" / "deep" / "page.html").write_text("x")
    watch.poll()
    assert watch.changed("views") and not watch.changed("settings")
    assert not watch.changed("views")  # told once

    (tmp_path / "unrelated.txt").write_text("x")
    (tmp_path / "settings.json").write_text("{}")
    watch.poll()
    assert watch.changed("settings") and not watch.changed("views")
    watch.close()
    assert not watch.active and watch.changed("views") and watch.changed("settings")


@linux_only
def test_folders_moved_away_or_removed_are_watched_afresh_where_they_are_made_again(tmp_path: Path) -> None:
    views = tmp_path / "views"
    (views / "section").mkdir(parents=True)
    watch = FolderWatch()
    watch.add("views", views, tree=True)
    watch.poll()
    watch.changed("views")

    def edited(path: Path) -> bool:
        path.write_text("x")
        watch.poll()
        return watch.changed("views")

    views.rename(tmp_path / "old-views")  # a branch switched: the same names, new folders
    (tmp_path / "new-views" / "section").mkdir(parents=True)
    (tmp_path / "new-views").rename(views)
    watch.poll()
    assert watch.changed("views")
    assert edited(views / "section" / "page.html")
    assert not edited(tmp_path / "old-views" / "section" / "page.html")  # no longer served

    (views / "section" / "page.html").unlink()
    (views / "section").rmdir()
    (views / "section").mkdir()
    watch.poll()
    watch.changed("views")
    assert edited(views / "section" / "again.html")
    watch.close()


@linux_only
def test_a_store_whose_watch_fails_still_sees_another_stores_change(tmp_path: Path) -> None:
    path = tmp_path / "sessions.sqlite3"
    here, there = SQLiteStore(path), SQLiteStore(path)
    try:
        sid = "w" * 24
        here.set(SessionRecord(id=sid, data={"name": "Ada"}), "created")
        assert here.get(sid).data == {"name": "Ada"}
        here._watch.close()  # type: ignore[union-attr]  # as if the kernel had run out of watches
        record = there.get(sid)
        record.data["name"] = "Grace"
        there.set(record)
        assert here.get(sid).data == {"name": "Grace"}
        path.unlink()
        assert here.get(sid) is None  # the file went: a new, empty store
    finally:
        here.close()
        there.close()


@linux_only
def test_a_store_whose_folder_moved_away_and_back_still_sees_another_stores_change(tmp_path: Path) -> None:
    folder = tmp_path / ".protonb"
    path = folder / "sessions.sqlite3"
    here, there = SQLiteStore(path), SQLiteStore(path)
    try:
        sid = "m" * 24
        here.set(SessionRecord(id=sid, data={"name": "Ada"}), "created")
        assert here.get(sid).data == {"name": "Ada"}
        folder.rename(tmp_path / "aside")  # e.g. a copy taken away, then put back
        (tmp_path / "aside").rename(folder)
        assert here.get(sid).data == {"name": "Ada"}  # the same file, answers kept
        record = there.get(sid)
        record.data["name"] = "Grace"
        there.set(record)
        assert here.get(sid).data == {"name": "Grace"}
        watch = here._watch
        here.get(sid)
        assert here._watch is watch  # watched again once, not on every request
    finally:
        here.close()
        there.close()


class _Listing:
    """A folder listing as os.scandir gives it, after which ``then`` runs."""

    def __init__(self, entries: list, then) -> None:  # type: ignore[no-untyped-def]
        self._entries = iter(entries)
        then()

    def __iter__(self):  # type: ignore[no-untyped-def]
        return self

    def __next__(self):  # type: ignore[no-untyped-def]
        return next(self._entries)

    def __enter__(self):  # type: ignore[no-untyped-def]
        return self

    def __exit__(self, *exc: object) -> bool:
        return False

    def close(self) -> None:
        pass


@linux_only
def test_a_folder_made_while_its_parent_is_being_listed_is_watched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    views = tmp_path / "views"
    views.mkdir()
    watch = FolderWatch()
    watch.add("views", views, tree=True)
    watch.poll()
    watch.changed("views")
    made, deeper = views / "made", views / "made" / "deeper"
    real_scandir = os.scandir

    def listed_then_deeper_made(path):  # type: ignore[no-untyped-def]
        entries = list(real_scandir(path))
        then = deeper.mkdir if os.fspath(path) == str(made) and not deeper.exists() else (lambda: None)
        return _Listing(entries, then)

    monkeypatch.setattr(os, "scandir", listed_then_deeper_made)
    made.mkdir()  # an editor makes made/ and, at the moment it is listed, made/deeper/
    watch.poll()
    monkeypatch.setattr(os, "scandir", real_scandir)
    assert deeper.is_dir() and watch.changed("views")
    watch.poll()
    watch.changed("views")
    (deeper / "page.html").write_text("x")
    watch.poll()
    assert watch.changed("views")
    watch.close()


@linux_only
def test_a_link_as_a_watched_file_turns_the_watch_off(tmp_path: Path) -> None:
    (tmp_path / "real.json").write_text("{}")
    (tmp_path / "settings.json").symlink_to(tmp_path / "real.json")
    watch = FolderWatch()
    watch.add("settings", tmp_path / "settings.json")
    assert not watch.active and watch.changed("settings")


class _CommitNotYetVisible:
    """A connection whose first ``PRAGMA data_version`` answers as before another process's
    commit became visible: as when the commit is written to the WAL (the file change is
    told) but its sync to the disk has not finished, so readers do not see it yet."""

    def __init__(self, db: sqlite3.Connection, version_before: int) -> None:
        self.db, self.version_before = db, version_before

    def execute(self, sql: str, *args: object) -> object:
        if sql == "PRAGMA data_version" and self.version_before is not None:
            before, self.version_before = self.version_before, None
            return self.db.execute("SELECT ?", (before,))
        return self.db.execute(sql, *args)

    def __getattr__(self, name: str) -> object:
        return getattr(self.db, name)


@linux_only
def test_another_stores_commit_told_before_it_was_visible_is_read_after_all(tmp_path: Path) -> None:
    path = tmp_path / "sessions.sqlite3"
    here, there = SQLiteStore(path), SQLiteStore(path)
    sid = "w" * 24
    try:
        here.set(SessionRecord(id=sid, data={"name": "Ada"}), "created")
        assert here.get(sid).data == {"name": "Ada"}  # now in this store's cache
        version_before = here._data_version
        record = there.get(sid)
        record.data["name"] = "Grace"
        there.set(record)
        here._db = _CommitNotYetVisible(here._db, version_before)  # type: ignore[assignment]
        assert here.get(sid).data == {"name": "Ada"}  # the change is told, the commit not seen
        assert here.get(sid).data == {"name": "Grace"}  # no further change is told: still seen
    finally:
        here._db = getattr(here._db, "db", here._db)
        here.close()
        there.close()
