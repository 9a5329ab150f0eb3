"""Logging: one line per record on stderr, JSON in production, the request's id on every line.

``init_app`` configures the process's logging from ``LOG_FORMAT`` (``json``, the production
default and the only format production accepts, or ``text`` for development) and
``LOG_LEVEL`` (the level of the service's own loggers; libraries log from WARNING).

A JSON line holds ``time``, ``level``, ``logger`` and ``message``, and inside a request
``request_id``, ``method``, ``path`` and ``remote_addr``; the access line (logger
``freshcom_customers.access``, one per request) adds ``status``, ``duration_ms`` and the
``query`` with its values redacted; a security event (``security_events.record``) adds
``security_event`` and ``fields``. The request id is a well-formed ``X-Request-Id`` the
request came with, or a new one, and the response carries it back.

What is never logged: request bodies, headers (so no Authorization), query-string values
other than paging and sorting, and anything a JSON message shows that looks like a credential
(``token=…``, ``Bearer …``, a JWT, a user refresh token) is redacted as a last line of defence.
Authlib logs issued tokens at DEBUG, so its logger never goes below INFO; gunicorn's access
log, which would write raw query strings (``?resetToken=…``), is switched off in favour of ours.
"""

import json
import logging
import os
import re
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote

from flask import Flask, Response, has_request_context, request
from flask.logging import default_handler
from gunicorn.glogging import Logger as GunicornBaseLogger

from freshcom_customers.config import ConfigError

FORMATS = ("json", "text")
REQUEST_ID_HEADER = "X-Request-Id"
# What an incoming request id may look like (UUIDs, hex, proxies' ids); anything else is replaced.
WELL_FORMED_ID = re.compile(r"[A-Za-z0-9._:-]{8,128}")
# Query parameters whose values are logged; every other value is [redacted].
LOGGED_QUERY = re.compile(r"(page|fields)(\[\w+\])?|limit|sort|sortBy|sortDirection|include")
REDACTED = "[redacted]"
MAX_FIELD = 256  # characters of a logged string field (a 1 MiB "username" stays out of the log)
MAX_PATH = 512

_ENVIRON_ID = "freshcom.request_id"
_ENVIRON_CLIENT = "freshcom.client_id"
_ENVIRON_STARTED = "freshcom.started"
_HANDLER_MARK = "_freshcom_handler"
# A request's id outside its request context: the mail thread delivering its email.
_bound_request_id: ContextVar[str | None] = ContextVar("freshcom_request_id", default=None)
_CREDENTIALS = [  # resetToken=, reset_token=, client_secret=, password=, …
    (re.compile(r"(?i)(\w*(?:token|password|secret|jwt))=[^&\s\"'<>]+"), r"\1=" + REDACTED),
    (re.compile(r"(?i)\b(Bearer|Basic)\s+[A-Za-z0-9\-._~+/]+=*"), r"\1 " + REDACTED),
    (re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), REDACTED),
    (re.compile(r"\burt-(live|test)-[A-Za-z0-9_-]+"), "urt-" + REDACTED),
]

access_logger = logging.getLogger("freshcom_customers.access")


def init_app(app: Flask) -> None:
    """Configure the process's logging from the app's settings; log every request once."""
    configure(*settings(app.config))
    logging.getLogger(app.name).removeHandler(default_handler)  # the root handler prints it
    app.before_request(_start)
    app.after_request(_finish)


def settings(config) -> tuple[str, int]:
    """The log format and level the config asks for; ConfigError when it asks for nonsense."""
    production = config["ENV"] == "production"
    log_format = format_for(config["ENV"], config["LOG_FORMAT"])
    if log_format not in FORMATS:
        raise ConfigError(f"FRESHCOM_LOG_FORMAT must be json or text, not {config['LOG_FORMAT']!r}")
    if production and log_format != "json":
        raise ConfigError("FRESHCOM_LOG_FORMAT=text is for development; production logs JSON")
    level = logging.getLevelNamesMapping().get(str(config["LOG_LEVEL"]).upper())
    if level is None:
        raise ConfigError(
            f"FRESHCOM_LOG_LEVEL must be a level name (INFO, DEBUG…), not {config['LOG_LEVEL']!r}"
        )
    return log_format, level


def format_for(env: str, log_format: str | None) -> str:
    """The format asked for, or the environment's default: JSON in production, text elsewhere."""
    return (log_format or ("json" if env == "production" else "text")).lower()


def configure(log_format: str, level: int) -> None:
    """Send every record to stderr in log_format, through one handler on the root logger."""
    formatter = JsonFormatter() if log_format == "json" else TextFormatter()
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(handler)
    handler = StderrHandler()
    setattr(handler, _HANDLER_MARK, True)
    handler.setFormatter(formatter)
    root.addHandler(handler)
    logging.getLogger("freshcom_customers").setLevel(level)
    logging.getLogger("authlib").setLevel(max(level, logging.INFO))  # "Issue token {…} to …" at DEBUG
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # its request lines carry query strings
    _adopt_gunicorn_loggers(formatter)


def is_configured() -> bool:
    """Whether an app has set up this process's logging."""
    return any(getattr(h, _HANDLER_MARK, False) for h in logging.getLogger().handlers)


