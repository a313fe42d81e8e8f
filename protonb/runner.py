"""Start and stop a prototype's HTTP server on the running event loop (a kernel's or the CLI's).

No threads: the server shares the loop with the notebook, so handlers, the store and the
widgets all run on one thread. A registry keyed by prototype folder lets a re-run cell
replace the server it started before, on the same port.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import numbers
import socket
from typing import Any

import tornado.httpserver
import tornado.netutil
import tornado.web

log = logging.getLogger("protonb")

#: Browsers keep connections open; after this long idle, the server closes them.
IDLE_CONNECTION_SECONDS = 75
MAX_TRANSPORT_BODY = 8 * 1024 * 1024


#: Where to listen, said the same way in every message that asks for another host.
HOST_ADVICE = "use 127.0.0.1 (this computer only) or 0.0.0.0 (every network this computer is on)"


class CannotListen(OSError):
    """The server cannot listen where it was asked to; the message says what to do instead."""

    def __init__(self, port: int, host: str, code: int | None, message: str) -> None:
        self.port, self.host = port, host
        super().__init__(code, message)

    def __str__(self) -> str:
        return str(self.strerror)


class PortInUse(CannotListen):
    """The port asked for is taken by another program."""

    def __init__(self, port: int, host: str) -> None:
        super().__init__(
            port,
            host,
            errno.EADDRINUSE,
            f"Port {port} on {host} is in use by another program: pick another port,"
            " or leave port out to get a free one.",
        )


def check_port(port: object, name: str = "port") -> int | None:
    """``port`` as an int, if it is a whole number a server can listen on (None stays None).

    ``name`` is what the message calls it (``--port`` on the command line). Checked before
    anything is stopped or bound: a port out of range would otherwise be taken modulo 65536
    by the operating system, and a string or float fails deep inside the socket library.
    """
    if port is None:
        return None
    if isinstance(port, bool) or not isinstance(port, numbers.Integral):
        raise TypeError(
            f"{name} must be a whole number between 0 and 65535 (0 picks a free one), not {port!r}"
        )
    if not 0 <= port <= 65535:
        raise ValueError(f"{name} must be between 0 and 65535 (0 picks a free one), not {port}")
    return int(port)


def check_host(host: object, name: str = "host") -> str:
    """``host`` if it is a non-empty string; whether it is an address of this computer is
    only known when binding (see ``RunningServer``)."""
    if not isinstance(host, str):
        raise TypeError(f"{name} must be the address to listen on as text: {HOST_ADVICE}, not {host!r}")
    if not host.strip():
        raise ValueError(f"{name} is empty: {HOST_ADVICE}.")
    return host


class RunningServer:
    """One listening HTTP server; ``stop()`` frees its port at once."""

    def __init__(self, app: tornado.web.Application, host: str, port: int) -> None:
        try:
            sockets = tornado.netutil.bind_sockets(port, host, family=socket.AF_UNSPEC, reuse_port=False)
        except (OSError, UnicodeError) as exc:
            raise _cannot_listen(exc, host, port) from exc
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


def _cannot_listen(exc: OSError | UnicodeError, host: str, port: int) -> OSError:
    """The error to show for a failed bind: what went wrong in words, and what to do."""
    code = getattr(exc, "errno", None)
    if code == errno.EADDRINUSE:
        return PortInUse(port, host)
    if isinstance(exc, (socket.gaierror, UnicodeError)):
        message = f"Cannot listen on host {host!r}: it is not an address or a name this computer knows"
    elif code == errno.EADDRNOTAVAIL:
        message = f"Cannot listen on host {host!r}: it is not an address of this computer"
    elif code == errno.EACCES:
        advice = "pick one above 1023 (0 picks a free one)."
        return CannotListen(port, host, code, f"Port {port} on {host} needs administrator rights: {advice}")
    else:
        assert isinstance(exc, OSError)
        return exc
    return CannotListen(port, host, code, f"{message}; {HOST_ADVICE}.")


def browse_host(host: str) -> str:
    """The host part of a URL that reaches a server listening on ``host``: every IPv4
    address (or both kinds) is reached at 127.0.0.1; every IPv6 address only, ``::``, which
    is listened on for IPv6 alone, at [::1]."""
    if host in ("", "0", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


_registry: dict[str, Any] = {}


def registered(key: str) -> Any:
    return _registry.get(key)


def register(key: str, owner: Any) -> None:
    _registry[key] = owner


def unregister(key: str, owner: Any) -> None:
    if _registry.get(key) is owner:
        del _registry[key]
