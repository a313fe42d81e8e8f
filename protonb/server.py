"""The Tornado application that serves a prototype and keeps each participant's answers.

A request for a file (anything under ``/public/``, or a GET of a path like ``/favicon.ico``
that no template or route answers) never loads or stores a session. Every other request
goes through the same steps, in the kit's order:
read the query string and body (a limit broken answers 4xx and stores nothing), load the
participant's session from the signed cookie, store the fields by the kit's rules, run a
route function if one matches, save the session, and only then answer: render the view,
redirect a POST to GET, or show the 404 page.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import posixpath
import re
import time
import urllib.parse
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import tornado.httputil
import tornado.web

from . import auth, forms, logbook, proxy
from .config import CookieKeys, PrototypeFolder
from .routing import Redirect, Render, Request, Router, RoutesFile, SessionView
from .session import (
    DEFAULT_LIFETIME_HOURS,
    LiveSession,
    VerifiedCookies,
    cookie_fresh,
    cookie_name,
    expired,
    is_session_id,
    signed_at,
    successor_id,
)
from .store import SessionRecord, Store, dumps_data
from .templating import describe_template_error, find_view, make_environment
from .watch import FolderWatch

log = logging.getLogger("protonb")
access_log = logging.getLogger("protonb.access")

PAGES_DIR = Path(__file__).parent / "pages"
MANAGE_PREFIX = "/manage-prototype/"
CLEAR_DATA_PATH = "/manage-prototype/clear-data"
TORNADO_FIELD_CEILING = 20_000
#: A body announced as larger than this is not read at all (the connection is closed).
DISCARD_LIMIT_BYTES = 64 * 1024 * 1024
_POST_REDIRECTS = re.compile(r"/[^.]+")
_SUFFIX = re.compile(r"\.(html|htm|njk)$")
#: A returning browser whose cookie was signed this recently came from its first page.
FIRST_PAGE_SECONDS = 600
#: A path of plain segments (letters, digits, - and _): already as safe_location would make it.
_PLAIN_PATH = re.compile(r"(?:/[A-Za-z0-9_-]+)+")
_FORM_TYPE = "application/x-www-form-urlencoded"
_JSON_TYPE = "application/json"


@dataclass
class PrototypeSite:
    """Everything the handlers need, handed to them through the application settings."""

    folder: PrototypeFolder
    store: Store
    notebook_routes: Router = field(default_factory=Router)
    lifetime_hours: float = DEFAULT_LIFETIME_HOURS
    #: The prefix links and redirects carry; None: the request's X-Forwarded-Prefix header.
    url_prefix: str | None = None
    #: With a password (auth.Password), every page asks for it first.
    password: Any = None

    def __post_init__(self) -> None:
        #: Which prototype this is, to the logbook: its folder.
        self.name = str(self.folder.root)
        self.env = make_environment(self.folder.templates, PAGES_DIR)
        self.routes_file = RoutesFile(self.folder.routes_path)
        self.keys: CookieKeys = self.folder.cookie_keys()
        self.verified_cookies = VerifiedCookies()
        self._apps: weakref.WeakSet[tornado.web.Application] = weakref.WeakSet()
        # Edits to the views, routes.py and the defaults are told by the kernel (watch.py);
        # without that, each request checks each file's time as it is used.
        self.files = FolderWatch()
        self.files.add("templates", self.folder.templates, tree=True)
        self.files.add("routes", self.folder.routes_path)
        self.files.add("defaults", self.folder.defaults_path)
        if self.files.active:
            self.env.auto_reload = False

    def notice_changes(self) -> None:
        """Take in the files changed since the last request: called once as each begins.

        Routes and defaults ask ``files.changed`` when they are used: True once after each
        change (and always without a working watch), so each file is checked only then.
        """
        files = self.files
        if not files.active:
            return
        files.poll()
        if not files.active:  # the watch gave up just now: views are checked by time again
            self.env.auto_reload = True
        if files.changed("templates"):
            self.env.cache.clear()  # type: ignore[union-attr]

    def close(self) -> None:
        self.files.close()

    def serve_with(self, app: tornado.web.Application) -> None:
        """Give ``app`` this prototype's cookie keys now and whenever they are rotated."""
        self._apps.add(app)
        app.settings.update(cookie_secret=self.keys.secrets, key_version=self.keys.key_version)

    def rotate_cookie_keys(self) -> None:
        """A new cookie secret, in use at once by every running app: old cookies stop working."""
        self.keys = self.folder.rotate_cookie_keys()
        self.verified_cookies.clear()
        for app in list(self._apps):
            self.serve_with(app)

    def find_route(self, method: str, path: str) -> Any:
        found = self.notebook_routes.match(method, path)
        if found:
            return found
        return self.routes_file.current(check=self.files.changed("routes")).match(method, path)

    def defaults(self) -> dict[str, Any]:
        return self.folder.defaults(check=self.files.changed("defaults"))

    def with_defaults(self, stored: dict[str, Any]) -> dict[str, Any]:
        return self.folder.with_defaults(stored, check=self.files.changed("defaults"))


