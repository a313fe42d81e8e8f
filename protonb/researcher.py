"""The researcher's Python API: look at, change and clear each participant's session.

``proto.sessions`` lists the live sessions, newest activity first. Each ``Session`` reads
the store afresh on every access, and its ``data`` is a read-only snapshot: changes go
through ``set``, ``delete``, ``update``, ``clear``, ``label`` and ``remove``, which store,
persist and notify watchers (the dashboard among them) at once.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from . import forms
from .store import ChangeEvent, SessionRecord, Store

Path = str | list[Any] | tuple[Any, ...]
LABEL_MAX = 40
_BRACKETS = re.compile(r"\[([^\[\]]*)\]")
#: ``claimant[address][town]``: a name, then bracketed keys to the end, each pair closed.
_BRACKET_PATH = re.compile(r"([^\[\]]*)((?:\[[^\[\]]*\])+)")


class SessionGone(KeyError):
    """The session was removed (by the researcher, or because it expired)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "the session was removed"


class LabelTaken(ValueError):
    """The label is another session's: clear it there first, or pass ``move=True``."""


class ReadOnlyError(TypeError):
    """Raised when a data snapshot is changed in place."""


_HOW = (
    "session data is a read-only snapshot here:"
    " change it with session.set(path, value), .delete(path) or .update({...})"
)


class FrozenDict(dict):  # type: ignore[type-arg]
    """A dict that refuses changes, so editing a snapshot never silently does nothing."""

    def _refuse(self, *_: Any, **__: Any) -> None:
        raise ReadOnlyError(_HOW)

    __setitem__ = __delitem__ = _refuse  # type: ignore[assignment]
    clear = pop = popitem = setdefault = update = _refuse  # type: ignore[assignment]
    __ior__ = _refuse  # type: ignore[assignment]

    def __reduce__(self) -> Any:
        return (dict, (thaw(self),))

    def __copy__(self) -> dict[str, Any]:
        return thaw(self)

    def __deepcopy__(self, memo: Any) -> dict[str, Any]:
        return thaw(self)


class FrozenList(list):  # type: ignore[type-arg]
    """A list that refuses changes."""

    def _refuse(self, *_: Any, **__: Any) -> None:
        raise ReadOnlyError(_HOW)

    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse  # type: ignore[assignment]
    append = extend = insert = pop = remove = clear = sort = reverse = _refuse  # type: ignore[assignment]

    def __reduce__(self) -> Any:
        return (list, (thaw(self),))

    def __copy__(self) -> list[Any]:
        return thaw(self)

    def __deepcopy__(self, memo: Any) -> list[Any]:
        return thaw(self)


def freeze(value: Any) -> Any:
    if isinstance(value, dict):
        frozen = FrozenDict()
        for key, item in value.items():
            dict.__setitem__(frozen, key, freeze(item))
        return frozen
    if isinstance(value, list):
        return FrozenList(freeze(item) for item in value)
    return value


def thaw(value: Any) -> Any:
    """A plain, changeable deep copy of a snapshot."""
    if isinstance(value, dict):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, list):
        return [thaw(item) for item in value]
    return value


def parse_path(path: Path) -> list[str]:
    """``"claimant.first-name"``, ``"claimant[first-name]"`` or ``["claimant", "first-name"]``."""
    if isinstance(path, (list, tuple)):
        keys = [str(key) for key in path]
    elif isinstance(path, str):
        if "[" in path or "]" in path:
            match = _BRACKET_PATH.fullmatch(path)
            if match is None:
                raise ValueError(
                    f"{path!r} is not a path to an answer: its brackets do not pair up;"
                    " use e.g. 'claimant[first-name]' or 'claimant.first-name'"
                )
            head = match.group(1)
            keys = ([head] if head else []) + _BRACKETS.findall(match.group(2))
        else:
            keys = path.split(".")
    else:
        raise TypeError(f"a path is a string like 'claimant.first-name' or a list of keys, not {path!r}")
    if not keys or any(key == "" for key in keys):
        raise ValueError(f"{path!r} is not a path to an answer: use e.g. 'claimant.first-name'")
    return keys


def _refuse_hidden_name(key: str, path: Path) -> None:
    """Refuse to create a key starting with ``_``: forms skip such names, so no participant
    could ever change or clear the answer (one already there may still be changed)."""
    if key.startswith("_"):
        raise ValueError(
            f"{path!r} would create {key!r}: names starting with '_' are skipped by forms, so no"
            " participant could change it; give a name without the leading '_'"
        )


