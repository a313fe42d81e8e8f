"""Start and stop a prototype's HTTP server on the running event loop (a kernel's or the CLI's).

No threads: the server shares the loop with the notebook, so handlers, the store and the
widgets all run on one thread. A registry keyed by prototype folder lets a re-run cell
replace the server it started before, on the same port.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from typing import Any

import tornado.httpserver
import tornado.netutil
import tornado.web

log = logging.getLogger("protonb")

#: Browsers keep connections open; after this long idle, the server closes them.
IDLE_CONNECTION_SECONDS = 75
MAX_TRANSPORT_BODY = 8 * 1024 * 1024


class PortInUse(OSError):
    """The port asked for is taken by another program."""

    def __init__(self, port: int, host: str) -> None:
        self.port, self.host = port, host
        super().__init__(
            errno.EADDRINUSE,
            f"Port {port} on {host} is in use by another program: pick another port,"
            " or leave port out to get a free one.",
        )

    def __str__(self) -> str:
        return str(self.strerror)


class RunningServer:
    """One listening HTTP server; ``stop()`` frees its port at once."""

    def __init__(self, app: tornado.web.Application, host: str, port: int) -> None:
        try:
            sockets = tornado.netutil.bind_sockets(port, host, family=socket.AF_UNSPEC, reuse_port=False)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse(port, host) from exc
            raise
        self.host = host
        self.port = sockets[0].getsockname()[1]
        self._server = tornado.httpserver.HTTPServer(
            app,
            max_body_size=MAX_TRANSPORT_BODY,
            idle_connection_timeout=IDLE_CONNECTION_SECONDS,
            xheaders=False,
        )
        self._server.add_sockets(sockets)
        self._closing: set[asyncio.Future[Any]] = set()
        self.running = True

    def stop(self) -> None:
        """Stop listening now and close kept-alive connections, so no old handler answers."""
        if not self.running:
            return
        self.running = False
        self._server.stop()
        try:
            task = asyncio.ensure_future(self._server.close_all_connections())
        except RuntimeError:
            return
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)


def browse_host(host: str) -> str:
    """The host part of a URL for ``host`` (a wildcard address is shown as 127.0.0.1)."""
    if host in ("", "0.0.0.0", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


_registry: dict[str, Any] = {}


def registered(key: str) -> Any:
    return _registry.get(key)


def register(key: str, owner: Any) -> None:
    _registry[key] = owner


def unregister(key: str, owner: Any) -> None:
    if _registry.get(key) is owner:
        del _registry[key]
