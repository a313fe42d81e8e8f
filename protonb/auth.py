"""Password protection for a prototype shared beyond this machine.

With a password set, every page (but not the files in ``public/``) first asks for it. The
password page remembers where the participant was going and sends them there once the
password is right. A browser that gave the right password gets its own signed cookie,
separate from the session cookie; its value is derived from the password and the cookie key,
so changing the password (or ending all sessions) asks every browser again.

The password lives only in memory, in ``Password``; it is never stored in a session's data,
shown in the dashboard, or written to a log.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import os
import urllib.parse
from collections.abc import Mapping
from typing import TYPE_CHECKING

from . import forms
from .session import cookie_name

if TYPE_CHECKING:
    from .server import PageHandler

log = logging.getLogger("protonb")

PASSWORD_PATH = "/manage-prototype/password"
PASSWORD_ENV = "PROTONB_PASSWORD"
RETURN_FIELD = "returnURL"
_TOKEN_LABEL = b"protonb password cookie\x00"


class Password:
    """The prototype's password; its text never appears in ``repr`` or ``str``."""

    def __init__(self, text: str) -> None:
        if not isinstance(text, str) or not text:
            raise ValueError("The password must be a non-empty string")
        self._text = text

    def __repr__(self) -> str:
        return "<Password (hidden)>"

    __str__ = __repr__

    def matches(self, attempt: str) -> bool:
        """Whether ``attempt`` is the password; takes the same time however much of it is right."""
        given = hashlib.sha256(attempt.encode("utf-8", "surrogatepass")).digest()
        wanted = hashlib.sha256(self._text.encode("utf-8", "surrogatepass")).digest()
        return hmac.compare_digest(given, wanted)

    def token(self, key: str) -> str:
        """What the authorised browser's cookie holds: tied to this password and cookie key."""
        message = _TOKEN_LABEL + self._text.encode("utf-8", "surrogatepass")
        return hmac.new(key.encode("utf-8"), message, hashlib.sha256).hexdigest()


def password_from(explicit: str | None, environ: Mapping[str, str] | None = None) -> Password | None:
    """The password given to ``Prototype(password=...)``, else ``$PROTONB_PASSWORD``, else none."""
    if explicit is not None:
        return Password(explicit)
    value = (os.environ if environ is None else environ).get(PASSWORD_ENV, "")
    return Password(value) if value else None


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str, protected: bool) -> str | None:
    """The warning to print when binding ``host`` lets others in without a password."""
    if protected or is_loopback(host):
        return None
    return (
        f"protonb is listening on {host or 'every address'} without a password: anyone who can"
        " reach this machine can open the prototype. Set a password: Prototype(..., password=...),"
        f" the {PASSWORD_ENV} environment variable, or `protonb serve --password-env VAR`."
    )


def auth_cookie_name(prototype_id: str) -> str:
    return cookie_name(prototype_id) + "-auth"


def safe_return(raw: str | None) -> str:
    """Where to go after the password page: a path on this prototype, never another site."""
    from .server import safe_location

    target = safe_location(raw or "/")
    if not target.startswith("/") or target.startswith(PASSWORD_PATH):
        return "/"
    return target


def stop_at_password(handler: PageHandler, method: str, path: str) -> bool:
    """Answer the request with the password page or a redirect to it, when it needs one.

    Returns False when the browser is authorised and the request goes on as usual.
    """
    password: Password = handler.site.password
    if path == PASSWORD_PATH:
        if method == "POST":
            _check(handler, password)
        else:
            _show(handler, handler.get_query_argument(RETURN_FIELD, "/"), wrong=False)
        return True
    if _authorised(handler, password):
        return False
    wanted = handler.request.uri or "/"
    handler._redirect(PASSWORD_PATH + "?" + urllib.parse.urlencode({RETURN_FIELD: wanted}))
    return True


def _current_key(handler: PageHandler) -> str:
    secrets = handler.settings["cookie_secret"]
    if isinstance(secrets, dict):
        return str(secrets[handler.settings.get("key_version", 0)])
    return str(secrets)


def _authorised(handler: PageHandler, password: Password) -> bool:
    name = auth_cookie_name(handler.settings["prototype_id"])
    try:
        value = handler.get_signed_cookie(
            name, max_age_days=handler.site.lifetime_hours / 24 + 1, min_version=2
        )
    except (ValueError, TypeError, UnicodeDecodeError):
        return False
    if not value:
        return False
    return hmac.compare_digest(value, password.token(_current_key(handler)).encode("ascii"))


def _show(handler: PageHandler, return_to: str, wrong: bool) -> None:
    handler.set_status(401 if wrong else 200)
    handler.set_header("Cache-Control", "no-store")
    handler._page("protonb/password.html", return_url=safe_return(return_to), wrong=wrong)


def _check(handler: PageHandler, password: Password) -> None:
    try:
        fields = handler._parse_body()
    except forms.FormError as problem:
        handler._limit_page(problem)
        return
    attempt = fields.get("password")
    return_to = fields.get(RETURN_FIELD)
    return_to = return_to if isinstance(return_to, str) else handler.get_query_argument(RETURN_FIELD, "/")
    if not isinstance(attempt, str) or not password.matches(attempt):
        log.info("a wrong password was given on the password page")
        _show(handler, return_to, wrong=True)
        return
    secure = handler.request.protocol == "https" or (
        handler.request.headers.get("X-Forwarded-Proto", "").lower() == "https"
    )
    handler.set_signed_cookie(
        auth_cookie_name(handler.settings["prototype_id"]),
        password.token(_current_key(handler)),
        expires_days=handler.site.lifetime_hours / 24,
        httponly=True,
        samesite="Lax",
        secure=secure,
        path=handler.url_prefix + "/",
    )
    handler._redirect(safe_return(return_to), 303)