def check_json(value: Any, where: str = "value") -> None:
    """Refuse values that cannot be stored as session data (JSON)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        if isinstance(value, float) and value != value:
            raise ValueError(f"{where} is NaN, which cannot be stored")
        if isinstance(value, float) and value in (float("inf"), float("-inf")):
            raise ValueError(f"{where} is infinite, which cannot be stored")
        if isinstance(value, str):
            _check_text(value, where)
        return
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            check_json(item, f"{where}[{index}]")
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where} has the key {key!r}: keys of session data are strings")
            _check_text(key, f"the key {key!r} of {where}")
            check_json(item, f"{where}[{key!r}]")
        return
    raise TypeError(
        f"{where} is a {type(value).__name__}; session data holds text, numbers, true/false, lists and dicts"
    )


def _check_text(text: str, where: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{where} holds a lone surrogate, which cannot be stored") from None


#: A label this long or longer that starts a session's id would hide that id start.
ID_START_MIN = 4


def _check_not_an_id(name: str, records: list[SessionRecord]) -> None:
    """Refuse a label that is a session's id, or the start of one (its short id).

    ``proto.sessions[...]`` looks labels up before id starts, so such a label would make
    that id find the labelled session instead. Labels shorter than ID_START_MIN (``"P3"``)
    are allowed: nobody finds a session by so few characters, and any id may begin so.
    """
    if len(name) < ID_START_MIN:
        return
    folded = name.casefold()
    for record in records:
        if record.id.casefold().startswith(folded):
            what = "the id" if len(name) == len(record.id) else "the start of the id"
            raise ValueError(
                f"{name!r} is {what} of session {record.id[:8]}, so proto.sessions[{name!r}]"
                " could find the wrong session: give a label like 'P3' instead"
            )


def _child(container: Any, key: str, path: Path) -> Any:
    if isinstance(container, dict):
        if key not in container:
            raise KeyError(f"no answer at {path!r}: {key!r} is not there")
        return container[key]
    if isinstance(container, list):
        try:
            return container[int(key)]
        except (ValueError, IndexError):
            raise KeyError(f"no answer at {path!r}: the list has no item {key!r}") from None
    raise KeyError(f"no answer at {path!r}: {key!r} is inside a value that is not a dict or list")


def count_answers(data: Mapping[str, Any], defaults: Mapping[str, Any]) -> int:
    """How many answers a session holds: leaf values, not counting untouched defaults."""
    return sum(1 for _ in answers_given(data, defaults))


def answers_given(data: Mapping[str, Any], defaults: Mapping[str, Any]) -> Iterator[Any]:
    """The session's answers: its leaf values, but those still as the defaults set them."""
    stack: list[tuple[Any, Any]] = [(data, defaults)]
    while stack:
        item, default = stack.pop()
        if isinstance(item, dict):
            base = default if isinstance(default, dict) else {}
            stack.extend((value, base.get(key, _MISSING)) for key, value in item.items())
        elif item == default:
            continue
        elif isinstance(item, list):
            stack.extend((value, _MISSING) for value in item)
        else:
            yield item


_MISSING = object()


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"claimant": {"first-name": "Ada"}}`` becomes ``{"claimant.first-name": "Ada"}``.

    Lists of plain values stay lists (a checkbox group is one answer); lists holding dicts
    are numbered: ``people.0.name``.
    """
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, name + "."))
        elif isinstance(value, list) and any(isinstance(item, (dict, list)) for item in value):
            flat.update(flatten({str(i): item for i, item in enumerate(value)}, name + "."))
        else:
            flat[name] = thaw(value)
    return flat


def _when(timestamp: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC)


class _Label(str):
    """A session's label: reads as text, and ``session.label("P3")`` sets it."""

    def __call__(self, name: str, *, move: bool = False) -> Session:
        return self._session.set_label(name, move=move)  # type: ignore[attr-defined,no-any-return]


