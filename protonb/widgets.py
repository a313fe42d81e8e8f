"""The researcher's dashboard: a live table of sessions and a pane to inspect and edit one.

The widgets know only the researcher API (``Sessions``) and the store's change events; they
never touch the web server. Store events are coalesced into one small update per session
(a row delta for the table, new values for the selected session's pane), sent on the
kernel's event loop. Widget models are made once: the answer rows of the detail pane are a
pool that is reused, and the table is a single model fed with row deltas.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anywidget
import ipywidgets as W
import traitlets

from . import logbook
from .researcher import Session, SessionGone, Sessions, count_answers
from .store import ChangeEvent, SessionRecord

STATIC = Path(__file__).parent / "static"
#: Store events arriving within this many seconds go to the browser as one update.
COALESCE_SECONDS = 0.008
LOG_LINES = 50


def table_row(record: SessionRecord, defaults: dict[str, Any]) -> dict[str, Any]:
    """What the table shows for one session (about a hundred bytes)."""
    return {
        "id": record.id,
        "label": record.label,
        "page": record.current_page,
        "active": round(record.last_active, 3),
        "answers": count_answers(record.data, defaults),
    }


class SessionTable(anywidget.AnyWidget):
    """All sessions, newest activity first, paged and filtered in the browser.

    ``rows`` is the kernel's copy of what the table shows. The browser gets every row once
    when it asks, then only deltas.
    """

    _esm = STATIC / "session_table.js"
    _css = STATIC / "session_table.css"
    selected = traitlets.Unicode("").tag(sync=True)
    page_size = traitlets.Int(50).tag(sync=True)

    def __init__(self, sessions: Sessions, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._sessions = sessions
        defaults = sessions.defaults()
        self.rows: dict[str, dict[str, Any]] = {
            record.id: table_row(record, defaults) for record in sessions.store.list()
        }
        self.sent: int = 0
        self.on_msg(self._from_browser)

    def ordered(self) -> list[dict[str, Any]]:
        """Rows in the order the table shows them."""
        return sorted(self.rows.values(), key=lambda row: (-row["active"], row["id"]))

    def _push(self, message: dict[str, Any]) -> None:
        message["now"] = round(time.time(), 3)
        self.sent += 1
        self.send(message)

    def _from_browser(self, _: Any, content: Any, buffers: Any = None) -> None:
        if not isinstance(content, dict):
            return
        if content.get("type") == "ready":
            self._push({"type": "rows", "rows": self.ordered()})
        elif content.get("type") == "search":
            query = str(content.get("q", ""))
            ids = [session.id for session in self._sessions.find(answer=query)] if query.strip() else []
            self._push({"type": "matches", "q": query, "ids": ids})

    def apply(self, changed: dict[str, SessionRecord | None], cleared: bool) -> None:
        """Send one message for a batch of changes: rows that changed, rows that went."""
        if cleared:
            self.rows.clear()
            self._push({"type": "clear"})
        defaults = self._sessions.defaults()
        upserts, removed = [], []
        for sid, record in changed.items():
            if record is None:
                if self.rows.pop(sid, None) is not None:
                    removed.append(sid)
            else:
                row = table_row(record, defaults)
                if self.rows.get(sid) != row:
                    self.rows[sid] = row
                    upserts.append(row)
        if removed:
            self._push({"type": "remove", "ids": removed})
        if upserts:
            self._push({"type": "upsert", "rows": upserts})
        if self.selected and self.selected not in self.rows:
            self.selected = ""


def _display(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _entries(data: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], str, Any]]:
    """The tree of answers as rows: (path, "group" | "leaf", value), parents before children."""
    rows: list[tuple[tuple[str, ...], str, Any]] = []
    items = data.items() if isinstance(data, dict) else enumerate(data)
    for key, value in items:
        here = path + (str(key),)
        if isinstance(value, (dict, list)) and value:
            rows.append((here, "group", value))
            rows.extend(_entries(value, here))
        else:
            rows.append((here, "leaf", value))
    return rows


def _parse_like(text: str, original: Any, where: str) -> Any:
    """The researcher's text as a value of the same kind as the answer it replaces."""
    if isinstance(original, bool):
        if text.strip().lower() in ("true", "false"):
            return text.strip().lower() == "true"
        raise ValueError(f"{where} is true or false, not {text!r}")
    if isinstance(original, (int, float)):
        try:
            number = json.loads(text)
        except ValueError:
            number = None
        if isinstance(number, (int, float)) and not isinstance(number, bool):
            return number
        raise ValueError(f"{where} is a number, not {text!r}")
    if isinstance(original, (dict, list)):
        try:
            value = json.loads(text)
        except ValueError:
            raise ValueError(
                f"{where} is empty {type(original).__name__}: write JSON, like [] or {{}}"
            ) from None
        return value
    return text


