"""Housekeeping: delete the tokens no request can use any more, a batch at a time.

What goes, once it has been past its life for longer than the retention (docs/decisions.md,
"Housekeeping"):

- A one-time token whose expiry has passed. consume() refuses it from then on, and a used
  token was used before it expired, so its expiry covers it too.
- A user refresh token family, whole, whose absolute expiry has passed. Every token of a
  family carries that expiry (a successor inherits it) and none refreshes past it, so a
  replayed rotated token could only revoke a family that can do nothing; every access token
  naming the family was issued before that expiry and, the retention being at least an access
  token's life, has expired as well. A revoked or idle family waits for the same moment.
- Never a publishable key (user_id NULL): guest access to a store hangs on it.
- A login session (services/sessions) ended before the cutoff, a Chec one whose JWT expired
  before it, and a native one whose family is gone (purged above, which it follows). An
  access token of a purged ended session still dies: its family is revoked, or gone.
- A webhook event (API.md 12) that happened before the cutoff and waits for no delivery (each
  succeeded or failed for good), with its deliveries' log.
- A failed login of no customer in the history (services/history.py writes one whatever the
  username, so that an unknown one costs what a known one does). A customer's history stays.

Each batch is one DELETE, and the caller commits after each one: a long purge holds its locks
for a batch at most and can stop between any two.
"""

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import NamedTuple

from flask import current_app
from sqlalchemy import Delete, and_, delete, exists, func, or_, select

from freshcom_customers.extensions import db
from freshcom_customers.models import (
    CustomerEvent,
    LoginSession,
    OneTimeToken,
    RefreshToken,
    WebhookDelivery,
    WebhookEvent,
)
from freshcom_customers.models.base import utcnow

DEFAULT_BATCH_SIZE = 5_000
DEFAULT_RETENTION = timedelta(days=7)


class Counts(NamedTuple):
    """Tokens purged, or that a purge would delete."""

    one_time_tokens: int
    refresh_tokens: int
    sessions: int = 0
    webhook_events: int = 0
    unknown_failed_logins: int = 0


def purge_before(retention: timedelta = DEFAULT_RETENTION) -> datetime:
    """Return the moment a token's expiry must precede for it to go; ValueError for too short a retention."""
    shortest = timedelta(seconds=current_app.config["ACCESS_TOKEN_LIFETIME"])
    if retention < shortest:
        # Sooner, the access tokens of a family purged just after its expiry would die early.
        raise ValueError(f"must be at least the access token lifetime ({int(shortest.total_seconds())} s)")
    return utcnow() - retention


def count(before: datetime) -> Counts:
    """Count the tokens a purge with this cutoff would delete now."""
    return Counts(
        db.session.scalar(select(func.count()).where(_expired_one_time_token(before))),
        db.session.scalar(select(func.count()).where(_expired_refresh_token(before))),
        db.session.scalar(select(func.count()).where(_expired_session(before))),
        db.session.scalar(select(func.count()).where(_finished_webhook_event(before))),
        db.session.scalar(select(func.count()).where(_unknown_failed_login(before))),
    )


def purge_one_time_tokens(before: datetime, batch_size: int = DEFAULT_BATCH_SIZE) -> Iterator[int]:
    """Delete one-time tokens expired before the cutoff, oldest first; yield each batch's count.

    The caller commits after each batch.
    """
    expired = _expired_one_time_token(before)
    oldest = select(OneTimeToken.id).where(expired).order_by(OneTimeToken.expires_at).limit(batch_size)
    return _batches(delete(OneTimeToken).where(OneTimeToken.id.in_(oldest)), batch_size)


def purge_refresh_tokens(before: datetime, batch_size: int = DEFAULT_BATCH_SIZE) -> Iterator[int]:
    """Delete user refresh token families expired before the cutoff, whole; yield each batch's count.

    A batch takes the families of the oldest batch_size expired tokens, and all of their
    tokens: a family's tokens share its expiry, so they sit together in the index, and a
    batch deletes little more than batch_size rows. The caller commits after each batch.
    """
    expired = _expired_refresh_token(before)
    families = (
        select(RefreshToken.family_id)
        .where(expired)
        .order_by(RefreshToken.expires_at, RefreshToken.family_id)
        .limit(batch_size)
    )
    # Never half a family: with its first token gone and another left, access tokens naming it
    # would be judged by the rest (refresh_tokens.family_is_live).
    return _batches(delete(RefreshToken).where(RefreshToken.family_id.in_(families), expired), batch_size)


def purge_sessions(before: datetime, batch_size: int = DEFAULT_BATCH_SIZE) -> Iterator[int]:
    """Delete login sessions ended or expired before the cutoff; yield each batch's count.

    Run it after purge_refresh_tokens: a native session goes once its family has. The caller
    commits after each batch.
    """
    oldest = select(LoginSession.id).where(_expired_session(before)).limit(batch_size)
    return _batches(delete(LoginSession).where(LoginSession.id.in_(oldest)), batch_size)


def purge_webhook_events(before: datetime, batch_size: int = DEFAULT_BATCH_SIZE) -> Iterator[int]:
    """Delete webhook events that happened before the cutoff and wait for no delivery, with their
    deliveries' log; yield each batch's count. The caller commits after each batch."""
    oldest = select(WebhookEvent.id).where(_finished_webhook_event(before)).limit(batch_size)
    return _batches(delete(WebhookEvent).where(WebhookEvent.id.in_(oldest)), batch_size)


def purge_unknown_failed_logins(before: datetime, batch_size: int = DEFAULT_BATCH_SIZE) -> Iterator[int]:
    """Delete the history rows of failed logins of no customer (services/history.py) written
    before the cutoff; yield each batch's count. The caller commits after each batch."""
    oldest = select(CustomerEvent.id).where(_unknown_failed_login(before)).limit(batch_size)
    return _batches(delete(CustomerEvent).where(CustomerEvent.id.in_(oldest)), batch_size)


def _finished_webhook_event(before: datetime):
    waiting = exists().where(WebhookDelivery.event_id == WebhookEvent.id, WebhookDelivery.status == "pending")
    return and_(WebhookEvent.occurred_at < before, ~waiting)


def _unknown_failed_login(before: datetime):
    return and_(CustomerEvent.customer_id.is_(None), CustomerEvent.occurred_at < before)


def _expired_session(before: datetime):
    chec_lifetime = timedelta(seconds=current_app.config["CHEC_JWT_LIFETIME"])
    family_left = exists().where(RefreshToken.family_id == LoginSession.id)
    return or_(
        LoginSession.ended_at < before,
        and_(LoginSession.face == "chec", LoginSession.created_at < before - chec_lifetime),
        and_(LoginSession.face == "oauth", LoginSession.created_at < before, ~family_left),
    )


def _expired_one_time_token(before: datetime):
    return OneTimeToken.expires_at < before


def _expired_refresh_token(before: datetime):
    # user_id IS NOT NULL keeps publishable keys out whatever their columns say, and matches
    # the partial index. Every user token has a family (refresh_tokens.issue).
    return and_(
        RefreshToken.user_id.is_not(None),
        RefreshToken.family_id.is_not(None),
        RefreshToken.expires_at < before,
    )


def _batches(statement: Delete, batch_size: int) -> Iterator[int]:
    """Run the DELETE until a batch comes back short; yield how many rows each one deleted."""
    statement = statement.execution_options(synchronize_session=False)
    while True:
        deleted = db.session.execute(statement).rowcount
        if deleted:
            yield deleted
        if deleted < batch_size:
            return
