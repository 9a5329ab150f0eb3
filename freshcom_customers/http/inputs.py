"""What every face refuses before a request reaches the services: deep JSON, and text that
PostgreSQL cannot store or that is not Unicode.

PostgreSQL refuses NUL in text ("text fields cannot contain NUL characters") and a lone
surrogate (a JSON escape such as "\\udcff") cannot be encoded as UTF-8 at all; SQLite stores
both. So the rule is applied here, the same on both databases, to every query parameter,
header, form field and JSON value and key of every request, and each face answers
``UnreadableText`` in its own format (a 422 on the field for a body value). JSON nested
deeper than MAX_JSON_DEPTH is refused before it is parsed, so no reader recurses into it.
"""

import re
from urllib.parse import unquote_to_bytes

import orjson
from flask import Flask, Request, current_app
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import BadRequest

MAX_JSON_DEPTH = 64
_UNREADABLE = re.compile("[\x00\ud800-\udfff]")
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")


class JSONTooDeep(BadRequest):
    """A 400 that get_json(silent=True) does not swallow: it is no ValueError."""

    description = f"The JSON body is nested deeper than {MAX_JSON_DEPTH} levels."


class UnreadableText(Exception):
    """A request value that cannot be stored: where it is and why."""

    def __init__(self, location: str, path: tuple, reason: str):
        super().__init__(f"{location} {'/'.join(map(str, path))}: {reason}")
        self.location = location  # "body", "query", "form" or "header"
        self.path = path  # keys and indexes down to the value (or the key) at fault
        self.reason = reason

    @property
    def name(self) -> str:
        """The parameter, header or top-level body field at fault ("" for a bad name)."""
        return str(self.path[0]) if self.path else ""

    @property
    def title(self) -> str:
        subject = self.name or f"A {_NOUNS[self.location]}"
        return f"{subject} {self.reason}."


_NOUNS = {"query": "query parameter", "header": "header", "form": "parameter", "body": "value in the body"}


def problem(text: str) -> str | None:
    """Why the text cannot be stored, or None when it can."""
    if text.isascii() and "\x00" not in text:
        return None  # the usual case, without the regular expression (10 ns a character)
    match = _UNREADABLE.search(text)
    if match is None:
        return None
    if match.group() == "\x00":
        return "must not contain NUL characters"
    return "must be valid Unicode (it has a lone surrogate)"


def find_unreadable(value, path: tuple = ()) -> tuple[tuple, str] | None:
    """The path and reason of the first string (value or key) in value that cannot be stored."""
    if isinstance(value, str):
        reason = problem(value)
        return (path, reason) if reason else None
    if isinstance(value, dict):
        for key, item in value.items():
            reason = problem(key) if isinstance(key, str) else None
            if reason:
                return path, f"has a key that {reason}"
            found = find_unreadable(item, (*path, key))
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = find_unreadable(item, (*path, index))
            if found:
                return found
    return None


def json_depth(text: str | bytes) -> int:
    """How deeply the JSON text nests arrays and objects, without parsing it."""
    if isinstance(text, bytes):
        text = text.decode("latin-1")  # brackets and quotes are ASCII in every JSON encoding we read
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return 0  # cannot be deeper than the limit: spare the scan
    depth = deepest = 0
    for bracket in _NOT_BRACKETS.sub("", _STRINGS.sub('""', text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON, refusing text nested deeper than MAX_JSON_DEPTH before parsing it, and
    writing documents with orjson."""

    def loads(self, s, **kwargs):
        if json_depth(s) > MAX_JSON_DEPTH:
            raise JSONTooDeep()
        return super().loads(s, **kwargs)

    def dumps(self, obj, **kwargs) -> str:
        """The document's JSON, keys sorted and values as Flask writes them (dates as HTTP
        dates, decimals as strings), by orjson: several times faster than the standard
        library's (issue 18), without spaces and with characters beyond ASCII as UTF-8.
        What it does not take (options such as indent, or text it cannot write, a lone
        surrogate) Flask's own writes."""
        if kwargs:
            return super().dumps(obj, **kwargs)
        try:
            return orjson.dumps(obj, default=self.default, option=_ORJSON_AS_FLASK).decode()
        except orjson.JSONEncodeError:
            return super().dumps(obj)


# Dates and dataclasses go to Flask's default(), as its own dumps() would send them.
_ORJSON_AS_FLASK = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def check_request(request: Request) -> None:
    """Raise UnreadableText for the first value of the request that cannot be stored."""
    environ = request.environ
    if request.query_string:  # no query, no parameters: spare parsing them
        _check_encoded("query", request.query_string)
        _check_pairs("query", request.args.items(multi=True))
    texts = [value for value in environ.values() if isinstance(value, str)]
    if problem("".join(environ)) or problem("".join(texts)):
        # The environ's names and text values (the headers among them) at once are the usual
        # case; request.headers names the header at fault, if it is one.
        _check_pairs("header", request.headers.items())
    if environ.get("CONTENT_LENGTH", "") in ("", "0") and "HTTP_TRANSFER_ENCODING" not in environ:
        return  # a request with neither header has no body (RFC 9112 6.3): spare reading it
    if request.mimetype == "application/x-www-form-urlencoded":
        _check_encoded("form", request.get_data(cache=True))  # the form is then parsed from the cache
    if request.mimetype in FORM_TYPES:
        _check_pairs("form", request.form.items(multi=True))
        return
    found = find_unreadable(_json_body(request))
    if found:
        raise UnreadableText("body", *found)


FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _json_body(request: Request):
    """The body as JSON, as the faces will read it; None when it is not JSON."""
    if request.is_json:
        return request.get_json(silent=True)  # cached for the view
    raw = request.get_data(cache=True)
    if not raw.strip():
        return None
    try:  # the Chec face reads a JSON body whatever its Content-Type says
        return current_app.json.loads(raw)
    except ValueError:
        return None


def _check_encoded(location: str, encoded: bytes) -> None:
    """Refuse percent-encoded bytes that are not UTF-8 (an encoded surrogate among them), which
    werkzeug would decode to U+FFFD: the value stored would not be the one sent."""
    if encoded.isascii() and b"%" not in encoded:
        return  # the usual case
    for pair in encoded.split(b"&"):
        name, _, value = pair.partition(b"=")
        try:
            _decoded(name)
        except UnicodeDecodeError:
            raise UnreadableText(location, (), "has a name that must be UTF-8 text") from None
        try:
            _decoded(value)
        except UnicodeDecodeError:
            raise UnreadableText(location, (_decoded(name, "replace"),), "must be UTF-8 text") from None


def _decoded(encoded: bytes, errors: str = "strict") -> str:
    return unquote_to_bytes(encoded.replace(b"+", b" ")).decode("utf-8", errors)


def _check_pairs(location: str, pairs) -> None:
    pairs = list(pairs)
    if not problem("".join(k + v for k, v in pairs)):
        return  # the usual case, in one search
    for key, value in pairs:
        reason = problem(key)
        if reason:
            raise UnreadableText(location, (), f"has a name that {reason}")
        reason = problem(value)
        if reason:
            raise UnreadableText(location, (key,), reason)


def init_app(app: Flask) -> None:
    """Read JSON with the depth limit (app.py calls check_request before every view)."""
    app.json_provider_class = JSONProvider
    app.json = JSONProvider(app)