class Session:
    """One participant's session, read from the store each time you look."""

    def __init__(self, sessions: Sessions, session_id: str) -> None:
        self._sessions = sessions
        self.id = session_id

    # ------------------------------------------------------------------ reading

    def _record(self) -> SessionRecord:
        record = self._sessions.store.get(self.id)
        if record is None:
            raise SessionGone(f"session {self.id[:8]} is gone (removed, cleared away or expired)")
        return record

    @property
    def exists(self) -> bool:
        return self._sessions.store.get(self.id) is not None

    @property
    def data(self) -> FrozenDict:
        """The participant's answers now, as a read-only snapshot."""
        return freeze(self._record().data)  # type: ignore[no-any-return]

    @property
    def label(self) -> _Label:
        """The researcher's name for this session (``""`` until given); call it to set it."""
        label = _Label(self._record().label)
        label._session = self  # type: ignore[attr-defined]
        return label

    @property
    def created(self) -> dt.datetime:
        return _when(self._record().created)

    @property
    def last_active(self) -> dt.datetime:
        return _when(self._record().last_active)

    @property
    def current_page(self) -> str:
        """The path the participant requested last."""
        return self._record().current_page

    @property
    def pages(self) -> tuple[str, ...]:
        """The pages visited, oldest first (repeats of the same page in a row counted once)."""
        return tuple(self._record().pages)

    @property
    def short_id(self) -> str:
        return self.id[:8]

    def get(self, path: Path, default: Any = None) -> Any:
        """The answer at ``path``, or ``default`` when there is none."""
        value: Any = self._record().data
        try:
            for key in parse_path(path):
                value = _child(value, key, path)
        except KeyError:
            return default
        return freeze(value)

    @property
    def answers(self) -> int:
        """How many answers the participant has given (defaults they never touched not counted)."""
        return count_answers(self._record().data, self._sessions.defaults())

    # ------------------------------------------------------------------ changing

    def _change(self, kind: str, change: Callable[[SessionRecord], None]) -> Session:
        record = self._record()
        change(record)
        self._sessions.store.set(record, kind)
        return self

    def set(self, path: Path, value: Any) -> Session:
        """Store ``value`` at ``path`` (e.g. ``"claimant.first-name"``), creating dicts on the way.

        A new name starting with ``_`` is refused: no form could ever change it.
        """
        keys = parse_path(path)
        check_json(value)
        value = thaw(value) if not isinstance(value, tuple) else thaw(list(value))

        def change(record: SessionRecord) -> None:
            container: Any = record.data
            for depth, key in enumerate(keys[:-1]):
                if isinstance(container, list):
                    nxt = _child(container, key, path)
                else:
                    nxt = container.get(key)
                    if nxt is None:
                        if key not in container:
                            _refuse_hidden_name(key, path)
                        nxt = container[key] = {}
                if not isinstance(nxt, (dict, list)):
                    where = ".".join(keys[: depth + 1])
                    raise ValueError(
                        f"{where!r} holds {nxt!r}, not a dict: delete it first to store {path!r}"
                    )
                container = nxt
            last = keys[-1]
            if isinstance(container, list):
                try:
                    container[int(last)] = value
                except (ValueError, IndexError):
                    raise KeyError(f"no item {last!r} in the list at {path!r}") from None
            else:
                if last not in container:
                    _refuse_hidden_name(last, path)
                container[last] = value

        return self._change("data", change)

    def delete(self, path: Path) -> Session:
        """Remove the answer at ``path``; KeyError if there is none."""
        keys = parse_path(path)

        def change(record: SessionRecord) -> None:
            container: Any = record.data
            for key in keys[:-1]:
                container = _child(container, key, path)
            _child(container, keys[-1], path)
            if isinstance(container, list):
                del container[int(keys[-1])]
            else:
                del container[keys[-1]]

        return self._change("data", change)

    def update(self, answers: Mapping[str, Any]) -> Session:
        """Merge answers in by the kit's rules, as if the participant had submitted them."""
        if not isinstance(answers, Mapping):
            raise TypeError("update() takes a dict of answers, like {'first-name': 'Ada'}")
        check_json(answers, "answers")
        incoming = thaw(dict(answers))
        return self._change("data", lambda record: forms.store_data(incoming, record.data))

    def clear(self) -> Session:
        """Remove every answer: the session is back to the defaults, as after the kit's clear-data."""
        defaults = self._sessions.defaults()

        def change(record: SessionRecord) -> None:
            record.data = defaults

        return self._change("data", change)

    def set_label(self, name: str, *, move: bool = False) -> Session:
        """Give the session a name to know it by (``"P3"``); ``""`` removes it.

        A label names one session: one that another session holds is refused (LabelTaken)
        unless ``move=True`` takes it from that session on purpose. A label that is a session's
        id, or the start of one, is refused too: ``proto.sessions[...]`` would find the wrong
        session by it.
        """
        if not isinstance(name, str):
            raise TypeError("a label is text, like 'P3'")
        name = " ".join(name.split())
        if len(name) > LABEL_MAX:
            raise ValueError(f"a label is at most {LABEL_MAX} characters")
        holder = None
        if name:
            records = self._sessions.store.list()
            _check_not_an_id(name, records)
            holder = next(
                (r for r in records if r.id != self.id and r.label.casefold() == name.casefold()), None
            )
            if holder is not None and not move:
                raise LabelTaken(
                    f"{holder.label!r} is already the label of session {holder.id[:8]}: clear that"
                    " label first, or pass move=True to move it here"
                )
        record = self._record()  # this session still exists before the label leaves the other
        if holder is not None:
            holder.label = ""
            self._sessions.store.set(holder, "label")
        record.label = name
        self._sessions.store.set(record, "label")
        return self

    def remove(self) -> None:
        """Forget this session: the participant's next page starts a new, empty one."""
        if not self._sessions.store.delete(self.id):
            raise SessionGone(f"session {self.id[:8]} is already gone")

    # ------------------------------------------------------------------ showing

    def to_dict(self) -> dict[str, Any]:
        record = self._record()
        return {
            "id": record.id,
            "label": record.label,
            "created": _when(record.created).isoformat(),
            "last_active": _when(record.last_active).isoformat(),
            "current_page": record.current_page,
            "pages": list(record.pages),
            "data": record.data,
        }

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Session) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        try:
            record = self._record()
        except SessionGone:
            return f"<Session {self.short_id} (gone)>"
        name = f" {record.label!r}" if record.label else ""
        return f"<Session {self.short_id}{name} on {record.current_page or '-'}: {record.data!r}>"

    def _repr_html_(self) -> str:
        record = self._record()
        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
            f"<td>{html.escape(json.dumps(v, ensure_ascii=False))}</td></tr>"
            for k, v in flatten(record.data).items()
        )
        title = html.escape(record.label or self.short_id)
        page = html.escape(record.current_page or "-")
        return f"<p><strong>{title}</strong> on <code>{page}</code></p><table>{rows}</table>"


