"""``Prototype``: one prototype folder, served from a notebook cell or the command line."""

from __future__ import annotations

import html
import logging
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import tornado.ioloop

from . import logbook, runner
from .auth import exposure_warning, password_from
from .config import PrototypeFolder
from .proxy import configured_prefix
from .researcher import SessionChange, Sessions
from .routing import RouteFunction, Router
from .server import PrototypeSite, make_app
from .session import DEFAULT_LIFETIME_HOURS, check_session_hours
from .sqlite_store import SQLiteStore
from .store import Store

log = logging.getLogger("protonb")

PURGE_EVERY_SECONDS = 3600


class PrototypeClosed(RuntimeError):
    """``start()`` or ``dashboard()`` on a Prototype after ``close()``."""


class Prototype:
    """A prototype folder and the server that runs it.

    ``Prototype("path/to/folder")`` opens the folder (``templates/``, ``public/``,
    ``session-data-defaults.json``, ``routes.py``) and its session store; ``start()`` serves
    it on the running event loop and returns at once.

    ``password="..."`` (or the ``PROTONB_PASSWORD`` environment variable) makes every page ask
    for a password first. ``url_prefix="/path"`` is the prefix a proxy serves the prototype
    under; left out, each request's ``X-Forwarded-Prefix`` header (jupyter-server-proxy) is used.
    """

    def __init__(
        self,
        folder: str | os.PathLike[str] = ".",
        *,
        data_dir: str | os.PathLike[str] | None = None,
        session_hours: float = DEFAULT_LIFETIME_HOURS,
        store: Store | None = None,
        url_prefix: str | None = None,
        password: str | None = None,
    ) -> None:
        if not isinstance(folder, (str, os.PathLike)):
            raise TypeError(
                f"folder must be a path to a prototype folder (a str or Path), not {type(folder).__name__}"
            )
        session_hours = check_session_hours(session_hours)
        self._closed = False
        self.folder = PrototypeFolder(folder, data_dir)
        self.store: Store = (
            store
            if store is not None
            else SQLiteStore(self.folder.store_path, prepare=self.folder.ensure_data_dir)
        )
        self.router = Router()
        self.site = PrototypeSite(
            folder=self.folder,
            store=self.store,
            notebook_routes=self.router,
            lifetime_hours=session_hours,
            url_prefix=configured_prefix(url_prefix),
            password=password_from(password),
        )
        self._server: runner.RunningServer | None = None
        self._purger: tornado.ioloop.PeriodicCallback | None = None
        self._dashboard: Any = None

    # ------------------------------------------------------------------ routes

    def route(
        self, path: str, methods: list[str] | tuple[str, ...] = ("GET",)
    ) -> Callable[[RouteFunction], RouteFunction]:
        """Decorator for a route function: ``@proto.route("/eligibility", methods=["POST"])``.

        Running the cell again replaces the function for that path and method.
        """
        return self.router.route(path, methods)

    # ------------------------------------------------------------------ the researcher's view

    @property
    def sessions(self) -> Sessions:
        """The live sessions, newest activity first: ``proto.sessions["P3"].data``."""
        return Sessions(self.store, self.folder.defaults)

    @property
    def log(self) -> list[str]:
        """protonb's recent warnings and errors in this notebook (tracebacks included).

        In a kernel they are kept here and shown in the dashboard's log area, instead of
        being printed under whichever cell ran last.
        """
        return logbook.recent(str(self.folder.root))

    def on_change(self, callback: Callable[[SessionChange], Any]) -> Callable[[], None]:
        """Call ``callback(change)`` whenever a session changes; returns a function to stop.

        ``change.kind`` is ``"created"``, ``"data"``, ``"visit"``, ``"label"``, ``"deleted"`` or
        ``"cleared"``; ``change.session`` and ``change.data`` tell which and what it holds now.
        """
        if not callable(callback):
            raise TypeError("on_change() takes a function of one argument, the change")
        sessions = self.sessions
        return self.store.subscribe(lambda event: callback(SessionChange(sessions, event)))

    def clear_all(self) -> int:
        """Clear every participant's answers (back to the defaults); returns how many sessions."""
        return self.sessions.clear_all()

    def end_all_sessions(self) -> None:
        """End every participant's session: their next page starts a new, empty one.

        The cookie secret is replaced (a new key version), so every cookie given out before
        stops working, in the running server too. The ended sessions' answers stay in
        ``proto.sessions`` until they expire or you remove them.
        """
        self.site.rotate_cookie_keys()
        log.info("every session ended: cookies given out before no longer work")

    def dashboard(self) -> Any:
        """The live session dashboard (ipywidgets): a table of sessions and a detail pane."""
        self._check_open()
        from .widgets import Dashboard

        if self._dashboard is None:
            self._dashboard = Dashboard(self.sessions, url=self.url or "", prototype=str(self.folder.root))
        else:
            self._dashboard.url = self.url or ""
        return self._dashboard

    # ------------------------------------------------------------------ serving

    @property
    def running(self) -> bool:
        return self._server is not None and self._server.running

    @property
    def port(self) -> int | None:
        return self._server.port if self.running and self._server else None

    @property
    def url(self) -> str | None:
        """The address participants open, or None when the server is not running."""
        if not self.running or self._server is None:
            return None
        return f"http://{runner.browse_host(self._server.host)}:{self._server.port}/"

    def start(self, port: int | None = None, host: str = "127.0.0.1", *, show: bool = True) -> str:
        """Serve the prototype on the running event loop; return its URL at once.

        With no ``port`` the folder's port is kept: if this folder is being served (a cell
        run again), that server is replaced on the same port; if it was served before (and
        stopped, or in a kernel since restarted), its port is taken again while it is free.
        Else a free one is picked.
        If the new server cannot
        start (a port in use, a host that is not this computer's), whatever served before
        goes on serving.
        """
        self._check_open()
        port = runner.check_port(port)
        host = runner.check_host(host)
        key = str(self.folder.root)
        previous = runner.registered(key)
        serving_port = previous.port if previous is not None else None
        wanted = port
        if wanted is None:  # keep the participants' link: the port it is, or was, served on
            wanted = serving_port or self.folder.last_port()
        try:
            server = self._listen(previous, host, wanted or 0)
        except runner.PortInUse:
            if port is not None or serving_port:
                raise
            server = self._listen(previous, host, 0)  # its old port is taken now: a free one
        # The new server listens: only now is what served before stopped and let go.
        if previous is not None:
            previous.stop()
            if previous is not self:
                previous.close()
        self.stop()
        self._adopt(server)
        url = self.url or ""
        log.debug("serving %s at %s", self.folder.root, url)
        warning = exposure_warning(host, protected=self.site.password is not None)
        if logbook.in_kernel():
            logbook.install()
            if warning:
                print(f"protonb: {warning}", file=sys.stderr)  # this cell started it: say it here
        if warning:
            log.warning(warning)
        if show:
            _show_link(url, self.folder.root.name)
        return url

    def _listen(self, previous: Prototype | None, host: str, port: int) -> runner.RunningServer:
        """A server for this prototype listening on ``host:port``.

        A different port is bound while ``previous`` (the folder's running server, maybe this
        one) still serves. Its own port cannot be bound until it stops: then it is stopped
        first and, if the new server fails all the same, started again where it was.
        """
        app = make_app(self.site)
        old = previous._server if previous is not None and previous.running else None
        if old is None or port != old.port:
            return runner.RunningServer(app, host, port)
        assert previous is not None
        where = (old.host, old.port)
        previous._pause()
        try:
            return runner.RunningServer(app, host, port)
        except BaseException:
            try:
                previous._adopt(runner.RunningServer(make_app(previous.site), *where))
            except OSError:
                log.exception("the server at port %d stopped and could not start again", where[1])
            raise

    def _adopt(self, server: runner.RunningServer) -> None:
        """Serve with ``server`` (already listening): the folder's server from now on."""
        self._server = server
        runner.register(str(self.folder.root), self)
        self.folder.remember_port(server.port)
        self.purge_expired()
        self._purger = tornado.ioloop.PeriodicCallback(self.purge_expired, PURGE_EVERY_SECONDS * 1000)
        self._purger.start()

    def _pause(self) -> None:
        """Stop listening and purging, still registered as the folder's server."""
        if self._purger is not None:
            self._purger.stop()
            self._purger = None
        if self._server is not None:
            self._server.stop()
            self._server = None

    def _check_open(self) -> None:
        """Refuse to serve after ``close()``: the store is closed, so no answer could be kept."""
        if self._closed:
            raise PrototypeClosed(
                "This Prototype was closed: make a new one with protonb.Prototype(...)"
                f" to serve {self.folder.root} again."
            )

    def stop(self) -> None:
        """Stop serving; the port is free when this returns."""
        self._pause()
        runner.unregister(str(self.folder.root), self)

    def close(self) -> None:
        """Stop serving, close the dashboard and the session store.

        A closed Prototype cannot be started again: make a new one for the folder.
        """
        self.stop()
        if self._closed:
            return
        self._closed = True
        if self._dashboard is not None:
            self._dashboard.retire(
                "<p><b>protonb</b>: this dashboard has stopped, because its prototype was closed"
                " or started again by another cell. Run <code>proto.dashboard()</code> again"
                " to watch the sessions.</p>"
            )
            self._dashboard = None
        self.site.close()
        self.store.close()

    def _ipython_display_(self) -> None:
        """``display(proto)``: the participants' link and the live dashboard."""
        from IPython.display import HTML, display

        display(HTML(self._repr_html_()))
        display(self.dashboard())

    def purge_expired(self) -> int:
        """Remove sessions idle for longer than the session lifetime; returns how many."""
        removed = self.store.purge(time.time() - self.site.lifetime_hours * 3600)
        if removed:
            log.info("removed %d expired session(s)", removed)
        return removed

    def __repr__(self) -> str:
        state = f"serving at {self.url}" if self.running else "not running"
        return f"<Prototype {self.folder.root} {state}>"

    def _repr_html_(self) -> str:
        if not self.running:
            root = html.escape(str(self.folder.root))
            return f"<p>Prototype <code>{root}</code> is not running: call <code>start()</code>.</p>"
        return _link_html(self.url or "", self.folder.root.name)


def _link_html(url: str, name: str) -> str:
    safe_url = html.escape(url, quote=True)
    return (
        f"<p>Prototype <strong>{html.escape(name)}</strong> is running at "
        f'<a href="{safe_url}" target="_blank" rel="noopener">{safe_url}</a></p>'
    )


def _show_link(url: str, name: str) -> None:
    """Show the URL as a link under the cell when running in IPython; else print it."""
    try:
        from IPython import get_ipython
        from IPython.display import HTML, display
    except ImportError:
        get_ipython = None  # type: ignore[assignment]
    if get_ipython is not None and get_ipython() is not None:
        display(HTML(_link_html(url, name)))
