"""Logging: one line per record on stderr, JSON in production, the request's id on every line.

``init_app`` configures the process's logging from ``LOG_FORMAT`` (``json``, the production
default and the only format production accepts, or ``text`` for development) and
``LOG_LEVEL`` (the level of the service's own loggers; libraries log from WARNING).
``LOG_ACCESS_DELAY`` lets a process hold its JSON access lines for up to that many seconds
and write them together (1 in production, 0 elsewhere: each line at once). Every other line
is written at once, after the access lines held before it; so are they at exit.

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
import math
import os
import random
import re
import sys
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote

import orjson
from flask import Flask, Request, has_request_context, request
from flask.logging import default_handler
from gunicorn.glogging import Logger as GunicornBaseLogger

from freshcom_customers.config import ConfigError
from freshcom_customers.observability import background

FORMATS = ("json", "text")
REQUEST_ID_HEADER = "X-Request-Id"
_REQUEST_ID_KEY = "HTTP_X_REQUEST_ID"  # the header's WSGI name: read from the environ, not request.headers
# What an incoming request id may look like (UUIDs, hex, proxies' ids); anything else is replaced.
WELL_FORMED_ID = re.compile(r"[A-Za-z0-9._:-]{8,128}")
# Query parameters whose values are logged; every other value is [redacted].
LOGGED_QUERY = re.compile(r"(page|fields)(\[\w+\])?|limit|sort|sortBy|sortDirection|include")
REDACTED = "[redacted]"
MAX_FIELD = 256  # characters of a logged string field (a 1 MiB "username" stays out of the log)
MAX_PATH = 512
# Access lines a process holds (LOG_ACCESS_DELAY) go out together once they reach this size.
HELD_BYTES = 16 * 1024

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
# What json.dumps(default=str) writes as str(value), orjson writes as str(value) too.
_ORJSON_AS_JSON = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_NON_STR_KEYS

_service_logger = logging.getLogger("freshcom_customers")
access_logger = logging.getLogger("freshcom_customers.access")


def init_app(app: Flask) -> None:
    """Configure the process's logging from the app's settings (app.py calls start and finish)."""
    configure(*settings(app.config))
    logging.getLogger(app.name).removeHandler(default_handler)  # the root handler prints it


def settings(config) -> tuple[str, int, int]:
    """The log format, level and access lines' delay the config asks for; ConfigError when it
    asks for nonsense."""
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
    delay = config.get("LOG_ACCESS_DELAY")
    if delay is None:
        delay = 1 if production else 0
    return log_format, level, delay


def format_for(env: str, log_format: str | None) -> str:
    """The format asked for, or the environment's default: JSON in production, text elsewhere."""
    return (log_format or ("json" if env == "production" else "text")).lower()


def configure(log_format: str, level: int, access_delay: int = 0) -> None:
    """Send every record to stderr in log_format, through one handler on the root logger,
    which may hold access lines for access_delay seconds."""
    formatter = JsonFormatter() if log_format == "json" else TextFormatter()
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        handler.flush()  # the access lines it holds
        root.removeHandler(handler)
    handler = StderrHandler(access_delay)
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
    """A StreamHandler writing to whatever sys.stderr is at the time (test capture included).

    With a delay, it holds the access lines write_line is given and writes them together: when
    they reach HELD_BYTES, when the first of them is delay seconds old (checked as each comes,
    and by a thread of the process while no request comes), before any other record, and when
    logging shuts down at the process's exit (it flushes every handler). Each line written to
    a file costs a system call, about a tenth of a request without the database (issue 18);
    nginx's access_log buffer=… flush=… does the same. A process killed outright (SIGKILL, the
    OOM killer) loses the lines it held: at most delay seconds of access lines.
    """

    def __init__(self, delay: int = 0):
        super().__init__(sys.stderr)
        self.delay = delay
        self._held: list[str] = []
        self._held_size = 0
        self._held_since = 0.0
        if delay:
            _holding.add(self)  # the idle thread writes its lines when they are due

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass

    def write_line(self, created: float, logger: str, message: str, fields: dict, extra: dict) -> None:
        """Write (or hold) an access line as emit() would write a record of it, through the
        JSON formatter."""
        line = self.formatter.line(created, "INFO", logger, message, fields, extra) + self.terminator
        if not self.delay:
            self._write(line)
            return
        now = time.monotonic()
        with self.lock:
            if not self._held:
                self._held_since = now
            self._held.append(line)
            self._held_size += len(line)
            due = self._held_size >= HELD_BYTES or now - self._held_since >= self.delay
        if due:
            self._write("")
        _idle_writer.start()

    def emit(self, record: logging.LogRecord) -> None:
        if self._held:
            self._write("")  # the access lines held before it go first
        super().emit(record)

    def flush(self) -> None:
        if self._held:
            self._write("")
        super().flush()

    def flush_if_due(self) -> None:
        """Write the lines held once the first of them is delay seconds old."""
        if self._held and time.monotonic() - self._held_since >= self.delay:
            self._write("")

    def drop_held(self) -> None:
        """Forget the lines held (a forked child: they are its parent's to write)."""
        self._held, self._held_size = [], 0

    def _write(self, line: str) -> None:
        """Write the lines held, then line."""
        with self.lock:
            text = "".join(self._held) + line
            self.drop_held()
            stream = self.stream
            stream.write(text)
            stream.flush()


