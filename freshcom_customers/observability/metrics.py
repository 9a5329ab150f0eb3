"""Prometheus metrics: what the service counts, the hooks that count requests, and GET /metrics.

What is counted, by name and labels:

- ``freshcom_http_requests_total`` and ``freshcom_http_request_duration_seconds`` (a histogram),
  by ``method``, ``endpoint`` and ``status``: every request. The endpoint is the Flask endpoint
  (``api.get_customer``), never the path, whose ids would make a series per customer;
  ``unmatched`` when no route matched, and a method the app serves none of is ``OTHER``.
- ``freshcom_logins_total{outcome}``: password logins (services/logins.py) by ``success``,
  ``invalid_credentials``, ``locked_out``, ``throttled``; ``freshcom_lockouts_total``: lockouts
  started.
- ``freshcom_tokens_issued_total{grant}``: ``password``, ``refresh_token_prt`` (a guest token),
  ``refresh_token_urt`` (a user's), ``chec_magic_link`` (a Chec JWT for a login link).
- ``freshcom_emails_total{kind,outcome}``: ``password_reset``, ``email_verification``,
  ``login_link`` by ``sent``, ``failed``, or ``logged`` (no mail server, outside production).
- ``freshcom_security_events_total{event}``: observability/security_events.py's events.
- ``freshcom_caller_cache_total{outcome}``: where a read's caller came from (services/callers.py):
  ``hit`` (the process's memory), ``miss`` (the database, then kept) or ``bypass`` (the
  database: the cache could not be used, its channel unproved or down).
- ``freshcom_db_pool_size``, ``freshcom_db_pool_checked_out``, ``freshcom_db_pool_overflow``:
  the database connection pool, kept up to date by its checkout and checkin events and summed
  over the live workers (a scrape reaches one worker, which cannot read the others' pools).
- ``freshcom_build_info{version}``: 1.

Under gunicorn every worker writes its values to files in one directory that a scrape sums
(prometheus_client's multiprocess mode; observability/multiprocess.py sets it up from
gunicorn.conf.py). Elsewhere (``flask run``, the tests) the values live in the process.

GET /metrics answers the Prometheus text format to a bearer token, ``FRESHCOM_METRICS_TOKEN``.
With no token configured it is 404 in production and open elsewhere (docs/decisions.md).
"""

import atexit
import hmac
import os
import threading
import time
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial

from flask import Blueprint, Flask, Request, Response, current_app, request
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
    values,
)
from sqlalchemy import event
from sqlalchemy.pool import QueuePool
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import NotFound, Unauthorized

from freshcom_customers import __version__
from freshcom_customers.extensions import db
from freshcom_customers.http.contracts import ERRORS, METRICS_TOKEN, STRING, Shape, contract
from freshcom_customers.observability import background

# The text format every Prometheus server reads (prometheus_client's newest is 1.0.0).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
EXPOSITION = Shape("", STRING, "text/plain")
# Methods labelled as they are; any other a client invents is OTHER, so that it makes no series.
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
UNMATCHED = "unmatched"
LOGIN_OUTCOMES = ("success", "invalid_credentials", "second_factor_required", "locked_out", "throttled")
GRANTS = (
    "password",
    "passkey",
    "refresh_token_prt",
    "refresh_token_urt",
    "client_credentials",
    "chec_magic_link",
)
EMAIL_KINDS = (
    "password_reset",
    "email_verification",
    "login_link",
    "registration_confirmation",
    "invitation",
    "email_change_confirmation",
    "email_changed_notice",
    "password_changed_notice",
    "second_factor_notice",
    "login_code",
)
EMAIL_OUTCOMES = ("sent", "failed", "logged")
_STARTED = "freshcom.metrics_started"

# No *_created series beside each counter: they double a scrape, and multiprocess mode has none.
disable_created_metrics()

