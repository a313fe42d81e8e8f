"""A prototype folder on disk: where its parts are, its defaults, and its cookie secret."""

from __future__ import annotations

import copy
import json
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("protonb")

DATA_DIR_NAME = ".protonb"
SECRET_FILE = "secret.json"
STORE_FILE = "sessions.sqlite3"
PORT_FILE = "last-port"
DEFAULTS_FILE = "session-data-defaults.json"


class ConfigError(Exception):
    """The prototype folder cannot be served as it is; the message says what to do."""


@dataclass(frozen=True)
class CookieKeys:
    """The signing secrets of one prototype's session cookies."""

    prototype_id: str
    key_version: int
    secrets: dict[int, str]


class PrototypeFolder:
    """The parts of a prototype folder and the data protonb keeps inside it."""

    def __init__(self, root: str | os.PathLike[str], data_dir: str | os.PathLike[str] | None = None):
        self.root = Path(root).expanduser().resolve()
        if not self.root.is_dir():
            raise ConfigError(f"No prototype folder at {self.root}: give the folder that holds templates/.")
        self.templates = self.root / "templates"
        if not self.templates.is_dir():
            raise ConfigError(
                f"{self.root} has no templates/ folder: a prototype keeps its pages in templates/."
            )
        self.public = self.root / "public"
        self.defaults_path = self.root / DEFAULTS_FILE
        self.routes_path = self.root / "routes.py"
        self.data_dir = Path(data_dir).expanduser().resolve() if data_dir else self.root / DATA_DIR_NAME
        self._defaults: dict[str, Any] = {}
        self._defaults_json = "{}"
        self._defaults_mtime: float | None = None
        self.load_defaults(strict=True)

    @property
    def store_path(self) -> Path:
        return self.data_dir / STORE_FILE

    def last_port(self) -> int | None:
        """The port this folder was last served on, by any process (participants' links name it)."""
        try:
            port = int((self.data_dir / PORT_FILE).read_text(encoding="ascii").strip())
        except (OSError, ValueError, UnicodeDecodeError):
            return None
        return port if 0 < port < 65536 else None

    def remember_port(self, port: int) -> None:
        """Note the port being served on, so that a restarted kernel serves on it again."""
        try:
            (self.ensure_data_dir() / PORT_FILE).write_text(f"{port}\n", encoding="ascii")
        except (OSError, ConfigError) as exc:
            log.debug("the port could not be noted: %s", exc)

    def ensure_data_dir(self) -> Path:
        """Create the data folder (owner-only, git-ignored) if it is not there yet."""
        try:
            self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            ignore = self.data_dir / ".gitignore"
            if not ignore.exists():
                ignore.write_text("# protonb's session data and cookie secret: never commit\n*\n")
        except OSError as exc:
            raise ConfigError(
                f"Cannot write protonb's data folder {self.data_dir} ({exc.strerror}):"
                " make the prototype folder writable or pass data_dir= (--data-dir)."
            ) from exc
        return self.data_dir

    # ---------------------------------------------------------------- session-data defaults

    def load_defaults(self, strict: bool = False) -> None:
        """Read session-data-defaults.json again if it changed on disk.

        With ``strict`` a broken file raises ConfigError; otherwise the error is logged and
        the last good defaults stay in use.
        """
        try:
            mtime = self.defaults_path.stat().st_mtime
        except FileNotFoundError:
            self._defaults, self._defaults_json, self._defaults_mtime = {}, "{}", None
            return
        if mtime == self._defaults_mtime:
            return
        try:
            text = self.defaults_path.read_text(encoding="utf-8")
            loaded = json.loads(text) if text.strip() else {}
            if not isinstance(loaded, dict):
                raise ValueError("it must hold a JSON object, like {\"name\": \"value\"}")
            # Strict JSON only, as every session is stored: no NaN, Infinity or lone surrogates.
            json.dumps(loaded, allow_nan=False, ensure_ascii=False).encode("utf-8")
        except (ValueError, OSError) as exc:
            message = f"{self.defaults_path} could not be read: {exc}"
            if strict:
                raise ConfigError(message) from exc
            log.error("%s; keeping the defaults read before", message)
            self._defaults_mtime = mtime
            return
        self._defaults = loaded
        self._defaults_json = json.dumps(loaded)
        self._defaults_mtime = mtime

    def defaults(self, check: bool = True) -> dict[str, Any]:
        """A fresh deep copy of the session-data defaults: never shared between sessions.

        ``check`` False: the caller knows the file is unchanged since it was last read.
        """
        if check:
            self.load_defaults()
        return json.loads(self._defaults_json)

    def with_defaults(self, stored: dict[str, Any], check: bool = True) -> dict[str, Any]:
        """Session data as the kit sees it: the defaults, then the stored keys on top."""
        data = self.defaults(check)
        data.update(stored)
        return data

    # ---------------------------------------------------------------- cookie secret

    def cookie_keys(self) -> CookieKeys:
        """This prototype's cookie secret, created on first use in an owner-only file."""
        path = self.ensure_data_dir() / SECRET_FILE
        try:
            return self._read_keys(path)
        except FileNotFoundError:
            pass
        keys = CookieKeys(secrets.token_hex(4), 0, {0: secrets.token_urlsafe(48)})
        try:
            self._write_keys(path, keys, exclusive=True)
        except FileExistsError:
            return self._read_keys(path)
        return keys

    def rotate_cookie_keys(self) -> CookieKeys:
        """Replace the secret with a new version: every cookie signed before stops working."""
        path = self.ensure_data_dir() / SECRET_FILE
        old = self.cookie_keys()
        version = old.key_version + 1
        keys = CookieKeys(old.prototype_id, version, {version: secrets.token_urlsafe(48)})
        self._write_keys(path, keys, exclusive=False)
        return keys

    @staticmethod
    def _read_keys(path: Path) -> CookieKeys:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            return CookieKeys(
                str(raw["prototype_id"]),
                int(raw["key_version"]),
                {int(k): str(v) for k, v in raw["secrets"].items()},
            )
        except FileNotFoundError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(
                f"The cookie secret file {path} is damaged ({exc}); delete it to start"
                " afresh (every participant then gets a new, empty session)."
            ) from exc

    @staticmethod
    def _write_keys(path: Path, keys: CookieKeys, exclusive: bool) -> None:
        payload = json.dumps(
            {
                "prototype_id": keys.prototype_id,
                "key_version": keys.key_version,
                "secrets": {str(k): v for k, v in keys.secrets.items()},
            }
        )
        flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
        tmp = path if exclusive else path.with_suffix(".tmp")
        fd = os.open(tmp, flags, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(payload)
        os.chmod(tmp, 0o600)
        if not exclusive:
            os.replace(tmp, path)


def deep_copy(value: Any) -> Any:
    return copy.deepcopy(value)