# The handlers holding access lines.
_holding: "weakref.WeakSet[StderrHandler]" = weakref.WeakSet()


def _write_due_lines() -> None:
    for handler in list(_holding):
        handler.flush_if_due()


# What writes them once they are due while no request comes.
_idle_writer = background.EveryFewSeconds("freshcom-access-lines", 0.25, _write_due_lines)


def _forked() -> None:
    """The lines a new process holds are its parent's, for the parent to write."""
    for handler in list(_holding):
        handler.drop_held()


os.register_at_fork(after_in_child=_forked)


# The request's id and access line


def request_id() -> str | None:
    """The current request's id (also in the mail thread delivering its email), None outside one."""
    if not has_request_context():
        return _bound_request_id.get()
    return _id_of(request.environ)


def _id_of(environ: dict) -> str:
    if _ENVIRON_ID not in environ:
        incoming = environ.get(_REQUEST_ID_KEY, "")
        # 32 hex digits, as uuid4().hex and nginx's $request_id. Unique, not secret (a client
        # may send its own): random's generator, reseeded in each forked worker, spares the
        # system call for the kernel's random bytes that secrets would make on every request.
        environ[_ENVIRON_ID] = (
            incoming if incoming and WELL_FORMED_ID.fullmatch(incoming) else f"{random.getrandbits(128):032x}"
        )
    return environ[_ENVIRON_ID]


@contextmanager
def bound_request_id(value: str | None) -> Iterator[None]:
    """Log with value as the request id outside the request (work done for it by another thread)."""
    token = _bound_request_id.set(value)
    try:
        yield
    finally:
        _bound_request_id.reset(token)


def start(request: Request) -> None:
    """Start the request's clock and give it its id."""
    request.environ[_ENVIRON_STARTED] = time.perf_counter()
    _id_of(request.environ)


def note_client(client_id: str) -> None:
    """Name the machine client (API.md 12) that made this request in its access log line."""
    request.environ[_ENVIRON_CLIENT] = client_id


def finish(request: Request, response) -> None:
    """Echo the request's id, and log the request's access line."""
    environ = request.environ
    fields = _fields_of(request)
    response.add_checked_headers(((REQUEST_ID_HEADER, fields["request_id"]),))  # well-formed: no line break
    status = response.status_code
    access = {"status": status}
    if _ENVIRON_CLIENT in environ:
        access["client_id"] = environ[_ENVIRON_CLIENT]
    started = environ.get(_ENVIRON_STARTED)
    if started is not None:
        # A tenth of a millisecond: round(x, 1) goes through the decimal digits of x, and costs more.
        access["duration_ms"] = round((time.perf_counter() - started) * 10_000) / 10
    if request.query_string:
        access["query"] = redacted_query(request.query_string.decode("latin-1"))
    if not access_logger.isEnabledFor(logging.INFO):
        return
    message = f"{fields['method']} {fields['path']} {status}"
    handler = _sole_json_handler()
    if handler is not None:
        handler.write_line(time.time(), access_logger.name, message, fields, access)
        return
    # As access_logger.info() would, without looking for its caller in the stack, which no
    # format shows; the record brings its request's fields, read here already.
    extra = {"access": access, "request_fields": fields}
    record = access_logger.makeRecord(access_logger.name, logging.INFO, "", 0, message, (), None, extra=extra)
    access_logger.handle(record)