REQUESTS = Counter("freshcom_http_requests", "Requests answered.", ["method", "endpoint", "status"])
# prometheus_client's default buckets (+Inf last), named here: requests are sorted into them first.
DURATION_BUCKETS = Histogram.DEFAULT_BUCKETS
REQUEST_DURATION = Histogram(
    "freshcom_http_request_duration_seconds",
    "Seconds from the request's first hook to its answer.",
    ["method", "endpoint", "status"],
    buckets=DURATION_BUCKETS,
)
# How long a request may be counted in its process's memory before it is in the metrics.
FLUSH_SECONDS = 1.0
LOGINS = Counter("freshcom_logins", "Password logins, by how they ended.", ["outcome"])
LOCKOUTS = Counter("freshcom_lockouts", "Lockouts started by failed passwords.")
TOKENS_ISSUED = Counter("freshcom_tokens_issued", "Access tokens issued, by grant.", ["grant"])
EMAILS = Counter("freshcom_emails", "Emails, by kind and what became of them.", ["kind", "outcome"])
SECURITY_EVENTS = Counter("freshcom_security_events", "Security events logged.", ["event"])
CALLER_CACHE = Counter(
    "freshcom_caller_cache", "Reads' callers, by where they came from.", ["outcome"]
)  # services/callers.py: hit (memory), miss (the database, then kept), bypass (cache not usable)
# Live workers' values summed: a dead worker's pool is gone with it.
POOL_SIZE = Gauge("freshcom_db_pool_size", "Connections the pools keep.", multiprocess_mode="livesum")
POOL_CHECKED_OUT = Gauge("freshcom_db_pool_checked_out", "Connections in use.", multiprocess_mode="livesum")
POOL_OVERFLOW = Gauge(
    "freshcom_db_pool_overflow", "Connections open beyond the pools' size.", multiprocess_mode="livesum"
)
BUILD_INFO = Gauge("freshcom_build_info", "The running version.", ["version"], multiprocess_mode="livemax")

# Every series a dashboard plots, at 0 from the start: a rate needs the series before the event.
for _outcome in LOGIN_OUTCOMES:
    LOGINS.labels(_outcome)
for _outcome in ("hit", "miss", "bypass"):
    CALLER_CACHE.labels(_outcome)
for _grant in GRANTS:
    TOKENS_ISSUED.labels(_grant)
for _kind in EMAIL_KINDS:
    for _outcome in EMAIL_OUTCOMES:
        EMAILS.labels(_kind, _outcome)
BUILD_INFO.labels(__version__).set(1)

bp = Blueprint("metrics", __name__)


def init_app(app: Flask) -> None:
    """Publish the database pool's use (after db.init_app); app.py calls start and record."""
    _watch_pool(app)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR") and not is_multiprocess():
        app.logger.warning(
            "PROMETHEUS_MULTIPROC_DIR was set after prometheus_client was imported: "
            "GET /metrics shows this process's counts only."
        )


def is_multiprocess() -> bool:
    """Whether prometheus_client writes to the multiprocess directory (it decides once, at import)."""
    return values.ValueClass._multiprocess


@contextmanager
def outcome(counter: Counter, errors: Sequence[tuple[type[Exception], str]]) -> Iterator[None]:
    """Count how the block ends: success, or the label of the first of errors that matches what it raises.

    Any other error (a database outage) is no outcome of the block's and is not counted.
    """
    try:
        yield
    except Exception as error:
        label = next((label for kind, label in errors if isinstance(error, kind)), None)
        if label is not None:
            counter.labels(label).inc()
        raise
    counter.labels("success").inc()


def lockout() -> None:
    """Count a lockout started."""
    LOCKOUTS.inc()


def token_issued(grant: str) -> None:
    """Count an access token issued by grant (one of GRANTS)."""
    TOKENS_ISSUED.labels(grant).inc()


def email(kind: str, result: str) -> None:
    """Count an email of kind (EMAIL_KINDS) by what became of it (EMAIL_OUTCOMES)."""
    EMAILS.labels(kind, result).inc()


def security_event(event_name: str) -> None:
    """Count a security event by name."""
    SECURITY_EVENTS.labels(event_name).inc()


# Requests


def start(request: Request) -> None:
    """Start the request's clock."""
    request.environ[_STARTED] = time.perf_counter()


def record(request: Request, response: Response) -> None:
    """Count and time the request by method, endpoint and status."""
    method = request.method if request.method in METHODS else "OTHER"
    started = request.environ.get(_STARTED)  # None: the request failed before its clock started
    _pending.add((method, request.endpoint or UNMATCHED, response.status_code), started)