def safe_location(location: str) -> str:
    """A redirect target that cannot leave the site: a path with one leading slash.

    A scheme and host are dropped, backslashes count as slashes, and several leading slashes
    become one, so ``//attacker/x``, ``/\\attacker`` and ``https://x/y`` all stay here.
    """
    if _PLAIN_PATH.fullmatch(location):  # the usual POST redirect: nothing to tidy
        return location
    return _tidy_location(location)


def _tidy_location(location: str) -> str:
    """safe_location's work for any target but a plain path."""
    location = location.replace("\\", "/").strip()
    location = "".join(ch for ch in location if ord(ch) >= 32).strip()
    if location.startswith("/"):
        location = "/" + location.lstrip("/")  # "//host/x" is the path /host/x, not a host
    parts = urllib.parse.urlsplit(location)
    path = re.sub(r"/{2,}", "/", parts.path)
    if path.startswith("/"):
        # "/.//x" and "/a/..//x" would reach the browser as the path "//x": resolve dots here.
        tidy = posixpath.normpath(path)
        path = "/" + tidy.lstrip("/") + ("/" if path.endswith("/") and tidy != "/" else "")
    location = urllib.parse.urlunsplit(("", "", path, parts.query, parts.fragment))
    if not location.startswith("/"):
        return location or "/"
    return "/" + location.lstrip("/")