def _sole_json_handler() -> "StderrHandler | None":
    """Our handler, when an access line would reach it and nothing else: no other handler on
    the way up from the access logger, no filter, JSON lines (production's).

    Then the line is written without a LogRecord and logging's walk of the loggers, which
    cost more than the rest of the request's own logging (issue 18). The tests' capture
    (caplog) adds a handler, and the line goes the usual way.
    """
    handlers = logging.root.handlers
    if len(handlers) != 1 or logging.root.filters or access_logger.handlers or access_logger.filters:
        return None
    handler = handlers[0]
    if type(handler) is not StderrHandler or handler.filters or type(handler.formatter) is not JsonFormatter:
        return None
    if _service_logger.handlers or _service_logger.filters:
        return None
    if not (access_logger.propagate and _service_logger.propagate):
        return None
    return handler if handler.level <= logging.INFO else None


def redacted_query(query: str) -> str:
    """The query string with every value but paging and sorting replaced by [redacted]."""
    pairs = parse_qsl(query, keep_blank_values=True)
    shown = (f"{quote(k, safe='[]')}={quote(v) if LOGGED_QUERY.fullmatch(k) else REDACTED}" for k, v in pairs)
    return _bounded("&".join(shown), MAX_PATH)


def _request_fields(record: logging.LogRecord) -> dict:
    fields = getattr(record, "request_fields", None)
    if fields is not None:
        return fields
    if not has_request_context():
        return {"request_id": _bound_request_id.get()}
    return _fields_of(request._get_current_object())


def _fields_of(request: Request) -> dict:
    return {
        "request_id": _id_of(request.environ),
        "method": request.method,
        "path": _bounded(request.path, MAX_PATH),
        "remote_addr": request.remote_addr,
    }


# Formats


def scrub(text: str) -> str:
    """Redact what looks like a credential: the last line of defence, not the first."""
    # ASCII text without the patterns' fixed parts (most lines) cannot match, and this costs
    # less than one substitution. Other text can: (?i) matches the long s (U+017F) as "s".
    if text.isascii() and "=" not in text and "eyJ" not in text and "urt-" not in text:
        lowered = text.lower()
        if "bearer" not in lowered and "basic" not in lowered:
            return text
    for pattern, replacement in _CREDENTIALS:
        text = pattern.sub(replacement, text)
    return text


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def __init__(self):
        super().__init__()
        self._second = (None, "")  # the last second written, and its date and time of day

    def format(self, record: logging.LogRecord) -> str:
        entry = self._entry(
            record.created,
            record.levelname,
            record.name,
            record.getMessage(),
            _request_fields(record),
            getattr(record, "access", {}),
        )
        if getattr(record, "security_event", None):
            entry["security_event"] = record.security_event
            entry["fields"] = _bounded_fields(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = scrub(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = scrub(self.formatStack(record.stack_info))
        return _json_line(entry)

    def line(self, created: float, level: str, logger: str, message: str, fields: dict, extra: dict) -> str:
        """The line of a record with these attributes, and neither exception nor security event."""
        return _json_line(self._entry(created, level, logger, message, fields, extra))

    def _entry(self, created: float, level: str, logger: str, message: str, fields: dict, extra: dict):
        return {
            "time": self._time(created),
            "level": level,
            "logger": logger,
            "message": scrub(message),
            **fields,
            **extra,
        }

    def _time(self, created: float) -> str:
        """What datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds") writes,
        with the date and time of day formatted once a second: a line's most costly field."""
        fraction, second = math.modf(created)
        micro = round(fraction * 1_000_000)  # as fromtimestamp rounds
        if micro >= 1_000_000:
            second, micro = second + 1, micro - 1_000_000
        if second != self._second[0]:
            self._second = (second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S"))
        return self._second[1] + _MILLISECONDS[micro // 1000]


# A time's end from its millisecond, written once: a format per line cost more than the rest of _time.
_MILLISECONDS = tuple(f".{millisecond:03d}+00:00" for millisecond in range(1000))


def _json_line(entry: dict) -> str:
    """The entry as one line of JSON text, ASCII only (non-ASCII characters escaped).

    orjson writes it several times faster than json. What it writes otherwise (a lone
    surrogate, which it refuses, or any non-ASCII character, which it writes as itself)
    json writes, as before: a line stays readable whatever encoding stderr has.
    """
    try:
        line = orjson.dumps(entry, default=str, option=_ORJSON_AS_JSON).decode()
    except orjson.JSONEncodeError:
        line = None
    if line is None or not line.isascii():
        line = json.dumps(entry, default=str, separators=(",", ":"))
    return line


class TextFormatter(logging.Formatter):
    """Development: time, level, logger, [request id], message and a security event's fields."""

    def format(self, record: logging.LogRecord) -> str:
        request_id = _request_fields(record)["request_id"] or "-"
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