class PendingRequests:
    """The requests a process answered that are not in the metrics yet: by labels, a count,
    and for those timed, their seconds' sum and a count for each bucket they fall in.

    In multiprocess mode each inc() of prometheus_client takes a lock and writes to a
    file-mapped page, and a histogram's observe() does it twice: 5.5 µs a request, as much
    as the rest of its logging (issue 18). Counted here, a request costs a dictionary's
    entry; ``flush`` adds what gathered to the metrics, one inc() a series, at most
    FLUSH_SECONDS after it happened: as a request ends, from a thread while the process has
    no request to answer, before GET /metrics answers and as the process exits. A worker
    killed outright (SIGKILL, gunicorn's timeout) loses at most that second's counts.
    """

    def __init__(self):
        self._forked()
        os.register_at_fork(after_in_child=self._forked)
        self._idle = background.EveryFewSeconds("freshcom-metrics", FLUSH_SECONDS, self._flush_if_due)

    def _forked(self) -> None:
        """Start afresh (in a new process: a forked worker has none of its parent's counts,
        which the parent writes itself)."""
        self._lock = threading.Lock()
        self._entries: dict[tuple, list] = {}  # labels → [count, timed seconds, [count per bucket]]
        self._flushed_at = time.perf_counter()

    def add(self, labels: tuple, started: float | None) -> None:
        now = time.perf_counter()
        with self._lock:
            entry = self._entries.get(labels)
            if entry is None:
                entry = self._entries[labels] = [0, 0.0, [0] * len(DURATION_BUCKETS)]
            entry[0] += 1
            if started is not None:
                seconds = now - started
                entry[1] += seconds
                entry[2][bisect_left(DURATION_BUCKETS, seconds)] += 1  # the first bound ≥ seconds
        if now - self._flushed_at >= FLUSH_SECONDS:
            self.flush()
        self._idle.start()  # flushes while no request comes

    def flush(self) -> None:
        """Add every request counted so far to the metrics."""
        with self._lock:
            entries, self._entries = self._entries, {}
            self._flushed_at = time.perf_counter()
        for labels, (count, seconds, buckets) in entries.items():
            method, endpoint, status = labels
            names = (method, endpoint, str(status))
            REQUESTS.labels(*names).inc(count)
            timed = REQUEST_DURATION.labels(*names)
            # What observe() does for each request, once for all of them.
            if any(buckets):
                timed._sum.inc(seconds)
                for bucket, counted in zip(timed._buckets, buckets, strict=True):
                    if counted:
                        bucket.inc(counted)

    def _flush_if_due(self) -> None:
        if time.perf_counter() - self._flushed_at >= FLUSH_SECONDS:
            self.flush()


_pending = PendingRequests()
atexit.register(_pending.flush)  # a worker's exit (gunicorn's SIGTERM, a restart): its last counts


# The database pool


def _watch_pool(app: Flask) -> None:
    with app.app_context():
        engine = db.engine
    if not isinstance(engine.pool, QueuePool):
        return  # SQLite in memory and NullPool keep no pool to measure
    POOL_SIZE.set(engine.pool.size())
    # Listeners on the engine stay on the new pool that engine.dispose() makes.
    event.listen(engine, "checkout", partial(_checked_out, engine))
    event.listen(engine, "checkin", partial(_checked_in, engine))


def _checked_out(engine, *_) -> None:
    POOL_CHECKED_OUT.inc()
    POOL_OVERFLOW.set(max(0, engine.pool.overflow()))


def _checked_in(engine, *_) -> None:
    POOL_CHECKED_OUT.dec()
    # The event comes before the connection is back: into a full pool, it is closed instead.
    pool = engine.pool
    POOL_OVERFLOW.set(max(0, pool.overflow() - (pool.checkedin() >= pool.size())))


# GET /metrics


@bp.get("/metrics")
@contract(
    "Counters and histograms for Prometheus",
    tag="Operations",
    security=METRICS_TOKEN,
    responses={200: EXPOSITION, 401: ERRORS, 404: ERRORS},
    description="The Prometheus text format, summed over every worker of the server. Without "
    "FRESHCOM_METRICS_TOKEN configured it is 404 in production and open elsewhere.",
)
def metrics():
    _authorize(current_app.config["METRICS_TOKEN"], current_app.config["ENV"])
    _pending.flush()  # this process's own requests; the others' are at most FLUSH_SECONDS behind
    body = generate_latest(_registry())
    return Response(body, content_type=CONTENT_TYPE, headers={"Cache-Control": "no-store"})


def _authorize(token: str | None, env: str) -> None:
    """401 without the configured token; with none configured, 404 in production (as if no route)."""
    if not token:
        if env == "production":
            raise NotFound()
        return
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    # Bytes: compare_digest refuses str with characters outside ASCII.
    given = presented.strip().encode("utf-8", "surrogatepass")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given, token.encode()):
        raise Unauthorized(
            "GET /metrics needs the metrics token (FRESHCOM_METRICS_TOKEN) as a bearer token.",
            www_authenticate=WWWAuthenticate("bearer", {"realm": "metrics"}),
        )


def _registry() -> CollectorRegistry:
    """Every worker's files in multiprocess mode; this process's metrics otherwise."""
    if not is_multiprocess():
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry
