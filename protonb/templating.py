"""Jinja2 for prototype views: kit-like lookups, the checked() global, and path-to-view rules."""

from __future__ import annotations

import os
import re
import traceback
import unicodedata
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

PAGES_PREFIX = "protonb/"
_PATH_PIECE = re.compile(r"""[^.[\]]+|\[(?:(-?\d+(?:\.\d+)?)|(["'])((?:(?!\2)[^\\]|\\.)*?)\2)\]""")


class PrototypeEnvironment(jinja2.Environment):
    """A Jinja2 environment where ``data.items`` reads the field ``items``, as in Nunjucks.

    For a dict, attribute access looks up the key first and falls back to the dict's own
    attributes (so ``data.items()`` still works when there is no field called ``items``).
    """

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, dict):
            try:
                return obj[attribute]
            except KeyError:
                pass
        return super().getattr(obj, attribute)


def _finalize(value: Any) -> Any:
    """Print values as Nunjucks does: lists joined by commas, true/false, nothing for None."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(_finalize(item)) for item in value)
    return value


def lookup_path(data: Any, name: str) -> Any:
    """Read a value by a lodash-style path: ``a.b``, ``['a']['b']`` or ``a[0].b``.

    A name with no ``.`` or ``[`` is one key, as in the kit's checked() helper.
    """
    if "." not in name and "[" not in name:
        keys: list[str] = [name]
    else:
        keys = []
        for match in _PATH_PIECE.finditer(name):
            number, quote, quoted = match.group(1), match.group(2), match.group(3)
            if quote:
                keys.append(re.sub(r"\\(.)", r"\1", quoted))
            elif number is not None:
                keys.append(number)
            else:
                keys.append(match.group(0))
    value = data
    for key in keys:
        if isinstance(value, dict):
            if key not in value:
                return None
            value = value[key]
        elif isinstance(value, list):
            try:
                value = value[int(key)]
            except (ValueError, IndexError):
                return None
        else:
            return None
    return value


def _same(a: Any, b: Any) -> bool:
    """JavaScript's ``===`` for JSON values: same type and equal."""
    return type(a) is type(b) and a == b


@jinja2.pass_context
def checked(context: Any, name: str, value: Any) -> str:
    """``"checked"`` when the stored answer at ``name`` is ``value`` or a list holding it."""
    stored = lookup_path(context.get("data") or {}, str(name))
    if isinstance(stored, list):
        return "checked" if any(_same(item, value) for item in stored) else ""
    return "checked" if _same(stored, value) else ""


@jinja2.pass_context
def url(context: Any, path: str = "/") -> str:
    """A link to ``path`` inside this prototype, with the URL prefix it is served under."""
    prefix = context.get("url_prefix") or ""
    # One leading slash, whatever was written: "//host" or "\\host" must not leave the site.
    return prefix + "/" + str(path).replace("\\", "/").lstrip("/")


def make_environment(templates_dir: Path, pages_dir: Path) -> PrototypeEnvironment:
    """The environment for one prototype: its views, plus protonb's own pages under protonb/."""
    loader = jinja2.PrefixLoader(
        {"protonb": jinja2.FileSystemLoader(str(pages_dir))}, delimiter="/"
    )
    env = PrototypeEnvironment(
        loader=jinja2.ChoiceLoader([_NotPrefixed(templates_dir), loader]),
        autoescape=jinja2.select_autoescape(["html", "htm", "njk", "xml"], default=True),
        undefined=jinja2.ChainableUndefined,
        finalize=_finalize,
        auto_reload=True,
        trim_blocks=False,
    )
    env.globals["checked"] = checked
    env.globals["url"] = url
    env.policies["json.dumps_kwargs"] = {"sort_keys": False, "ensure_ascii": False}
    return env


class _NotPrefixed(jinja2.FileSystemLoader):
    """The prototype's own templates; names under protonb/ are left to protonb's pages."""

    def __init__(self, templates_dir: Path) -> None:
        super().__init__(str(templates_dir))

    def get_source(self, environment: jinja2.Environment, template: str) -> Any:
        if template.startswith(PAGES_PREFIX):
            raise jinja2.TemplateNotFound(template)
        return super().get_source(environment, template)


def view_names(url_path: str) -> list[str]:
    """The template names that may render ``url_path``, in the order to try them.

    ``/x`` is ``x.html`` or else ``x/index.html``; ``/`` is ``index.html``. The path is
    percent-decoded and Unicode-normalised first; ``..``, backslashes and control characters
    never resolve (no names at all), so nothing outside ``templates/`` is read.
    """
    path = unicodedata.normalize("NFC", urllib.parse.unquote(url_path))
    if "\\" in path or "\x00" in path or any(ord(ch) < 32 for ch in path):
        return []
    parts = [part for part in path.strip("/").split("/")]
    if parts == [""]:
        parts = []
    if any(part in ("", ".", "..") or part.startswith(".") for part in parts):
        return []
    stem = "/".join(parts)
    return [f"{stem}.html", f"{stem}/index.html"] if stem else ["index.html"]


def find_view(env: jinja2.Environment, templates_dir: Path, url_path: str) -> jinja2.Template | None:
    """The compiled template that renders ``url_path`` (see ``view_names``), or None.

    A template that fails to compile raises its error. Templates come from the environment's
    cache, which checks each file's time once per use, so no other file check is made.
    """
    for name in view_names(url_path):
        if name.startswith(PAGES_PREFIX):
            # The environment would find protonb's own page of that name: look in the folder.
            if not os.path.isfile(os.path.join(str(templates_dir), name)):
                continue
        try:
            return env.get_template(name)
        except jinja2.TemplateNotFound as exc:
            if exc.name != name:
                raise
    return None


@dataclass
class TemplateProblem:
    """Where a template failed, for the error page: template name, line, message, hint."""

    template: str
    line: int | None
    message: str
    hint: str
    source_line: str = ""


#: Jinja2's words for a missing key, as in data['claimant']['first-name'] with no claimant.
_MISSING_NAME = re.compile(r"'dict object' has no attribute '([^']*)'")
_DASHED_ATTRIBUTE = re.compile(r"\b[A-Za-z_]\w*(?:\.[A-Za-z_][\w]*)*\.[A-Za-z_]\w*-[A-Za-z_]")


def describe_template_error(exc: BaseException, templates_dir: Path) -> TemplateProblem:
    """Find the template and line behind ``exc`` and suggest a fix where one is known."""
    name, line = "", None
    if isinstance(exc, jinja2.TemplateSyntaxError):
        name, line = exc.name or exc.filename or "", exc.lineno
    else:
        root = str(templates_dir)
        for frame in reversed(traceback.extract_tb(exc.__traceback__)):
            if frame.filename and frame.filename.startswith(root):
                name, line = Path(frame.filename).relative_to(root).as_posix(), frame.lineno
                break
    source_line = ""
    if name and line:
        try:
            lines = (templates_dir / name).read_text(encoding="utf-8").splitlines()
            source_line = lines[line - 1].strip() if 0 < line <= len(lines) else ""
        except (OSError, UnicodeDecodeError):
            source_line = ""
    hint = ""
    if _DASHED_ATTRIBUTE.search(source_line):
        hint = (
            "A name with a dash after a dot, such as data.first-name, reads as a subtraction"
            " (data.first minus name): write data['first-name'] instead."
        )
    elif isinstance(exc, jinja2.TemplateAssertionError) and str(exc).startswith("No filter named"):
        hint = (
            "Templates have Jinja2's filters, which differ a little from Nunjucks':"
            " write tojson for dump, and check the spelling."
        )
    elif isinstance(exc, jinja2.UndefinedError) and (missing := _MISSING_NAME.search(str(exc))):
        name_missing = missing.group(1)
        hint = (
            f"There is no answer or value called {name_missing!r} here yet. A missing answer"
            " shows as nothing, but cannot be added to or looked inside: test it first with"
            " {% if ... %}, or give it a default with | default('')."
        )
    elif isinstance(exc, jinja2.TemplateNotFound):
        hint = f"There is no template called {exc.name!r} in templates/."
    elif isinstance(exc, jinja2.TemplateSyntaxError):
        hint = "Check that every {% tag %} is closed and every {{ and }} is paired."
    return TemplateProblem(name or "(unknown template)", line, str(exc), hint, source_line)


def safe(text: str) -> Markup:
    return Markup(text)
