"""Delivering webhook events (API.md 12): claim what is due, POST it signed, record the answer.

Workers (flask webhooks deliver) may run at once on several hosts. A worker claims a few due
deliveries in one short transaction: SELECT ... FOR UPDATE SKIP LOCKED, so two workers never
take the same rows, then an UPDATE that leases them to it for WEBHOOK_LEASE seconds (at least
the time to send them all, one by one, plus one timeout: lease()). It sends outside any
transaction and records each answer with an UPDATE that only lands while its lease holds. A
worker that dies mid-delivery leaves a lease that runs out: another worker sends the delivery
again. Delivery is at least once, never lost.

A delivery is due when its time has come, no lease holds it, its endpoint is enabled, and no
earlier event with the same ordering key (its customer) is still pending for that endpoint,
in flight or waiting for a retry: one customer's events reach an endpoint in the order they
happened. A delivery that keeps failing holds its customer's later ones back until it
succeeds or fails for good, and no longer.

A 2xx answer is a success; anything else, a refused address, a timeout or a broken
connection is a failure, retried after WEBHOOK_FIRST_RETRY seconds, doubled each time up to 6
hours, until the delivery's give_up_at (WEBHOOK_RETRY_PERIOD after the event), when it fails
for good. Redirects are not followed.

Before each attempt the URL's host is resolved and, unless private addresses are allowed
(webhooks.private_addresses_allowed), every address must be public; the connection goes to
the address that was checked, so a name that resolves differently a moment later (DNS
rebinding) cannot turn it to an internal one. TLS still checks the certificate against the name.
"""

import json
import logging
import signal
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import urllib3
from flask import current_app
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import aliased
from standardwebhooks.webhooks import Webhook

from freshcom_customers.extensions import db
from freshcom_customers.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from freshcom_customers.models.base import utcnow
from freshcom_customers.services import data_keys, database, webhooks

KEPT_BODY = 1024  # bytes of a receiver's answer kept in the delivery log
LONGEST_DELAY = timedelta(hours=6)
USER_AGENT = "freshcom_customers-webhooks/1"
TIMED_OUT = "The receiver did not answer in time."

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Claimed:
    """A delivery leased to this worker, with what it needs to send it."""

    id: uuid.UUID
    lease_token: uuid.UUID
    attempt: int
    give_up_at: datetime
    url: str
    secret: str | None  # None when no data key opens it
    message_id: str
    payload: dict


@dataclass(frozen=True)
class Answer:
    """What one attempt got: the receiver's status and the start of its body, or an error."""

    status: int | None
    duration_ms: int
    body: str | None = None
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class Refused(Exception):
    """The URL may not be called: its host does not resolve, or not to public addresses only."""


def claim(limit: int) -> list[Claimed]:
    """Lease up to limit due deliveries to this worker, and commit. The lease lasts long
    enough for all of them to be sent one after the other."""
    now = utcnow()
    # The first delivery still pending of its endpoint and key: a subquery per candidate, which
    # PostgreSQL runs as one index probe whatever its statistics say (as an anti-join, a backlog
    # in a table it believed empty made it compare every pair).
    earlier = aliased(WebhookDelivery)
    first = (
        select(func.min(earlier.event_id))
        .where(
            earlier.endpoint_id == WebhookDelivery.endpoint_id,
            earlier.ordering_key == WebhookDelivery.ordering_key,
            earlier.status == "pending",
        )
        .scalar_subquery()
    )
    due = (
        select(WebhookDelivery.id)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(
            WebhookDelivery.status == "pending",
            WebhookDelivery.next_attempt_at <= now,
            or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until < now),
            WebhookEndpoint.enabled.is_(True),
            WebhookDelivery.event_id == first,
        )
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.event_id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=WebhookDelivery)
    )
    ids = db.session.scalars(_lazily(due)).all()
    if not ids:
        db.session.rollback()
        return []
    token = uuid.uuid4()
    db.session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id.in_(ids))
        .values(lease_token=token, lease_until=now + lease(len(ids)), attempts=WebhookDelivery.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    rows = db.session.execute(
        select(WebhookDelivery, WebhookEndpoint, WebhookEvent)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
        .where(WebhookDelivery.id.in_(ids))
        .order_by(WebhookDelivery.event_id)
        .execution_options(populate_existing=True)
    ).all()
    claimed = [
        Claimed(
            id=delivery.id,
            lease_token=token,
            attempt=delivery.attempts,
            give_up_at=delivery.give_up_at,
            url=endpoint.url,
            secret=_secret(endpoint),
            message_id=event.message_id,
            payload=event.payload,
        )
        for delivery, endpoint, event in rows
    ]
    db.session.commit()
    return claimed


def send(claimed: Claimed) -> Answer:
    """POST the event to its endpoint, signed as Standard Webhooks says, and read the answer
    within WEBHOOK_TIMEOUT, all of it (a receiver that drips its answer is cut off)."""
    if claimed.secret is None:
        return Answer(None, 0, error="The endpoint's secret cannot be read: a data key is missing.")
    body = json.dumps(claimed.payload, separators=(",", ":"), ensure_ascii=False).encode()
    now = utcnow()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": claimed.message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(claimed.secret).sign(claimed.message_id, now, body),
    }
    started = time.monotonic()
    try:
        with _deadline(current_app.config["WEBHOOK_TIMEOUT"]):
            status, kept = _post(claimed.url, headers, body)
    except Refused as e:
        return Answer(None, _since(started), error=str(e))
    except _Overdue:
        return Answer(None, _since(started), error=TIMED_OUT)
    except (urllib3.exceptions.HTTPError, OSError) as e:
        return Answer(None, _since(started), error=_error(e))
    return Answer(status, _since(started), body=kept.decode("utf-8", "replace"))


