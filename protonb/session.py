"""Sessions as the server sees them: ids, the cookie that carries one, and change tracking."""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import numbers
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from .store import SessionRecord, dumps_data

#: A session lasts this long after the participant's last request, unless told otherwise.
DEFAULT_LIFETIME_HOURS = 24.0

#: Ten years, more than any study needs (far longer overflows a cookie's expiry date).
MAX_SESSION_HOURS = 10 * 365 * 24


def check_session_hours(hours: object, name: str = "session_hours") -> float:
    """``hours`` as a float, if it is a number of hours a session can last (more than 0,
    at most ten years); ``name`` is what the message calls it (``--session-hours`` on the
    command line)."""
    if isinstance(hours, bool) or not isinstance(hours, numbers.Real):
        raise TypeError(f"{name} must be a number of hours, such as 24, not {hours!r}")
    if not math.isfinite(hours) or not 0 < hours <= MAX_SESSION_HOURS:
        raise ValueError(
            f"{name} must be more than 0 and at most {MAX_SESSION_HOURS} (ten years), not {hours!r}"
        )
    return float(hours)


#: The cookie is signed again (and its expiry pushed on) when it is older than this.
COOKIE_REFRESH_SECONDS = 3600
#: A request that changes neither the answers nor the page the participant is on is written
#: to the store (its "last active" time) only when the last write is older than this.
VISIT_SAVE_SECONDS = 1.0

_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{22,64}$")


def new_session_id() -> str:
    """A random, unguessable session id (128 bits and more)."""
    return secrets.token_urlsafe(18)


def is_session_id(value: str) -> bool:
    return bool(_SESSION_ID.match(value))


def successor_id(secret: str, session_id: str) -> str:
    """The id of the session that follows ``session_id`` when that one is gone.

    A browser whose cookie names a session that was never stored, was removed or has
    expired gets a new session with this id. It is derived, not random, so that requests
    sent together with the same old cookie (a double-clicked button) land in one session
    instead of each starting its own; without the secret it cannot be guessed.
    """
    digest = hmac.new(secret.encode(), b"successor:" + session_id.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode("ascii")


def cookie_fresh(signed_value: str | None, now: float | None = None) -> bool:
    """Whether a session cookie was signed less than COOKIE_REFRESH_SECONDS ago.

    ``signed_value`` is the cookie exactly as the browser sent it, already checked with
    ``get_signed_cookie``; its signing time is read from Tornado's version 2 format
    (``2|1:key|10:time|...``) instead of checking the signature a second time. Anything
    unreadable counts as not fresh, so the cookie is signed again.
    """
    when = signed_at(signed_value) if signed_value else None
    if when is None:
        return False
    now = time.time() if now is None else now
    return when >= now - COOKIE_REFRESH_SECONDS


def signed_at(signed_value: str) -> int | None:
    """When a Tornado version 2 signed cookie (``2|1:key|10:time|...``) was signed, if readable."""
    fields = signed_value.split("|", 3)
    try:
        return int(fields[2].partition(":")[2]) if fields[0] == "2" else None
    except (IndexError, ValueError):
        return None


class VerifiedCookies:
    """Signed cookie values whose signature was found good, so that each is checked once.

    A browser sends the same cookie with every request; checking its HMAC again gives the
    same answer. Only good values are kept (the most recent ``size``), an entry counts only
    while its signing time is within the allowed age, and ``clear`` (new keys) forgets all.
    """

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._known: dict[tuple[str, str], tuple[str, int]] = {}

    def get(self, name: str, signed_value: str, max_age_days: float, now: float | None = None) -> str | None:
        """The value inside ``signed_value`` if it was verified before and is not too old."""
        known = self._known.get((name, signed_value))
        if known is None:
            return None
        now = time.time() if now is None else now
        return known[0] if known[1] >= now - max_age_days * 86400 else None

    def add(self, name: str, signed_value: str, value: str) -> None:
        """Remember that ``signed_value`` (cookie ``name``) was verified and holds ``value``."""
        when = signed_at(signed_value)
        if when is None:
            return
        known = self._known
        if len(known) >= self.size:
            del known[next(iter(known))]  # the oldest
        known[(name, signed_value)] = (value, when)

    def clear(self) -> None:
        self._known.clear()


def cookie_name(prototype_id: str) -> str:
    """Each prototype has its own cookie name, so prototypes on other ports never clash."""
    return f"protonb-{prototype_id}"


@dataclass
class LiveSession:
    """The session of one request: its record, the data the views see, and whether it changed.

    A new session is stored only when it is worth keeping (``keep``): when the request
    changes its data, or when the browser has shown that it keeps cookies by sending back a
    valid one. Otherwise the browser only gets a cookie, so bots, one-off requests and
    garbage cookies never fill the researcher's list with empty sessions.
    """

    record: SessionRecord
    is_new: bool
    data: dict[str, Any]
    loaded_fingerprint: str = ""
    cookie_fresh: bool = True
    keep: bool = True
    #: The visit fields as stored before this request: last active, current page, pages.
    loaded_visit: tuple[float, str, list[str]] = (0.0, "", [])
    #: Whether loading added default keys the stored data did not have (to be stored).
    defaults_added: bool = False

    @classmethod
    def start(cls, data: dict[str, Any], session_id: str | None = None, keep: bool = False) -> LiveSession:
        """A new session holding ``data`` (the defaults); stored only if ``keep`` or changed."""
        record = SessionRecord(id=session_id or new_session_id(), data={})
        return cls(
            record=record,
            is_new=True,
            data=data,
            loaded_fingerprint=dumps_data(data),
            cookie_fresh=False,
            keep=keep,
        )

    @classmethod
    def resume(cls, record: SessionRecord, data: dict[str, Any], cookie_fresh: bool) -> LiveSession:
        stored = record.stored_data
        return cls(
            record=record,
            is_new=False,
            data=data,
            loaded_fingerprint=stored if stored is not None else dumps_data(record.data),
            cookie_fresh=cookie_fresh,
            loaded_visit=(record.last_active, record.current_page, list(record.pages)),
            defaults_added=len(data) != len(record.data),
        )

    def data_changed(self) -> bool:
        try:
            return dumps_data(self.data) != self.loaded_fingerprint
        except ValueError:  # NaN or Infinity: cannot be what was stored
            return True

    def worth_storing(self) -> bool:
        """Whether the session should be written to the store after this request."""
        return not self.is_new or self.keep or self.data_changed()

    def visit_worth_saving(self) -> bool:
        """Whether a request that left the answers alone must still write its visit.

        It must when it moved the participant to another page, or when the stored "last
        active" time is more than VISIT_SAVE_SECONDS old; repeated requests for the same page
        within that time (a reload, a redirect's GET, a load test) write nothing.
        """
        last_active, page, pages = self.loaded_visit
        record = self.record
        return (
            self.is_new
            or record.current_page != page
            or record.pages != pages
            or record.last_active - last_active >= VISIT_SAVE_SECONDS
        )


def expired(record: SessionRecord, lifetime_hours: float, now: float | None = None) -> bool:
    now = time.time() if now is None else now
    return record.last_active < now - lifetime_hours * 3600