@tornado.web.stream_request_body
class PageHandler(tornado.web.RequestHandler):
    """Serves every page of the prototype and keeps the participant's answers.

    The body is read as it streams in, so Tornado never parses it and a body over the
    limit is counted but not kept.
    """

    site: PrototypeSite

    def initialize(self, site: PrototypeSite) -> None:
        self.site = site
        logbook.serving(site.name)  # this request's problems are this prototype's
        self.url_prefix = proxy.request_prefix(site.url_prefix, self.request.headers.get(proxy.PREFIX_HEADER))
        self.live: LiveSession | None = None
        self._body = bytearray()
        self._body_size = 0
        self._route_found = False

    def prepare(self) -> None:
        """A body announced over the limit is read and thrown away, to answer with the limit page;
        one too big even for that is answered at once, and the connection closed unread."""
        try:
            length = int(self.request.headers.get("Content-Length", "0"))
        except ValueError:
            return
        if forms.BODY_LIMIT_BYTES < length <= DISCARD_LIMIT_BYTES:
            self.request.connection.set_max_body_size(length)  # type: ignore[union-attr]
        elif length > DISCARD_LIMIT_BYTES:
            self._body_size = length
            self._limit_page(self._size_problem())

    def data_received(self, chunk: bytes) -> None:
        self._body_size += len(chunk)
        if self._body_size <= forms.BODY_LIMIT_BYTES:
            self._body += chunk

    def set_default_headers(self) -> None:
        self.set_header("X-Robots-Tag", "noindex")

    # ------------------------------------------------------------------ entry points

    def get(self, *_: Any) -> None:
        self._respond("GET")

    def head(self, *_: Any) -> None:
        self._respond("GET")

    def post(self, *_: Any) -> None:
        self._respond("POST")

    # ------------------------------------------------------------------ the steps

    def _respond(self, method: str) -> None:
        path = self.request.path
        if self.site.password is not None and auth.stop_at_password(self, method, path):
            return
        self.site.notice_changes()
        if method == "GET" and ("." in path or "%" in path) and self._asks_for_a_file(path):
            self._not_found(path)  # no session loaded, stored or touched; no cookie
            return
        try:
            query = forms.parse_query(self.request.query)
            body = self._parse_body() if method == "POST" else {}
        except forms.FormError as problem:
            self._limit_page(problem)
            return
        managed = path.startswith(MANAGE_PREFIX)
        live = self.live = self._load_session()
        if managed:
            view_data: dict[str, Any] = {}
        else:
            forms.store_data(body, live.data)
            forms.store_data(query, live.data)
            view_data = live.data
        if _names_a_page(path):
            live.record.visit(path)
        outcome = self._run_route(method, path, query, body, live)
        if managed and method == "POST" and path == CLEAR_DATA_PATH and outcome is None:
            if not live.is_new:  # a new session holds only the defaults: nothing to clear or store
                live.data.clear()
            view_data = {}
        # Without fields, a route function or a management page, the data is what was loaded.
        self._save(live, changeable=bool(query or body) or managed or self._route_found)
        if outcome is not None:
            self._finish_route(outcome, live)
            return
        if managed:
            self._manage_page(method, path)
        elif method == "POST":
            if _POST_REDIRECTS.fullmatch(path):
                raw = self.request.query
                kept = forms.redirect_query(raw, query) if raw else ""
                self._redirect(path + ("?" + kept if kept else ""))
            else:
                self._not_found(path)
        elif _SUFFIX.search(path):
            self._redirect(_SUFFIX.sub("", path))
        else:
            self._render_view(path, view_data)

    def _asks_for_a_file(self, path: str) -> bool:
        """Whether a GET asks for a file (``/favicon.ico``, ``/x.css``) rather than a page.

        Browsers fetch some files by themselves (``/favicon.ico``), and a missing stylesheet
        is asked for on every page: such requests must leave no session behind. A file is a
        path whose last segment has a suffix other than a view's (``.html``) that neither a
        route function nor a template answers. Only paths with a dot are asked.
        """
        last = urllib.parse.unquote(path[path.rfind("/") + 1 :])
        if "." not in last or _SUFFIX.search(last):
            return False
        if self.site.find_route("GET", path):
            return False
        try:
            return find_view(self.site.env, self.site.folder.templates, path) is None
        except Exception:  # a view that does not compile: a page, which shows its error
            return False

    def _parse_body(self) -> dict[str, Any]:
        raw_type = self.request.headers.get("Content-Type", "")
        media_type, _, params = raw_type.partition(";")
        media_type = media_type.strip().lower()
        if media_type not in (_FORM_TYPE, _JSON_TYPE):
            return {}
        charset = _charset(params)
        if charset and charset not in ("utf-8", "utf8"):
            raise forms.FormError(
                415, "charset", f"The form was sent as {charset}; protonb reads UTF-8 only."
            )
        if self._body_size > forms.BODY_LIMIT_BYTES:
            raise self._size_problem()
        raw = bytes(self._body)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise forms.FormError(400, "encoding", "The form was not sent as UTF-8 text.") from exc
        if media_type == _JSON_TYPE:
            return forms.parse_json(text)
        return forms.parse_body(text)

    def _size_problem(self) -> forms.FormError:
        return forms.FormError(
            413,
            "body size",
            f"The form sent {self._body_size:,} bytes; the limit is {forms.BODY_LIMIT_BYTES:,} (100 KB).",
        )

    def _load_session(self) -> LiveSession:
        """The session the signed cookie names; else a new one.

        Without a valid cookie the new session is stored only if this request changes its
        data. A valid cookie whose session is gone (never stored, removed by the researcher,
        expired) proves the browser keeps cookies: its new session is stored at once, with
        the page the browser came from (its first page, which was not stored) as its first.
        Requests for files never get here (``_asks_for_a_file``).
        """
        site = self.site
        name = cookie_name(self.settings["prototype_id"])
        raw = self._read_cookie(name, max_age_days=site.lifetime_hours / 24 + 1)
        if not raw or not is_session_id(raw):
            return LiveSession.start(site.defaults())
        record = self._current_record(raw)
        if record is not None:
            fresh = cookie_fresh(self.get_cookie(name))
            return LiveSession.resume(record, site.with_defaults(record.data), fresh)
        successor = successor_id(site.keys.secrets[site.keys.key_version], raw)
        record = self._current_record(successor)
        if record is not None:
            return LiveSession.resume(record, site.with_defaults(record.data), cookie_fresh=False)
        live = LiveSession.start(site.defaults(), successor, keep=True)
        signed = signed_at(self.get_cookie(name) or "")
        if signed is not None and time.time() - signed < FIRST_PAGE_SECONDS:
            # A cookie this young was given by the first page, most likely: the browser's.
            # An older one named a session that is gone (removed, expired), and the page it
            # comes from was the previous session's.
            came_from = self._referring_page()
            if came_from:
                live.record.visit(came_from)
        return live

    def _referring_page(self) -> str:
        """The page of this prototype the browser came from (its ``Referer``), or ``""``.

        Read only when a returning browser's session is first stored: its first page gave it
        a cookie and stored nothing, and the next page's Referer is usually that first page.
        Another site's address, another prototype's path or a file's is ignored.
        """
        referer = self.request.headers.get("Referer")
        if not referer:
            return ""
        try:
            parts = urllib.parse.urlsplit(referer)
        except ValueError:
            return ""
        hosts = {self.request.host.lower(), self.request.headers.get("X-Forwarded-Host", "").lower()}
        if not parts.netloc or parts.netloc.lower() not in hosts:
            return ""
        path, prefix = parts.path, self.url_prefix
        if prefix:
            if path != prefix and not path.startswith(prefix + "/"):
                return ""
            path = path[len(prefix) :] or "/"
        if not path.startswith("/") or path.startswith("/public/") or not _names_a_page(path):
            return ""
        return path

    def _current_record(self, session_id: str) -> SessionRecord | None:
        """The stored session, or None; an expired one is deleted from the store here."""
        record = self.site.store.get(session_id)
        if record is not None and expired(record, self.site.lifetime_hours):
            self.site.store.delete(session_id)
            return None
        return record

    def _read_cookie(self, name: str, max_age_days: float) -> str | None:
        signed = self.get_cookie(name)
        if not signed:
            return None
        verified = self.site.verified_cookies
        known = verified.get(name, signed, max_age_days)
        if known is not None:
            return known
        try:
            value = self.get_signed_cookie(name, value=signed, max_age_days=max_age_days, min_version=2)
            text = value.decode("ascii") if value else None
        except (ValueError, UnicodeDecodeError, TypeError):
            return None
        if text:
            verified.add(name, signed, text)
        return text

    def _save(self, live: LiveSession, changeable: bool = True) -> None:
        """Persist the session before anything is answered; set the cookie when needed.

        ``changeable`` False: this request had nothing that could change the data, so it is
        not compared with what was stored (unless loading it added new default keys).
        """
        record = live.record
        if not live.worth_storing():
            self._set_session_cookie(record)
        elif live.is_new or ((changeable or live.defaults_added) and live.data_changed()):
            record.data = live.data
            self.site.store.set(record, "created" if live.is_new else "data")
            if live.is_new or not live.cookie_fresh:
                self._set_session_cookie(record)
            live.is_new = False
        else:
            if live.visit_worth_saving():
                self.site.store.touch(record)
            if not live.cookie_fresh:
                self._set_session_cookie(record)

    def _set_session_cookie(self, record: SessionRecord) -> None:
        secure = self.request.protocol == "https" or (
            self.request.headers.get("X-Forwarded-Proto", "").lower() == "https"
        )
        self.set_signed_cookie(
            cookie_name(self.settings["prototype_id"]),
            record.id,
            expires_days=self.site.lifetime_hours / 24,
            httponly=True,
            samesite="Lax",
            secure=secure,
            path=self.url_prefix + "/",
        )

    # ------------------------------------------------------------------ route functions

    def _run_route(
        self, method: str, path: str, query: dict[str, Any], body: dict[str, Any], live: LiveSession
    ) -> Redirect | Render | None:
        found = self.site.find_route(method, path)
        if not found:
            return None
        route, params = found
        self._route_found = True
        req = Request(
            method,
            path,
            query,
            body,
            SessionView(live.record.id, live.data),
            dict(self.request.headers),
        )
        req.params = params  # type: ignore[attr-defined]
        stored = json.dumps(live.data)
        try:
            outcome = route.function(req)
        except (Exception, SystemExit) as exc:  # sys.exit() in a route must not stop the server
            log.exception("the route function %s for %s %s failed", route.function.__name__, method, path)
            return _RouteFailure(exc, route.function.__name__)  # type: ignore[return-value]
        if live.data is not req.session.data and isinstance(req.session.data, dict):
            live.data.clear()
            live.data.update(req.session.data)
        try:
            dumps_data(live.data).encode("utf-8")  # strict JSON: no NaN, no lone surrogates
        except (TypeError, ValueError) as exc:
            # It cannot be stored: keep the answers as they were before the function ran.
            live.data.clear()
            live.data.update(json.loads(stored))
            name = route.function.__name__
            log.error("the route function %s put data that cannot be stored: %s", name, exc)
            problem = TypeError(f"it put data that cannot be stored ({exc}); use text, numbers, lists, dicts")
            return _RouteFailure(problem, name)  # type: ignore[return-value]
        if outcome is None or isinstance(outcome, (Redirect, Render)):
            return outcome
        log.error(
            "the route function %s returned %r: return req.redirect(...), req.render(...) or nothing",
            route.function.__name__,
            outcome,
        )
        return _RouteFailure(TypeError(f"returned {type(outcome).__name__}"), route.function.__name__)  # type: ignore[return-value]

    def _finish_route(self, outcome: Any, live: LiveSession) -> None:
        if isinstance(outcome, Redirect):
            self._redirect(outcome.location, outcome.status)
        elif isinstance(outcome, Render):
            name = outcome.template
            name = name if name.endswith(".html") else name.lstrip("/") + ".html"
            self._render(name, live.data, outcome.status, **outcome.values)
        else:
            self.set_status(500)
            self._page("protonb/error.html", message=_route_failure_text(outcome), problem=None)

    # ------------------------------------------------------------------ answers

    def _redirect(self, location: str, status: int = 302) -> None:
        target = safe_location(location)
        if target.startswith("/") and self.url_prefix:
            target = proxy.relative_location(self.request.path, target)
        self.set_status(status)
        self.set_header("Location", target)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(f"Found. Redirecting to {target}")

    def _render_view(self, path: str, data: dict[str, Any]) -> None:
        site = self.site
        try:
            template = find_view(site.env, site.folder.templates, path)
        except Exception as exc:  # the view does not compile
            self._template_failed(exc)
            return
        if template is None:
            self._not_found(path)
            return
        self._render(template, data)

    def _render(
        self, template: str | jinja2.Template, data: dict[str, Any], status: int = 200, /, **values: Any
    ) -> None:
        # A route's own values may be called anything (name=, status=, even data=).
        context = {"data": data, "url_prefix": self.url_prefix, **values}
        try:
            if isinstance(template, str):
                template = self.site.env.get_template(template)
            html = template.render(context)
        except Exception as exc:
            self._template_failed(exc)
            return
        self.set_status(status)
        self.finish(html)

    def _template_failed(self, exc: Exception) -> None:
        problem = describe_template_error(exc, self.site.folder.templates)
        hint = f" ({problem.hint})" if problem.hint else ""
        log.error("template %s line %s failed: %s%s", problem.template, problem.line, problem.message, hint)
        self.set_status(500)
        self._page("protonb/error.html", problem=problem, message="")

    def compute_etag(self) -> str | None:
        """No ETag: every page shows one participant's answers as they are now, so a page is
        never sent again unchanged on purpose, and hashing each one costs time."""
        return None

    def _page(self, name: str, **values: Any) -> None:
        html = self.site.env.get_template(name).render(url_prefix=self.url_prefix, **values)
        self.finish(html)

    def _not_found(self, path: str) -> None:
        self.set_status(404)
        stem = urllib.parse.unquote(path).strip("/")
        suggestion = f"{stem}.html" if stem and "." not in stem and ".." not in stem else ""
        self._page("protonb/404.html", path=urllib.parse.unquote(path), suggestion=suggestion)

    def _limit_page(self, problem: forms.FormError) -> None:
        self.set_status(problem.status)
        if "json" in self.request.headers.get("Content-Type", "").lower():
            self.set_header("Content-Type", "text/plain; charset=utf-8")
            self.finish(problem.message)
            return
        self._page("protonb/limit.html", message=problem.message, limit=problem.limit)

    def _manage_page(self, method: str, path: str) -> None:
        if path == CLEAR_DATA_PATH:
            self._page("protonb/cleared.html" if method == "POST" else "protonb/clear-data.html")
        else:
            self._not_found(path)

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        """Unexpected failures go to protonb's log (the dashboard's log area in a notebook)."""
        if isinstance(value, tornado.web.HTTPError):
            super().log_exception(typ, value, tb)
            return
        log.error(
            "%s %s failed: %s", self.request.method, self.request.path, value, exc_info=(typ, value, tb)
        )

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        message = {404: "Page not found", 405: "This address does not take that kind of request."}
        try:
            self._page("protonb/error.html", problem=None, message=message.get(status_code, self._reason))
        except (jinja2.TemplateError, OSError):
            self.finish(f"{status_code} {self._reason}")