class AnswerRow(W.HBox):
    """One answer in the detail pane: its name (indented by depth), its value, delete."""

    def __init__(self, on_delete: Callable[[AnswerRow], None]) -> None:
        self.name = W.HTML(layout=W.Layout(width="34%"))
        self.value = W.Text(layout=W.Layout(width="50%"), continuous_update=True)
        self.remove = W.Button(
            description="Delete", tooltip="Delete this answer", layout=W.Layout(width="70px")
        )
        super().__init__([self.name, self.value, self.remove])
        self.path: tuple[str, ...] = ()
        self.kind = "leaf"
        self.original: Any = None
        self.remove.on_click(lambda _: on_delete(self))
        self.value.observe(self._mark, names="value")

    @property
    def dirty(self) -> bool:
        return self.kind == "leaf" and self.value.value != _display(self.original)

    def _mark(self, _: Any = None) -> None:
        self.value.layout.border = "1px solid #d4351c" if self.dirty else ""

    def show(self, path: tuple[str, ...], kind: str, value: Any, keep_text: str | None) -> None:
        self.path, self.kind, self.original = path, kind, value
        indent = 1.2 * (len(path) - 1)
        name = html.escape(path[-1])
        shown = f"<strong>{name}</strong>" if kind == "group" else name
        self.name.value = f"<div style='padding-left:{indent:.1f}em'>{shown}</div>"
        self.name.tooltip = ".".join(path)
        self.value.layout.visibility = "hidden" if kind == "group" else "visible"
        self.value.value = keep_text if keep_text is not None else (_display(value) if kind == "leaf" else "")
        self.layout.display = ""
        self._mark()

    def hide(self) -> None:
        """Take the row out of view, and the participant's text out of the page."""
        self.path, self.kind, self.original = (), "leaf", None
        self.name.value = ""
        self.value.value = ""
        self.layout.display = "none"