def record(claimed: Claimed, answer: Answer) -> bool:
    """Write the attempt's outcome while the lease holds, and commit; False if it no longer did.

    A retry asked for while the attempt was under way (webhooks.retry) moved give_up_at: a
    failure then goes back in the queue at once, with the new period.
    """
    now = utcnow()
    give_up_at = db.session.scalar(
        _lazily(
            select(WebhookDelivery.give_up_at)
            .where(WebhookDelivery.id == claimed.id, WebhookDelivery.lease_token == claimed.lease_token)
            .with_for_update()
        )
    )
    if give_up_at is None:  # the lease ran out and another worker took the delivery
        db.session.rollback()
        return False
    retried = give_up_at != claimed.give_up_at
    values = {
        "last_attempt_at": now,
        "response_code": answer.status,
        "duration_ms": answer.duration_ms,
        "response_body": answer.body[:KEPT_BODY] if answer.body else None,
        "error": answer.error[:255] if answer.error else None,
        "lease_token": None,
        "lease_until": None,
        "updated_at": now,
    }
    if answer.succeeded:
        values |= {"status": "succeeded", "next_attempt_at": None}
    elif now >= give_up_at:
        values |= {"status": "failed", "next_attempt_at": None}
    else:
        values["next_attempt_at"] = now if retried else min(now + backoff(claimed.attempt), give_up_at)
    result = db.session.execute(
        update(WebhookDelivery)
        .where(and_(WebhookDelivery.id == claimed.id, WebhookDelivery.lease_token == claimed.lease_token))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return result.rowcount == 1


def backoff(attempt: int) -> timedelta:
    """The wait after the attempt-th attempt failed: the first retry's delay, doubled each time."""
    first = current_app.config["WEBHOOK_FIRST_RETRY"]
    return min(timedelta(seconds=first * 2 ** min(attempt - 1, 20)), LONGEST_DELAY)


def lease(deliveries: int = 1) -> timedelta:
    """How long a claim of that many deliveries lasts: the configured lease, and at least the
    time to send them one after the other and one more attempt's timeout."""
    config = current_app.config
    return timedelta(seconds=max(config["WEBHOOK_LEASE"], (deliveries + 1) * config["WEBHOOK_TIMEOUT"]))


def _lazily(query):
    """query, made on PostgreSQL to let its transaction's commit return before its WAL is on
    disk (database.unflushed: set inside the statement, as it reads a row, so no round trip
    of its own; a transaction whose query found nothing writes nothing). A crash of the
    database may then lose the last moments of claims and results: the deliveries they were
    about are sent again once their lease runs out (at least once, as ever), never lost, since
    the events themselves were committed with the changes. It spares the worker a disk flush
    per delivery."""
    return database.unflushed(query) if database.on_postgresql() else query


def _post(url: str, headers: dict, body: bytes) -> tuple[int, bytes]:
    parts = urlsplit(url)
    https = parts.scheme == "https"
    host, port = parts.hostname, parts.port or (443 if https else 80)
    address = _address(host, port)
    timeout = current_app.config["WEBHOOK_TIMEOUT"]
    options = {"server_hostname": host, "assert_hostname": host} if https else {}
    pool_class = urllib3.HTTPSConnectionPool if https else urllib3.HTTPConnectionPool
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    with pool_class(
        address,
        port,
        timeout=urllib3.Timeout(connect=timeout, read=timeout, total=timeout),
        maxsize=1,
        **options,
    ) as pool:
        response = pool.urlopen(
            "POST",
            target,
            body=body,
            headers={**headers, "Host": parts.netloc.rpartition("@")[2]},
            retries=False,
            redirect=False,
            preload_content=False,
            assert_same_host=False,
        )
        try:
            return response.status, response.read(KEPT_BODY)
        finally:
            response.close()


def _address(host: str, port: int) -> str:
    """The address to connect to: the host's first, once every one is checked."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:
        raise Refused(f"The host {host} does not resolve.") from e
    addresses = [info[4][0] for info in found]
    if not webhooks.private_addresses_allowed() and not all(webhooks.is_public(a) for a in addresses):
        raise Refused(f"The host {host} resolves to an address that is not public.")
    return addresses[0]


def _error(error: Exception) -> str:
    # urllib3 makes a refused connection a kind of ConnectTimeoutError: it is asked first.
    if isinstance(error, urllib3.exceptions.NewConnectionError):
        return "The connection was refused or could not be made."
    if isinstance(error, urllib3.exceptions.TimeoutError):
        return TIMED_OUT
    if isinstance(error, urllib3.exceptions.SSLError):
        return "The TLS handshake failed."
    return f"The connection failed: {type(error).__name__}."


class _Overdue(Exception):
    """The attempt's whole time is up."""


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Raise _Overdue in the block once seconds have passed, whatever socket read it waits in:
    urllib3's timeouts bound each read, not the whole answer, which a receiver may drip, and
    an attempt must end within its lease. A signal timer, so only in the main thread, where
    the worker sends; elsewhere (a test's thread) the per-read timeouts alone apply. A DNS
    lookup, which no signal interrupts, is outside this bound."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def overdue(*_):
        raise _Overdue()

    previous = signal.signal(signal.SIGALRM, overdue)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _secret(endpoint: WebhookEndpoint) -> str | None:
    """The endpoint's secret; None when no data key opens it (logged: its deliveries fail and
    retry until the key is back, and the worker goes on with the others)."""
    try:
        return webhooks.secret_of(endpoint)
    except data_keys.UnreadableSecret:
        logger.error("webhook endpoint %s: no data key opens its secret", endpoint.id)
        return None


def _since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
