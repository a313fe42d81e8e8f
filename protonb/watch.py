"""FolderWatch: has anything a caller cares about changed on disk since it last asked?

A served prototype reads files that may be edited while it runs (views, routes.py, the session
defaults) and a session store that another process may write. Checking each of them on every
request costs a system call per file. On Linux one inotify instance (inotify-simple) tells
instead: a check is one ``ioctl`` on its descriptor, whatever the number of files, and it is
exact, because the kernel queues an event while the write that causes it is being made.

Each *topic* is a file or a folder tree with the kinds of change that matter for it.
``changed(topic)`` is True when an event for it arrived since it was last asked (it is then
forgotten), and always True when the watch is not ``active``: elsewhere than Linux, when the
kernel has no watches left, once a tree holds a symbolic link or a watched file is one (a
change behind a link is not seen), or after the event queue overflowed. Callers then check the
files themselves. Events are read by ``poll()``, which the caller makes once per request.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

log = logging.getLogger("protonb")

try:  # Linux only; elsewhere every check reports a change
    from inotify_simple import INotify
except (ImportError, OSError):  # pragma: no cover - not on Linux
    INotify = None  # type: ignore[assignment,misc]

MODIFIED = 0x002 | 0x004 | 0x008  # IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE
MOVED = 0x040 | 0x080 | 0x100 | 0x200  # IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
_SELF_GONE = 0x400 | 0x800 | 0x8000  # IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED
_OVERFLOW = 0x4000
_IS_DIR = 0x40000000
_CREATED_DIR = 0x080 | 0x100  # a folder moved in or made
_GONE_DIR = 0x040 | 0x200  # a folder moved out or removed
ANY = MODIFIED | MOVED


@dataclass
class _Topic:
    path: str
    tree: bool
    mask: int
    dirty: bool = True


class FolderWatch:
    """Watches the folders that hold the files of its topics (see the module's notes)."""

    def __init__(self) -> None:
        self._topics: dict[str, _Topic] = {}
        self._folders: dict[int, str] = {}  # watch descriptor -> folder path
        self._inotify = None
        if INotify is not None:
            try:
                self._inotify = INotify(nonblocking=True)
            except OSError as exc:  # no inotify instances left
                log.debug("file changes are checked by time stamps: %s", exc)

    @property
    def active(self) -> bool:
        return self._inotify is not None

    def add(self, topic: str, path: str | os.PathLike[str], *, tree: bool = False, mask: int = ANY) -> None:
        """Watch ``path``: a file (its folder is watched), or with ``tree`` a folder and all
        inside it. ``mask`` picks the kinds of change that count (MODIFIED, MOVED)."""
        where = os.path.abspath(path)
        self._topics[topic] = _Topic(where, tree, mask)
        if tree:
            self._watch_tree(where)
            self._watch(os.path.dirname(where))  # the folder itself made, removed or replaced
        else:
            if os.path.islink(where):
                self._give_up(f"{where} is a link")
                return
            self._watch(os.path.dirname(where))

    def changed(self, topic: str) -> bool:
        """Whether ``topic`` may have changed since this was last asked (after ``poll``)."""
        if self._inotify is None:
            return True
        entry = self._topics[topic]
        if entry.dirty:
            entry.dirty = False
            return True
        return False

    def poll(self) -> None:
        """Read the events that have arrived (one system call when there are none)."""
        if self._inotify is None:
            return
        try:
            events = self._inotify.read(timeout=0)
        except OSError as exc:
            self._give_up(f"reading file events failed: {exc}")
            return
        for event in events:
            if event.mask & _OVERFLOW:
                self._give_up("too many file events at once")
                return
            folder = self._folders.get(event.wd)
            if folder is None:
                continue
            if event.mask & _SELF_GONE:
                self._folders.pop(event.wd, None)
                self._mark(folder, ANY)
                continue
            path = os.path.join(folder, event.name) if event.name else folder
            self._mark(path, event.mask)
            if event.mask & _CREATED_DIR and not event.mask & _IS_DIR and self._is_new_link(path):
                self._give_up(f"{path} is a link")  # a change behind it would not be seen
                return
            if event.mask & _IS_DIR and event.mask & _GONE_DIR:
                self._forget(path)  # the folders under it are elsewhere now, or gone
            if event.mask & _IS_DIR and event.mask & _CREATED_DIR and self._in_tree(path):
                self._watch_tree(path)

    def close(self) -> None:
        if self._inotify is not None:
            try:
                self._inotify.close()
            except OSError:
                pass
            self._inotify = None

    # ------------------------------------------------------------------ inside

    def _mark(self, path: str, mask: int) -> None:
        for entry in self._topics.values():
            if not mask & entry.mask:
                continue
            if path == entry.path or (
                entry.tree and (path.startswith(entry.path + os.sep) or entry.path.startswith(path + os.sep))
            ):
                entry.dirty = True
            elif not entry.tree and entry.path.startswith(path + os.sep):
                entry.dirty = True  # a folder holding the file went or came

    def _forget(self, top: str) -> None:
        """Stop watching ``top`` and every folder under it (they were moved or removed), so
        that a new folder made at the same path is watched afresh."""
        for wd, folder in list(self._folders.items()):
            if folder == top or folder.startswith(top + os.sep):
                del self._folders[wd]
                try:
                    self._inotify.rm_watch(wd)  # type: ignore[union-attr]
                except OSError:
                    pass  # the kernel dropped it already (the folder was removed)

    def _is_new_link(self, path: str) -> bool:
        """Whether ``path``, just made or moved in, is a link that a topic reads through."""
        if not (self._in_tree(path) or any(t.path == path for t in self._topics.values())):
            return False
        return os.path.islink(path)

    def _in_tree(self, path: str) -> bool:
        trees = [t.path for t in self._topics.values() if t.tree]
        return any(path == top or path.startswith(top + os.sep) for top in trees)

    def _watch(self, folder: str) -> None:
        if self._inotify is None or folder in self._folders.values():
            return
        try:
            wd = self._inotify.add_watch(folder, ANY | _SELF_GONE | 0x01000000)  # IN_ONLYDIR
        except FileNotFoundError:
            return  # not there yet: its parent's events tell when it is made
        except OSError as exc:  # out of watches, or not a folder
            self._give_up(f"cannot watch {folder}: {exc}")
            return
        self._folders[wd] = folder

    def _watch_tree(self, top: str) -> None:
        if not os.path.isdir(top):
            return
        if os.path.islink(top):
            self._give_up(f"{top} is a link")
            return
        pending = [top]
        while pending:
            folder = pending.pop()
            # Watched before it is listed: a folder made in it meanwhile is told by an event.
            self._watch(folder)
            if self._inotify is None:
                return
            try:
                with os.scandir(folder) as listing:
                    entries = list(listing)
            except OSError:
                continue  # gone meanwhile: its parent's events tell
            for entry in entries:
                if entry.is_symlink():
                    self._give_up(f"{entry.path} is a link")
                    return
                if entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)

    def _give_up(self, why: str) -> None:
        """From now on every check reports a change (callers check the files themselves)."""
        log.debug("file changes are checked by time stamps from now on: %s", why)
        self.close()
