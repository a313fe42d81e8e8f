"""Sessions as the server sees them: ids, the cookie that carries one, and change tracking."""

from __future__ import annotations

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


def cookie_name(prototype_id: str) -> str:
    """Each prototype has its own cookie name, so prototypes on other ports never clash."""
    return f"protonb-{prototype_id}"


def fingerprint(data: dict[str, Any]) -> str:
    """A text that is equal for equal data, to tell whether a request changed it."""
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


@dataclass
class LiveSession:
    """The session of one request: its record, the data the views see, and whether it changed."""

    record: SessionRecord
    is_new: bool
    data: dict[str, Any]
    loaded_fingerprint: str = ""
    cookie_fresh: bool = True
    touched_at: float = field(default_factory=time.time)

    @classmethod
    def start(cls, data: dict[str, Any]) -> LiveSession:
        record = SessionRecord(id=new_session_id(), data={})
        return cls(record=record, is_new=True, data=data, loaded_fingerprint="", cookie_fresh=False)

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
        return self.is_new or fingerprint(self.data) != self.loaded_fingerprint


def expired(record: SessionRecord, lifetime_hours: float, now: float | None = None) -> bool:
    now = time.time() if now is None else now
    return record.last_active < now - lifetime_hours * 3600
