"""Form data the GOV.UK Prototype Kit way: parse bodies and query strings, merge into data.

Parsing follows the kit's parsers (Express body-parser ``urlencoded({extended: true})`` for
bodies, Express's "extended" query parser for query strings), both built on qs semantics,
here through qs-codec. Merging follows the kit's ``storeData``. Everything in this module is
pure: no I/O, no framework.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from typing import Any

import qs_codec

BODY_LIMIT_BYTES = 100 * 1024
PARAMETER_LIMIT = 1000
BODY_DEPTH_LIMIT = 32
JSON_DEPTH_LIMIT = 64
QUERY_DEPTH = 5
QUERY_LIST_LIMIT = 1000
BODY_MIN_LIST_LIMIT = 100

UNCHECKED = "_unchecked"
_FORBIDDEN_KEY = "__proto__"
_MALFORMED_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


class FormError(ValueError):
    """A request body or query string that cannot be stored; nothing from it is kept.

    ``status`` is the HTTP status to answer with, ``limit`` a short name of the rule broken.
    """

    def __init__(self, status: int, limit: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.limit = limit
        self.message = message


def _decode_component(text: str | None, charset: Any = None, **_: Any) -> str | None:
    """Decode one key or value as qs does: '+' is a space, malformed escapes stay as written."""
    if text is None:
        return None
    if "+" in text:
        text = text.replace("+", " ")
    if "%" not in text:
        return text
    if _MALFORMED_ESCAPE.search(text):
        return text
    try:
        return urllib.parse.unquote_to_bytes(text).decode("utf-8")
    except UnicodeDecodeError:
        return text


def _plain(value: Any) -> Any:
    """Turn qs-codec's containers into plain dicts and lists; drop ``__proto__`` keys."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items() if k != _FORBIDDEN_KEY}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def count_parameters(text: str) -> int:
    """How many parameters body-parser counts in a urlencoded string (pieces split on '&')."""
    return text.count("&") + 1 if text else 0


def parse_body(text: str) -> dict[str, Any]:
    """Parse an urlencoded request body with the kit's body-parser settings.

    Raises FormError for more than 1000 parameters (413) or more than 32 levels of brackets
    (400), as body-parser rejects them; nothing from such a body is stored.
    """
    if not text:
        return {}
    count = count_parameters(text)
    if count > PARAMETER_LIMIT:
        raise FormError(
            413,
            "parameters",
            f"The form sent {count} fields; the limit is {PARAMETER_LIMIT}.",
        )
    fast = fast_decode(text, BODY_DEPTH_LIMIT)
    if fast is not None:
        return fast
    try:
        return qs_decode(text, body_options(count))
    except IndexError as exc:
        raise FormError(
            400,
            "depth",
            f"A field name is nested more than {BODY_DEPTH_LIMIT} levels deep.",
        ) from exc


def body_options(count: int) -> qs_codec.DecodeOptions:
    """qs-codec's options for a body of ``count`` fields: body-parser's extended settings."""
    return qs_codec.DecodeOptions(
        depth=BODY_DEPTH_LIMIT,
        strict_depth=True,
        list_limit=max(BODY_MIN_LIST_LIMIT, count),
        parameter_limit=PARAMETER_LIMIT,
        decoder=_decode_component,
    )


def query_options() -> qs_codec.DecodeOptions:
    """qs-codec's options for a query string: Express's extended query parser settings."""
    return qs_codec.DecodeOptions(
        depth=QUERY_DEPTH,
        list_limit=QUERY_LIST_LIMIT,
        parameter_limit=PARAMETER_LIMIT,
        decoder=_decode_component,
    )


def qs_decode(text: str, options: qs_codec.DecodeOptions) -> dict[str, Any]:
    """The reference parser: qs-codec, with its containers made plain."""
    return _plain(qs_codec.decode(text, options))