class SessionDetail(W.VBox):
    """The selected session: its answers as an editable tree, and what can be done to it."""

    def __init__(self, sessions: Sessions, report: Callable[[str, str], None]) -> None:
        self._sessions = sessions
        self._report = report
        self.session_id = ""
        self.header = W.HTML("<em>Select a session in the table to see its answers.</em>")
        self.rows: list[AnswerRow] = []
        self.answers = W.VBox()
        self.save = W.Button(
            description="Save", button_style="primary", tooltip="Save the answers you changed"
        )
        self.new_path = W.Text(
            placeholder="answer name, e.g. claimant.first-name", layout=W.Layout(width="34%")
        )
        self.new_value = W.Text(placeholder="value", layout=W.Layout(width="40%"))
        self.add = W.Button(description="Add answer")
        self.label_text = W.Text(placeholder="label, e.g. P3", layout=W.Layout(width="12em"))
        self.set_label = W.Button(description="Label")
        self.clear = W.Button(description="Clear data", button_style="warning", tooltip="Remove every answer")
        self.remove = W.Button(description="Remove session", button_style="danger")
        self.confirm_text = W.HTML()
        self.confirm_yes = W.Button(description="Yes", button_style="danger")
        self.confirm_no = W.Button(description="Cancel")
        self.confirm_bar = W.HBox(
            [self.confirm_text, self.confirm_yes, self.confirm_no], layout=W.Layout(display="none")
        )
        self._pending: Callable[[], None] | None = None
        self.actions = W.HBox([self.save, self.label_text, self.set_label, self.clear, self.remove])
        self.adder = W.HBox([self.new_path, self.new_value, self.add])
        super().__init__([self.header, self.answers, self.adder, self.actions, self.confirm_bar])
        self.save.on_click(lambda _: self._guard(self._save))
        self.add.on_click(lambda _: self._guard(self._add))
        self.set_label.on_click(lambda _: self._guard(self._label))
        self.clear.on_click(lambda _: self._ask("Clear every answer of this session?", self._clear))
        self.remove.on_click(
            lambda _: self._ask(
                "Remove this session? The participant's next page starts afresh.", self._remove
            )
        )
        self.confirm_yes.on_click(lambda _: self._confirmed())
        self.confirm_no.on_click(lambda _: self._cancel())
        self._enable(False)

    # ------------------------------------------------------------------ showing

    def _enable(self, on: bool) -> None:
        for widget in (
            self.save,
            self.add,
            self.set_label,
            self.clear,
            self.remove,
            self.new_path,
            self.new_value,
            self.label_text,
        ):
            widget.disabled = not on

    @property
    def session(self) -> Session | None:
        return Session(self._sessions, self.session_id) if self.session_id else None

    def show(self, session_id: str) -> None:
        """Show a session (``""`` for none), dropping edits not saved."""
        self.session_id = session_id
        self._cancel()
        record = self._sessions.store.get(session_id) if session_id else None
        if record is None:
            self.session_id = ""
        self._draw(record, keep_edits=False)

    def refresh(self, session_id: str, record: SessionRecord | None) -> None:
        """The shown session changed (a participant answered): new values, edits kept."""
        if record is None:
            self._report(f"Session {session_id[:8]} was removed.", "info")
            self.session_id = ""
            self._cancel()
        self._draw(record, keep_edits=True)

    def _draw(self, record: SessionRecord | None, keep_edits: bool) -> None:
        if record is None:
            self.header.value = "<em>Select a session in the table to see its answers.</em>"
            for row in self.rows:
                row.hide()
            self.label_text.value = ""
            self._enable(False)
            return
        self._enable(True)
        edits = {row.path: row.value.value for row in self.rows if keep_edits and row.dirty}
        entries = _entries(record.data)
        while len(self.rows) < len(entries):
            self.rows.append(AnswerRow(self._delete))
            self.answers.children = tuple(self.rows)
        for row, (path, kind, value) in zip(self.rows, entries, strict=False):
            row.show(path, kind, value, edits.get(path))
        for row in self.rows[len(entries) :]:
            row.hide()
        name = html.escape(record.label) if record.label else "<em>no label</em>"
        when = dt.datetime.fromtimestamp(record.last_active).strftime("%H:%M:%S")
        self.header.value = (
            f"<b>{name}</b> · <code>{record.id[:8]}</code>"
            f" · on <code>{html.escape(record.current_page or '–')}</code>"
            f" · last active {when} · {len(record.pages)} page(s) visited"
            + ("" if entries else " · <em>no answers yet</em>")
        )
        if not keep_edits or not self.label_text.value:
            self.label_text.value = record.label

    # ------------------------------------------------------------------ acting

    def _guard(self, action: Callable[[], None]) -> None:
        """Run a button's action; any failure is shown in the status line, never lost."""
        try:
            action()
        except SessionGone as exc:
            self._report(str(exc), "error")
            self.show("")
        except (KeyError, ValueError, TypeError) as exc:
            self._report(str(exc).strip('"'), "error")
        except Exception as exc:  # a failed save must never be silent
            logging.getLogger("protonb").exception("the dashboard action failed")
            self._report(f"That did not work: {exc}", "error")

    def _need(self) -> Session:
        session = self.session
        if session is None:
            raise ValueError("Select a session first.")
        return session

    def _save(self) -> None:
        session = self._need()
        changes = []
        for row in self.rows:
            if row.layout.display != "none" and row.dirty:
                where = ".".join(row.path)
                changes.append((list(row.path), _parse_like(row.value.value, row.original, where)))
        if not changes:
            self._report("Nothing to save: change an answer first.", "info")
            return
        for path, value in changes:
            session.set(path, value)
        self.show(self.session_id)
        self._report(f"Saved {len(changes)} answer(s).", "ok")

    def _add(self) -> None:
        session = self._need()
        path = self.new_path.value.strip()
        if not path:
            raise ValueError("Give the answer a name, like claimant.first-name.")
        session.set(path, self.new_value.value)
        self.new_path.value = self.new_value.value = ""
        self.show(self.session_id)
        self._report(f"Added {path}.", "ok")

    def _delete(self, row: AnswerRow) -> None:
        def action() -> None:
            session = self._need()
            session.delete(list(row.path))
            where = ".".join(row.path)
            self.show(self.session_id)
            self._report(f"Deleted {where}.", "ok")

        self._guard(action)

    def _label(self) -> None:
        session = self._need()
        session.label(self.label_text.value)
        self._report(
            f"Labelled {self.session_id[:8]} {self.label_text.value.strip()!r}."
            if self.label_text.value.strip()
            else "Label removed.",
            "ok",
        )

    def _clear(self) -> None:
        self._need().clear()
        self.show(self.session_id)
        self._report("Cleared: the session is back to the defaults.", "ok")

    def _remove(self) -> None:
        session = self._need()
        short = session.short_id
        session.remove()
        self.show("")
        self._report(f"Removed session {short}.", "ok")

    def _ask(self, question: str, action: Callable[[], None]) -> None:
        if not self.session_id:
            self._report("Select a session first.", "error")
            return
        self._pending = action
        self.confirm_text.value = html.escape(question)
        self.confirm_bar.layout.display = ""

    def _confirmed(self) -> None:
        action, self._pending = self._pending, None
        self.confirm_bar.layout.display = "none"
        if action is not None:
            self._guard(action)

    def _cancel(self) -> None:
        self._pending = None
        self.confirm_bar.layout.display = "none"


