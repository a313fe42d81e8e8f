"""Serving behind a proxy that strips a path prefix (jupyter-server-proxy's ``/proxy/<port>/``).

The prototype's routes stay at ``/``; the prefix only changes the addresses protonb gives
out: links and form actions from ``url()``, the cookie's Path, and redirects. The prefix is
the one given to ``Prototype(url_prefix=...)`` / ``--url-prefix``, or else the request's
``X-Forwarded-Prefix`` header, which jupyter-server-proxy sends (trusting it is safe because
protonb binds 127.0.0.1 unless told otherwise; the value is checked to be a plain path
before it goes anywhere).

Redirects under a prefix are relative (``over-18``, ``../x``). jupyter-server-proxy 4.6 and
later prepend the prefix to a root-relative ``Location`` itself, so ``/prefix/over-18``
would arrive doubled, while older versions and other proxies pass it on unchanged; a
relative ``Location`` is resolved by the browser against the address it shows, which
already holds the prefix once, so it is right with and without the rewrite. Without any
prefix, redirects stay root-relative (``/over-18``), exactly as the kit sends them.
"""

from __future__ import annotations

import re

PREFIX_HEADER = "X-Forwarded-Prefix"
MAX_PREFIX_LENGTH = 512

# A path: segments of unreserved characters, percent escapes and a few safe sub-delimiters.
# No quotes, angle brackets, backslashes, spaces, ';' or ',' (which would end a cookie
# attribute), '?' or '#', and no scheme or host (it must start with exactly one '/').
_PREFIX = re.compile(r"(?:/(?:[A-Za-z0-9._~!$()*+=:@-]|%[0-9A-Fa-f]{2})*)+")


def clean_prefix(value: str | None) -> str | None:
    """``value`` as a URL prefix without its trailing slash (``""`` for none), or None if unsafe.

    ``"/user/ada/proxy/8000/"`` gives ``"/user/ada/proxy/8000"``; ``"/"`` and ``""`` give
    ``""``. Anything but a plain absolute path (a scheme, a host, ``//x``, quotes, spaces,
    control characters, ``..`` or empty segments) gives None.
    """
    if value is None:
        return None
    value = value.strip()
    if not value or value == "/":
        return ""
    if len(value) > MAX_PREFIX_LENGTH or "//" in value or not _PREFIX.fullmatch(value):
        return None
    if any(segment in (".", "..") for segment in value.split("/")):
        return None
    return value.rstrip("/")


def configured_prefix(value: str | None) -> str | None:
    """The prefix given by the researcher (``url_prefix=`` / ``--url-prefix``), checked.

    None means "not given: follow the X-Forwarded-Prefix header". A given value that is not a
    plain path raises ValueError with what to write instead.
    """
    if value is None:
        return None
    cleaned = clean_prefix(value if value.startswith("/") or not value else "/" + value)
    if cleaned is None:
        raise ValueError(
            f"url_prefix must be a plain path such as '/user/ada/proxy/3000', not {value!r}"
        )
    return cleaned


def request_prefix(configured: str | None, header: str | None) -> str:
    """The prefix for one request: the configured one, else the header's if it is safe."""
    if configured is not None:
        return configured
    return clean_prefix(header) or ""


def relative_location(request_path: str, target: str) -> str:
    """``target`` (a path starting with ``/``, maybe with a query) relative to ``request_path``.

    The browser resolves the answer against the address it asked for, so ``/name`` to
    ``/over-18`` is ``over-18`` and ``/a/b`` to ``/x?y=1`` is ``../x?y=1``; the prefix in
    front of the request path is kept once, whoever added it.
    """
    depth = max(request_path.count("/") - 1, 0)
    rest = target.lstrip("/")
    first = re.split(r"[/?#]", rest, maxsplit=1)[0]
    if depth:
        return "../" * depth + rest
    if not rest or rest[0] in "?#" or ":" in first:
        # "./" keeps an empty path, a bare query, or "a:b" (which would read as a scheme).
        return "./" + rest
    return rest