def _split_pairs(text: str) -> dict[str, Any]:
    """The fields of an urlencoded string as qs tokenises them, before any nesting.

    Keys and values are decoded; a key met again collects its values in a list (qs's
    "combine"); pieces with an empty key are dropped.
    """
    if "%" in text:
        text = text.replace("%5B", "[").replace("%5b", "[").replace("%5D", "]").replace("%5d", "]")
    fields: dict[str, Any] = {}
    decode = _decode_component
    for part in text.split("&"):
        if not part:
            continue
        bracket_equals = part.find("]=")
        pos = part.find("=") if bracket_equals == -1 else bracket_equals + 1
        if pos == -1:
            key, value = decode(part), ""
        else:
            key, value = decode(part[:pos]), decode(part[pos + 1 :])
        if not key:
            continue
        if key in fields:
            held = fields[key]
            if isinstance(held, list):
                held.append(value)
            else:
                fields[key] = [held, value]
        else:
            fields[key] = value
    return fields


def _is_list_index(segment: str) -> bool:
    """Whether qs reads a bracketed segment as a list index (a canonical non-negative integer)."""
    return segment.isdigit() and segment.isascii() and (segment == "0" or segment[0] != "0")


_KEY_PATHS: dict[tuple[int, str], tuple[tuple[str, ...], bool] | None] = {}
_KEY_PATHS_MAX = 4096


def _key_path(key: str, depth: int) -> tuple[tuple[str, ...], bool] | None:
    """The names a field name nests (``a[b][c]`` -> a, b, c) and whether it ends in ``[]``.

    None for a name the fast path leaves to qs-codec. Remembered, since a prototype's forms
    send the same names again and again (a bounded cache: emptied when full).
    """
    cache_key = (depth, key)
    if cache_key in _KEY_PATHS:
        return _KEY_PATHS[cache_key]
    path = _split_key(key, depth)
    if len(_KEY_PATHS) >= _KEY_PATHS_MAX:
        _KEY_PATHS.clear()
    _KEY_PATHS[cache_key] = path
    return path


def _split_key(key: str, depth: int) -> tuple[tuple[str, ...], bool] | None:
    first = key.find("[")
    if first == -1:
        return None if key == _FORBIDDEN_KEY else ((key,), False)
    if first == 0:
        return None
    names = [key[:first]]
    length = len(key)
    at = first
    while at < length:
        if key[at] != "[":
            return None
        close = key.find("]", at + 1)
        if close == -1:
            return None
        names.append(key[at + 1 : close])
        at = close + 1
    if len(names) - 1 > depth:
        return None
    push = names[-1] == ""
    if push:
        names.pop()
    for level, name in enumerate(names):
        if not name or "[" in name or name == _FORBIDDEN_KEY or (level and _is_list_index(name)):
            return None
    return tuple(names), push


def fast_decode(text: str, depth: int) -> dict[str, Any] | None:
    """The common shapes of form data, parsed exactly as qs-codec parses them, but quickly.

    Handles plain names (``a``, repeated or not), and names nesting plain keys
    (``a[b][c]``), optionally ending in ``[]``, at most ``depth`` levels deep. Returns None
    for anything else, and for names that would collide (``a`` and ``a[b]``; ``a[]`` and
    ``a[b]``): list indices, a leading bracket, text after a bracket, unbalanced brackets,
    ``__proto__``. The caller then uses qs-codec, the reference; tests compare the two.
    """
    result: dict[str, Any] = {}
    for key, value in _split_pairs(text).items():
        path = _key_path(key, depth)
        if path is None:
            return None
        names, push = path
        node = result
        for name in names[:-1]:
            held = node.get(name)
            if held is None:
                node[name] = node = {}
            elif isinstance(held, dict):
                node = held
            else:
                return None
        name = names[-1]
        if name in node:
            return None
        if push:
            node[name] = value if isinstance(value, list) else [value]
        else:
            node[name] = value
    return result