@dataclass
class _RouteFailure:
    exc: BaseException
    name: str


class PublicFileHandler(tornado.web.StaticFileHandler):
    """Files under ``public/``, served before any session or form handling, as in the kit."""

    def validate_absolute_path(self, root: str, absolute_path: str) -> str | None:
        if "\x00" in absolute_path:
            # No file name holds a NUL byte, and os.path raises on one: just not found.
            raise tornado.web.HTTPError(404)
        if os.path.isdir(absolute_path):
            raise tornado.web.HTTPError(404)  # a folder is no file (Tornado would say 403)
        return super().validate_absolute_path(root, absolute_path)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.finish(f"{status_code}: no such file in public/")


def _names_a_page(path: str) -> bool:
    """Whether ``path`` names a page to note in the participant's history: no suffix on its
    last part (``/v1.2/name`` is a page, ``/name.html`` and ``/favicon.ico`` are not)."""
    return "." not in path[path.rfind("/") + 1 :]


def _route_failure_text(failure: _RouteFailure) -> str:
    exc, name = failure.exc, failure.name
    if isinstance(exc, SystemExit):
        return (
            f"The route function {name} called sys.exit({exc.code!r}), which would stop the"
            " server: return req.redirect(...), req.render(...) or nothing instead."
        )
    text = str(exc) or type(exc).__name__
    return f"The route function {name} failed: {text}"


