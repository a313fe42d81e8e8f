"""Route functions: a prototype's own code for chosen paths, as in the kit's routes.js.

A route function receives ``req`` and reads or changes ``req.session.data``; the data of
the request is already stored when it runs. It returns ``req.redirect(path)``,
``req.render(template, **values)``, or nothing (then protonb does what it would have done).
"""

from __future__ import annotations

import importlib.util
import logging
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("protonb")

ROUTE_METHODS = ("GET", "POST")


@dataclass(frozen=True)
class Redirect:
    """Send the participant to ``location`` (a path on this prototype)."""

    location: str
    status: int = 302


@dataclass(frozen=True)
class Render:
    """Render ``template`` with ``data`` and ``values``."""

    template: str
    values: dict[str, Any] = field(default_factory=dict)
    status: int = 200


def redirect(location: str, status: int = 302) -> Redirect:
    """What a route function returns to send the participant elsewhere."""
    return Redirect(location, status)


def render(template: str, status: int = 200, **values: Any) -> Render:
    """What a route function returns to show a template (``"name"`` or ``"name.html"``)."""
    return Render(template, values, status)


class SessionView:
    """``req.session``: the participant's session, as route functions see it."""

    def __init__(self, session_id: str, data: dict[str, Any]) -> None:
        self.id = session_id
        self.data = data

    def __repr__(self) -> str:
        return f"<session {self.id[:8]}… data={self.data!r}>"


class Request:
    """``req``: what a route function gets."""

    def __init__(
        self,
        method: str,
        path: str,
        query: dict[str, Any],
        body: dict[str, Any],
        session: SessionView,
        headers: dict[str, str],
    ) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.body = body
        self.session = session
        self.headers = headers

    @property
    def data(self) -> dict[str, Any]:
        """Shorthand for ``req.session.data``."""
        return self.session.data

    def redirect(self, location: str, status: int = 302) -> Redirect:
        return Redirect(location, status)

    def render(self, template: str, status: int = 200, **values: Any) -> Render:
        return Render(template, values, status)


RouteFunction = Callable[[Request], Any]


@dataclass(frozen=True)
class Route:
    path: str
    method: str
    function: RouteFunction
    pattern: re.Pattern[str]
    source: str


def _compile(path: str) -> re.Pattern[str]:
    """``/people/<name>`` matches ``/people/ada``; other paths match exactly."""
    if not path.startswith("/"):
        raise ValueError(f"A route path starts with '/': {path!r}")
    pieces = re.split(r"<([A-Za-z_]\w*)>", path)
    regex = ""
    for index, piece in enumerate(pieces):
        regex += re.escape(piece) if index % 2 == 0 else f"(?P<{piece}>[^/]+)"
    return re.compile(regex + "/?" if path != "/" else "/")


class Router:
    """A set of route functions; registering the same path and method again replaces it."""

    def __init__(self, source: str = "notebook") -> None:
        self.source = source
        self._routes: dict[tuple[str, str], Route] = {}

    def route(
        self, path: str, methods: list[str] | tuple[str, ...] = ("GET",)
    ) -> Callable[[RouteFunction], RouteFunction]:
        """Decorator: ``@router.route("/eligibility", methods=["POST"])``."""
        wanted = [m.upper() for m in methods]
        unknown = [m for m in wanted if m not in ROUTE_METHODS]
        if unknown:
            raise ValueError(f"Route methods can be GET and POST, not {', '.join(unknown)}")
        pattern = _compile(path)

        def register(function: RouteFunction) -> RouteFunction:
            if not callable(function):
                raise TypeError("@route(...) decorates a function that takes req")
            for method in wanted:
                self._routes[(path, method)] = Route(path, method, function, pattern, self.source)
            return function

        return register

    def remove(self, path: str, method: str | None = None) -> int:
        keys = [k for k in self._routes if k[0] == path and (method is None or k[1] == method.upper())]
        for key in keys:
            del self._routes[key]
        return len(keys)

    def routes(self) -> list[Route]:
        return list(self._routes.values())

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self._routes.values():
            if route.method == method:
                found = route.pattern.fullmatch(path)
                if found:
                    return route, found.groupdict()
        return None


class RoutesFile:
    """A prototype's ``routes.py``, loaded again whenever it is saved.

    The file makes a ``router = protonb.Router()`` and decorates its functions with
    ``@router.route(...)``. A file that fails to load is reported in the log and the routes
    loaded before stay in use.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.router = Router(source=str(path))
        self.error: str = ""
        self._mtime: float | None = None

    def current(self, check: bool = True) -> Router:
        """The routes, loaded again first if the file changed (``check`` False: known not to)."""
        if not check:
            return self.router
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            if self._mtime is not None:
                self.router, self._mtime = Router(source=str(self.path)), None
            return self.router
        if mtime != self._mtime:
            self._mtime = mtime
            self._load()
        return self.router

    def _load(self) -> None:
        name = f"protonb_routes_{abs(hash(str(self.path)))}"
        spec = importlib.util.spec_from_file_location(name, self.path)
        if spec is None or spec.loader is None:
            self.error = f"{self.path} cannot be loaded as Python"
            log.error(self.error)
            return
        module = importlib.util.module_from_spec(spec)
        try:
            sys.modules[name] = module
            spec.loader.exec_module(module)
        except Exception:
            self.error = f"{self.path} failed to load; the routes loaded before stay in use"
            log.exception(self.error)
            return
        finally:
            sys.modules.pop(name, None)
        router = getattr(module, "router", None)
        if not isinstance(router, Router):
            self.error = f"{self.path} has no `router = protonb.Router()`; its routes are not used"
            log.error(self.error)
            return
        router.source = str(self.path)
        self.router = router
        self.error = ""