def parse_query(text: str) -> dict[str, Any]:
    """Parse a query string with Express's extended query parser settings.

    Past 5 levels of brackets the rest of a key stays one literal key, as in the kit. Unlike
    the kit, which silently drops parameters after the 1000th, more than 1000 is refused.
    """
    if not text:
        return {}
    count = count_parameters(text)
    if count > PARAMETER_LIMIT:
        raise FormError(
            400,
            "parameters",
            f"The address has {count} query parameters; the limit is {PARAMETER_LIMIT}.",
        )
    fast = fast_decode(text, QUERY_DEPTH)
    if fast is not None:
        return fast
    return qs_decode(text, query_options())


def _json_depth(value: Any) -> int:
    """Nesting depth of decoded JSON, computed without recursion."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def parse_json(text: str) -> dict[str, Any]:
    """Parse a JSON body as body-parser's json() does (objects and arrays only)."""
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except RecursionError as exc:
        raise FormError(
            400, "depth", f"The JSON body is nested more than {JSON_DEPTH_LIMIT} levels deep."
        ) from exc
    except ValueError as exc:
        raise FormError(400, "json", f"The JSON body could not be read: {exc}.") from exc
    if not isinstance(value, (dict, list)):
        raise FormError(400, "json", "A JSON body must be an object or an array.")
    if _json_depth(value) > JSON_DEPTH_LIMIT:
        raise FormError(
            400, "depth", f"The JSON body is nested more than {JSON_DEPTH_LIMIT} levels deep."
        )
    try:
        json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        # "\ud800" escapes decode to lone surrogates, which no UTF-8 store can keep.
        raise FormError(400, "encoding", "The JSON body holds text that is not valid Unicode.") from exc
    except ValueError as exc:
        # Python reads NaN, Infinity and 1e400 (too big for a number); strict JSON has none.
        raise FormError(
            400, "json", "The JSON body holds NaN, Infinity or a number too large to keep."
        ) from exc
    if isinstance(value, list):
        value = {str(index): item for index, item in enumerate(value)}
    return _plain(value)


def store_data(incoming: dict[str, Any], data: dict[str, Any]) -> None:
    """Merge parsed fields into session data in place, by the kit's ``storeData`` rules.

    - a key starting with ``_`` is skipped, at every level of nested objects;
    - the exact value ``_unchecked`` deletes the key;
    - a list has its ``_unchecked`` items removed and replaces what was stored;
    - an object (or JSON null) is merged deeply, into ``{}`` if the stored value is not one;
    - anything else replaces the stored value.
    """
    for key, value in incoming.items():
        if key.startswith("_"):
            continue
        if value == UNCHECKED:
            data.pop(key, None)
            continue
        if isinstance(value, list):
            data[key] = [_plain(item) for item in value if item != UNCHECKED]
        elif isinstance(value, dict) or value is None:
            target = data.get(key)
            if isinstance(target, list):
                # The kit sets properties on the stored list, which JSON then drops.
                continue
            if not isinstance(target, dict):
                target = data[key] = {}
            store_data(value or {}, target)
        else:
            data[key] = value


def _quote(text: str) -> str:
    return urllib.parse.quote(text, safe="-_.!~*'()")


def _stringify_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    return ""


def redirect_query(raw_query: str, parsed: dict[str, Any]) -> str:
    """The query string for the redirect after a POST, as the kit rebuilds it.

    The kit formats the parsed query again, which keeps flat values and lists but turns a
    nested value into an empty one. Where the query has nested values, protonb keeps the
    query string as sent instead, so that the nested answer survives the redirect.
    """
    pieces: list[str] = []
    for key, value in parsed.items():
        values = value if isinstance(value, list) else [value]
        for item in values:
            if isinstance(item, (dict, list)):
                return raw_query
            pieces.append(f"{_quote(key)}={_quote(_stringify_scalar(item))}")
    return "&".join(pieces)