def _charset(params: str) -> str:
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            return value.strip().strip('"').lower()
    return ""


def _log_request(handler: tornado.web.RequestHandler) -> None:
    request = handler.request
    access_log.debug(
        "%d %s %s %.1fms",
        handler.get_status(),
        request.method,
        request.uri,
        1000.0 * request.request_time(),
    )


def _let_protonb_count_fields() -> None:
    """Tornado refuses over 1000 query fields with a bare 400 before protonb sees them;
    raise its (process-wide) ceiling so protonb answers with a page that names the limit."""
    config = getattr(tornado.httputil, "_DEFAULT_PARSE_BODY_CONFIG", None)
    setter = getattr(tornado.httputil, "set_parse_body_config", None)
    if config is None or setter is None:
        return
    if config.urlencoded.max_arguments < TORNADO_FIELD_CEILING:
        setter(
            dataclasses.replace(
                config,
                urlencoded=dataclasses.replace(config.urlencoded, max_arguments=TORNADO_FIELD_CEILING),
            )
        )


def make_app(site: PrototypeSite) -> tornado.web.Application:
    """The Tornado application for one prototype."""
    _let_protonb_count_fields()
    keys = site.keys
    # /public/... is always a file, even before the folder exists: it never touches a session.
    handlers: list[Any] = [
        (r"/public/(.*)", PublicFileHandler, {"path": str(site.folder.public)}),
        (r"/.*", PageHandler, {"site": site}),
    ]
    app = tornado.web.Application(
        handlers,
        cookie_secret=keys.secrets,
        key_version=keys.key_version,
        prototype_id=keys.prototype_id,
        log_function=_log_request,
        compress_response=False,
        started=time.time(),
    )
    site.serve_with(app)
    return app
