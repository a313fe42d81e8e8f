"""The command line: ``protonb serve DIR [--port N] [--host H]``, until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from . import __version__
from .auth import PASSWORD_ENV
from .config import ConfigError
from .runner import CannotListen, PortInUse, check_host, check_port
from .session import DEFAULT_LIFETIME_HOURS, check_session_hours


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="protonb",
        description="Serve a clickable prototype and keep each participant's answers.",
    )
    parser.add_argument("--version", action="version", version=f"protonb {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve a prototype folder")
    serve.add_argument("folder", nargs="?", default=".", help="the prototype folder (default: .)")
    serve.add_argument(
        "--port", type=int, default=3000, help="port to listen on (default 3000; 0 picks a free one)"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--data-dir", default=None, help="where sessions are kept (default FOLDER/.protonb)")
    serve.add_argument(
        "--session-hours",
        type=float,
        default=DEFAULT_LIFETIME_HOURS,
        help=f"hours a session is kept after its last request (default {DEFAULT_LIFETIME_HOURS:g})",
    )
    serve.add_argument(
        "--password-env",
        metavar="VAR",
        default=None,
        help=(
            "ask participants for the password held in the environment variable VAR"
            f" (default: ${PASSWORD_ENV} if set); never put the password itself on the command line"
        ),
    )
    serve.add_argument(
        "--url-prefix",
        default=None,
        help="the path prefix a proxy serves the prototype under (default: the X-Forwarded-Prefix header)",
    )
    serve.add_argument("--quiet", action="store_true", help="log warnings and errors only")
    return parser


async def _serve(args: argparse.Namespace) -> int:
    from .prototype import Prototype

    proto = Prototype(
        args.folder,
        data_dir=args.data_dir,
        session_hours=args.session_hours,
        url_prefix=args.url_prefix,
        password=_password(args.password_env),
    )
    url = proto.start(port=args.port, host=args.host, show=False)
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopped.set)
    # Only once Ctrl-C and SIGTERM stop it cleanly does it say that it is serving.
    print(f"protonb: serving {proto.folder.root} at {url}  (Ctrl-C to stop)", flush=True)
    await stopped.wait()
    proto.close()
    print("protonb: stopped", flush=True)
    return 0


def _password(variable: str | None) -> str | None:
    """The password from ``--password-env VAR``; None leaves it to $PROTONB_PASSWORD."""
    if variable is None:
        return None
    value = os.environ.get(variable, "")
    if not value:
        raise ConfigError(
            f"--password-env {variable}: the environment variable {variable} is empty or not set"
        )
    return value


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if getattr(args, "quiet", False) else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        check_port(args.port, "--port")
        check_host(args.host, "--host")
        check_session_hours(args.session_hours, "--session-hours")
    except ValueError as exc:
        print(f"protonb: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_serve(args))
    except PortInUse as exc:
        print(
            f"protonb: Port {exc.port} on {exc.host} is in use by another program:"
            " pick another with --port N, or --port 0 for a free one.",
            file=sys.stderr,
        )
        return 2
    except (CannotListen, ConfigError, ValueError) as exc:
        print(f"protonb: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