class SessionChange:
    """What ``proto.on_change`` callbacks receive."""

    def __init__(self, sessions: Sessions, event: ChangeEvent) -> None:
        self.kind = event.kind
        self.session_id = event.session_id
        self._record = event.record
        self._sessions = sessions

    @property
    def session(self) -> Session | None:
        """The session that changed, or None when it was removed."""
        return Session(self._sessions, self.session_id) if self._record is not None else None

    @property
    def data(self) -> FrozenDict | None:
        """The session's data right after the change (None when it was removed)."""
        return freeze(self._record.data) if self._record is not None else None

    def __repr__(self) -> str:
        return f"<SessionChange {self.kind} {self.session_id[:8]}>"


class Sessions:
    """The live sessions of a prototype, newest activity first."""

    def __init__(self, store: Store, defaults: Callable[[], dict[str, Any]]) -> None:
        self.store = store
        self.defaults = defaults

    def __iter__(self) -> Iterator[Session]:
        return iter([Session(self, record.id) for record in self.store.list()])

    def __len__(self) -> int:
        return len(self.store.list())

    def __bool__(self) -> bool:
        return len(self) > 0

    def __contains__(self, key: object) -> bool:
        try:
            self[key]  # type: ignore[index]
        except (KeyError, TypeError, IndexError):
            return False
        return True

    def __getitem__(self, key: str | int) -> Session:
        """By position (``0`` is the most recently active), id, label, or the start of an id."""
        if isinstance(key, int) and not isinstance(key, bool):
            records = self.store.list()
            if not records:
                raise IndexError("there are no sessions yet")
            try:
                return Session(self, records[key].id)
            except IndexError:
                raise IndexError(f"there are {len(records)} sessions; {key} is out of range") from None
        if not isinstance(key, str) or not key.strip():
            raise TypeError(
                "look a session up by its id, its label (like 'P3'), the start of its id, or a number"
            )
        key = key.strip()
        if self.store.get(key) is not None:
            return Session(self, key)
        records = self.store.list()
        for record in records:
            if record.id == key:
                return Session(self, record.id)
        labelled = [r for r in records if r.label and r.label.casefold() == key.casefold()]
        if labelled:
            return Session(self, labelled[0].id)
        prefixed = [r for r in records if r.id.startswith(key)]
        if len(prefixed) == 1:
            return Session(self, prefixed[0].id)
        if len(prefixed) > 1:
            raise KeyError(f"{key!r} starts {len(prefixed)} session ids: give more of the id")
        raise KeyError(f"no session with the id, label or id start {key!r}")

    def get(self, key: str | int, default: Any = None) -> Any:
        try:
            return self[key]
        except (KeyError, IndexError):
            return default

    def find(
        self, *, label: str | None = None, page: str | None = None, answer: str | None = None
    ) -> list[Session]:
        """Sessions whose label or current page contains the text, or with an answer containing
        it (the defaults a participant has not changed are not their answers)."""
        if answer is not None and label is None and page is None and _text_search_finds_all(answer):
            return self._find_answer(answer)
        found = []
        defaults = self.defaults()
        for record in self.store.list():
            if label is not None and label.casefold() not in record.label.casefold():
                continue
            if page is not None and page not in record.current_page:
                continue
            if answer is not None and not _mentions(record.data, answer, defaults):
                continue
            found.append(Session(self, record.id))
        return found

    def _find_answer(self, answer: str) -> list[Session]:
        """``find(answer=...)`` reading each session's stored JSON text first: only sessions
        whose text contains the answer are decoded and checked (thousands of sessions are
        searched while a participant waits for a page)."""
        needle = answer.casefold()
        found = []
        defaults = self.defaults()
        for sid, text in self.store.data_texts():
            if needle not in text.casefold():
                continue
            try:
                data = json.loads(text)  # already read: no second read of the store
            except ValueError:
                data = None
            if not isinstance(data, dict):
                record = self.store.get(sid)  # a damaged row: the store logs and discards it
                data = record.data if record is not None else None
            if data is not None and _mentions(data, answer, defaults):
                found.append(Session(self, sid))
        return found

    def clear_all(self) -> int:
        """Clear every session's answers (back to the defaults); returns how many."""
        sessions = list(self)
        for session in sessions:
            session.clear()
        return len(sessions)

    def remove_all(self) -> int:
        """Forget every session; returns how many there were."""
        count = len(self.store.list())
        self.store.clear()
        return count

    def to_records(self) -> list[dict[str, Any]]:
        return [session.to_dict() for session in self]

    def to_json(self, path: str | os.PathLike[str] | None = None, indent: int | None = 2) -> str:
        """Every session as JSON (written to ``path`` too, when given).

        The file holds participants' answers, so it is readable by you only (mode 0600), as
        the session store is: a file already there is made private too before it is written.
        """
        text = json.dumps(self.to_records(), ensure_ascii=False, indent=indent)
        if path is not None:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                os.fchmod(fd, 0o600)  # private before the old text gives way to the answers
                os.ftruncate(fd, 0)
            except BaseException:
                os.close(fd)
                raise
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
        return text

    def to_dataframe(self) -> Any:
        """One row per session, answers flattened to ``claimant.first-name`` columns."""
        try:
            import pandas as pd
        except ImportError as exc:
            raise ImportError("to_dataframe() needs pandas: pip install 'protonb[pandas]'") from exc
        defaults = self.defaults()
        rows = []
        for record in self.store.list():
            row = {
                "id": record.id,
                "label": record.label,
                "created": _when(record.created),
                "last_active": _when(record.last_active),
                "current_page": record.current_page,
                "answers": count_answers(record.data, defaults),
            }
            row.update(flatten(record.data))
            rows.append(row)
        columns = ["id", "label", "created", "last_active", "current_page", "answers"]
        frame = pd.DataFrame(rows)
        return frame if rows else pd.DataFrame(columns=columns)

    def __repr__(self) -> str:
        records = self.store.list()
        defaults = self.defaults()
        lines = [f"{len(records)} session(s)"]
        for record in records[:20]:
            name = record.label or record.id[:8]
            answers = count_answers(record.data, defaults)  # counted as the dashboard counts them
            lines.append(f"  {name:<10} {record.current_page or '-':<24} {answers} answer(s)")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        records = self.store.list()
        defaults = self.defaults()
        rows = "".join(
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>".format(
                html.escape(r.label),
                r.id[:8],
                html.escape(r.current_page or "-"),
                count_answers(r.data, defaults),
            )
            for r in records[:50]
        )
        more = f"<p>…and {len(records) - 50} more</p>" if len(records) > 50 else ""
        return (
            f"<p>{len(records)} session(s)</p><table><tr><th>label</th><th>id</th>"
            f"<th>page</th><th>answers</th></tr>{rows}</table>{more}"
        )


def _text_search_finds_all(text: str) -> bool:
    """Whether every answer containing ``text`` also contains it in the stored JSON text.

    JSON escapes quotes, backslashes and control characters, and writes None as ``null``
    where the answer search reads ``None``; any other text is in the JSON as it is.
    """
    needle = text.casefold()
    if needle in "none":
        return False
    return not any(ch in '"\\' or ord(ch) < 32 for ch in needle)


def _mentions(data: Mapping[str, Any], text: str, defaults: Mapping[str, Any]) -> bool:
    """Whether an answer given (not a default left as it was) contains ``text``."""
    needle = text.casefold()
    return any(needle in str(item).casefold() for item in answers_given(data, defaults))
