"""Sessions as the server sees them: ids, the cookie that carries one, and change tracking."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from .store import SessionRecord

#: A session lasts this long after the participant's last request, unless told otherwise.
DEFAULT_LIFETIME_HOURS = 24.0
#: The cookie is signed again (and its expiry pushed on) when it is older than this.
COOKIE_REFRESH_SECONDS = 3600

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


def cookie_name(prototype_id: str) -> str:
    """Each prototype has its own cookie name, so prototypes on other ports never clash."""
    return f"protonb-{prototype_id}"


def fingerprint(data: dict[str, Any]) -> str:
    """A text that is equal for equal data, to tell whether a request changed it."""
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


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
    touched_at: float = field(default_factory=time.time)
    keep: bool = True

    @classmethod
    def start(cls, data: dict[str, Any], session_id: str | None = None, keep: bool = False) -> LiveSession:
        """A new session holding ``data`` (the defaults); stored only if ``keep`` or changed."""
        record = SessionRecord(id=session_id or new_session_id(), data={})
        return cls(
            record=record,
            is_new=True,
            data=data,
            loaded_fingerprint=fingerprint(data),
            cookie_fresh=False,
            keep=keep,
        )

    @classmethod
    def resume(cls, record: SessionRecord, data: dict[str, Any], cookie_fresh: bool) -> LiveSession:
        return cls(
            record=record,
            is_new=False,
            data=data,
            loaded_fingerprint=fingerprint(record.data),
            cookie_fresh=cookie_fresh,
        )

    def data_changed(self) -> bool:
        return fingerprint(self.data) != self.loaded_fingerprint

    def worth_storing(self) -> bool:
        """Whether the session should be written to the store after this request."""
        return not self.is_new or self.keep or self.data_changed()


def expired(record: SessionRecord, lifetime_hours: float, now: float | None = None) -> bool:
    now = time.time() if now is None else now
    return record.last_active < now - lifetime_hours * 3600