class _LogToWidget(logging.Handler):
    def __init__(self, dashboard: Dashboard) -> None:
        super().__init__(logging.WARNING)
        self.dashboard = dashboard
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        if not logbook.belongs(self.dashboard.prototype):
            return  # another prototype's problem, served by the same kernel
        try:
            self.dashboard.log(self.format(record))
        except Exception:
            self.handleError(record)


class Dashboard(W.VBox):
    """The live view: URL, status line, session table, detail pane and log."""

    def __init__(self, sessions: Sessions, url: str = "", prototype: str | None = None) -> None:
        """``prototype`` (its folder) picks the problems its log area shows: its own and those
        that belong to no prototype. None shows every problem."""
        self.sessions = sessions
        self.url = url
        self.prototype = prototype
        self.heading = W.HTML()
        self.status = W.HTML()
        self.table = SessionTable(sessions)
        self.detail = SessionDetail(sessions, self.report)
        self.clear_all = W.Button(
            description="Clear all", button_style="danger", tooltip="Clear every session's answers"
        )
        self.confirm_text = W.HTML()
        self.confirm_yes = W.Button(description="Yes, clear all", button_style="danger")
        self.confirm_no = W.Button(description="Cancel")
        self.confirm_bar = W.HBox(
            [self.confirm_text, self.confirm_yes, self.confirm_no], layout=W.Layout(display="none")
        )
        self.log_view = W.HTML(layout=W.Layout(display="none", max_height="12em", overflow="auto"))
        self.log_lines: list[str] = []
        super().__init__(
            [
                W.HBox([self.heading, self.clear_all]),
                self.confirm_bar,
                self.status,
                self.table,
                self.detail,
                self.log_view,
            ]
        )
        self._pending: dict[str, SessionRecord | None] = {}
        self._cleared = False
        self._flush_handle: asyncio.TimerHandle | None = None
        self.updates = 0
        self.table.observe(lambda change: self.detail.show(change["new"]), names="selected")
        self.clear_all.on_click(lambda _: self._ask_clear_all())
        self.confirm_yes.on_click(lambda _: self._clear_all())
        self.confirm_no.on_click(lambda _: self._hide_confirm())
        self._unsubscribe = sessions.store.subscribe(self._on_change)
        self._log_handler = _LogToWidget(self)
        for line in logbook.recent(prototype):  # problems from before the dashboard was opened
            self.log(line)
        logging.getLogger("protonb").addHandler(self._log_handler)
        self._draw_heading()

    # ------------------------------------------------------------------ live updates

    def _on_change(self, event: ChangeEvent) -> None:
        if event.kind == "cleared":
            self._cleared = True
            self._pending.clear()
        else:
            self._pending[event.session_id] = event.record
        if self._flush_handle is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._flush_handle = loop.call_later(COALESCE_SECONDS, self.flush)

    def flush(self) -> None:
        """Send what changed since the last flush: one table message, one detail refresh."""
        self._flush_handle = None
        pending, cleared = self._pending, self._cleared
        self._pending, self._cleared = {}, False
        if not pending and not cleared:
            return
        self.updates += 1
        shown = self.detail.session_id
        self.table.apply(pending, cleared)
        if shown and (shown in pending or cleared):
            self.detail.refresh(shown, pending.get(shown))
        self._draw_heading()

    # ------------------------------------------------------------------ the rest

    def report(self, message: str, level: str = "info") -> None:
        """Show a message in the status line (escaped: it may quote participant text)."""
        colour = {"error": "#d4351c", "ok": "#00703c"}.get(level, "inherit")
        self.status.value = f"<span style='color:{colour}'>{html.escape(message)}</span>"

    def log(self, line: str) -> None:
        self.log_lines = (self.log_lines + [line])[-LOG_LINES:]
        self.log_view.value = "<pre style='margin:0'>" + html.escape("\n".join(self.log_lines)) + "</pre>"
        self.log_view.layout.display = ""

    def _draw_heading(self) -> None:
        count = len(self.table.rows)
        link = (
            f"<a href='{html.escape(self.url, quote=True)}' target='_blank' rel='noopener'>"
            f"{html.escape(self.url)}</a> · "
            if self.url
            else ""
        )
        self.heading.value = f"<b>protonb</b> · {link}{count} session{'s' if count != 1 else ''}"

    def _ask_clear_all(self) -> None:
        count = len(self.table.rows)
        if not count:
            self.report("There are no sessions to clear.", "info")
            return
        self.confirm_text.value = html.escape(
            f"Clear the answers of all {count} sessions? This cannot be undone."
        )
        self.confirm_bar.layout.display = ""

    def _hide_confirm(self) -> None:
        self.confirm_bar.layout.display = "none"

    def _clear_all(self) -> None:
        self._hide_confirm()
        try:
            count = self.sessions.clear_all()
        except Exception as exc:
            logging.getLogger("protonb").exception("clearing all sessions failed")
            self.report(f"Clearing all sessions failed: {exc}", "error")
            return
        self.report(f"Cleared the answers of {count} session(s).", "ok")

    def close(self) -> None:
        """Stop listening to the store and close every widget model this dashboard made."""
        if hasattr(self, "_log_handler"):
            self._stop_listening()
        for child in self.children:
            _close_tree(child)
        self.layout.close()
        super().close()

    def retire(self, note: str) -> None:
        """Stop, leaving ``note`` (HTML) where the dashboard was shown: closed outright, the
        notebook's output would go blank with no word why."""
        if not hasattr(self, "_log_handler"):
            return
        self._stop_listening()
        shown = list(self.children)
        self.children = [W.HTML(note)]
        for child in shown:
            _close_tree(child)

    def _stop_listening(self) -> None:
        self._unsubscribe()
        logging.getLogger("protonb").removeHandler(self._log_handler)
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        del self._log_handler


def _close_tree(widget: Any) -> None:
    for child in getattr(widget, "children", ()):
        _close_tree(child)
    for name in ("layout", "style"):
        part = getattr(widget, name, None)
        if isinstance(part, W.Widget):
            part.close()
    widget.close()