def _adopt_gunicorn_loggers(formatter: logging.Formatter) -> None:
    """In a gunicorn worker: its error log in our format, and no access log of its own."""
    for handler in logging.getLogger("gunicorn.error").handlers:
        if getattr(handler, "_gunicorn", False) and isinstance(formatter, JsonFormatter):  # its own only
            handler.setFormatter(formatter)
    logging.getLogger("gunicorn.access").disabled = True


class StderrHandler(logging.StreamHandler):
    """A StreamHandler writing to whatever sys.stderr is at the time (test capture included)."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


# The request's id and access line


def request_id() -> str | None:
    """The current request's id (also in the mail thread delivering its email), None outside one."""
    if not has_request_context():
        return _bound_request_id.get()
    environ = request.environ
    if _ENVIRON_ID not in environ:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        environ[_ENVIRON_ID] = incoming if WELL_FORMED_ID.fullmatch(incoming) else uuid.uuid4().hex
    return environ[_ENVIRON_ID]


@contextmanager
def bound_request_id(value: str | None) -> Iterator[None]:
    """Log with value as the request id outside the request (work done for it by another thread)."""
    token = _bound_request_id.set(value)
    try:
        yield
    finally:
        _bound_request_id.reset(token)


def _start() -> None:
    request.environ[_ENVIRON_STARTED] = time.perf_counter()
    request_id()


def note_client(client_id: str) -> None:
    """Name the machine client (API.md 12) that made this request in its access log line."""
    request.environ[_ENVIRON_CLIENT] = client_id


def _finish(response: Response) -> Response:
    response.headers[REQUEST_ID_HEADER] = request_id()
    started = request.environ.get(_ENVIRON_STARTED)
    access = {"status": response.status_code}
    if _ENVIRON_CLIENT in request.environ:
        access["client_id"] = request.environ[_ENVIRON_CLIENT]
    if started is not None:
        access["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
    if request.query_string:
        access["query"] = redacted_query(request.query_string.decode("latin-1"))
    path = _bounded(request.path, MAX_PATH)
    access_logger.info("%s %s %s", request.method, path, response.status_code, extra={"access": access})
    return response


def redacted_query(query: str) -> str:
    """The query string with every value but paging and sorting replaced by [redacted]."""
    pairs = parse_qsl(query, keep_blank_values=True)
    shown = (f"{quote(k, safe='[]')}={quote(v) if LOGGED_QUERY.fullmatch(k) else REDACTED}" for k, v in pairs)
    return _bounded("&".join(shown), MAX_PATH)


def _request_fields() -> dict:
    if not has_request_context():
        return {"request_id": _bound_request_id.get()}
    return {
        "request_id": request_id(),
        "method": request.method,
        "path": _bounded(request.path, MAX_PATH),
        "remote_addr": request.remote_addr,
    }


# Formats


def scrub(text: str) -> str:
    """Redact what looks like a credential: the last line of defence, not the first."""
    for pattern, replacement in _CREDENTIALS:
        text = pattern.sub(replacement, text)
    return text


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": scrub(record.getMessage()),
            **_request_fields(),
            **getattr(record, "access", {}),
        }
        if getattr(record, "security_event", None):
            entry["security_event"] = record.security_event
            entry["fields"] = _bounded_fields(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = scrub(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = scrub(self.formatStack(record.stack_info))
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """Development: time, level, logger, [request id], message and a security event's fields."""

    def format(self, record: logging.LogRecord) -> str:
        request_id = _request_fields()["request_id"] or "-"
        text = f"{self.formatTime(record)} {record.levelname} {record.name} [{request_id}] "
        text += record.getMessage()
        if getattr(record, "security_event", None):
            text += " " + json.dumps(_bounded_fields(getattr(record, "fields", {})), default=str)
        if "duration_ms" in getattr(record, "access", {}):
            text += f" ({record.access['duration_ms']} ms)"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def _bounded(value: str, limit: int = MAX_FIELD) -> str:
    return value if len(value) <= limit else value[:limit] + "…"


def _bounded_fields(fields: dict) -> dict:
    return {key: _bounded(value) if isinstance(value, str) else value for key, value in fields.items()}


class GunicornLogger(GunicornBaseLogger):
    """gunicorn's own logger, writing JSON lines when the service does.

    The app formats gunicorn's worker-side lines itself; the master's (start-up, workers
    booting, signals, shutdown) need this class, which gunicorn.conf.py names.
    It reads FRESHCOM_ENV and FRESHCOM_LOG_FORMAT from the environment, as the app does.
    Its access log is off: the app logs each request, without its query string's values.
    """

    def setup(self, cfg):
        super().setup(cfg)
        env, log_format = os.environ.get("FRESHCOM_ENV", "development"), os.environ.get("FRESHCOM_LOG_FORMAT")
        if format_for(env, log_format) == "json":
            for handler in self.error_log.handlers:
                if getattr(handler, "_gunicorn", False):
                    handler.setFormatter(JsonFormatter())

    def access(self, resp, req, environ, request_time):
        """Nothing: gunicorn's access line would carry the raw query string (a reset token)."""
