"""Refresh tokens: the account's publishable PRT and users' URTs (hashed, rotated, expiring).

A URT belongs to a family: every token rotated from one login. A family's first token has
the family's id as its own, so whether a family is revoked is one primary key lookup.
"""

import secrets
import uuid
from datetime import datetime, timedelta
from typing import NamedTuple

from flask import current_app
from sqlalchemy import and_, bindparam, exists, insert, select, update
from sqlalchemy.orm import joinedload

from freshcom_customers.errors import InvalidCredentials
from freshcom_customers.extensions import db
from freshcom_customers.models import (
    Account,
    Client,
    Customer,
    LoginSession,
    RefreshToken,
    User,
    hash_secret,
)
from freshcom_customers.models.base import utcnow
from freshcom_customers.observability import security_events
from freshcom_customers.services import callers


class Issued(NamedTuple):
    """A URT as its client gets it, and the family it belongs to."""

    value: str
    family_id: uuid.UUID


class Presented(NamedTuple):
    """A usable refresh token, and what a user's token is read with for the refresh grant:
    the id of its user's customer in its account, and when its session was last used."""

    token: RefreshToken
    customer_id: uuid.UUID | None = None
    session_used_at: datetime | None = None


# A user's refresh token with what the refresh grant needs next, in one query: its account,
# user and client, the user's customer in the account, and its session's last use.
_USER_TOKEN = (
    select(RefreshToken, Customer.id, LoginSession.last_used_at)
    .outerjoin(
        Customer,
        and_(Customer.user_id == RefreshToken.user_id, Customer.account_id == RefreshToken.account_id),
    )
    .outerjoin(LoginSession, LoginSession.id == RefreshToken.family_id)
    .options(joinedload(RefreshToken.account), joinedload(RefreshToken.user), joinedload(RefreshToken.client))
    .where(RefreshToken.token_hash == bindparam("token_hash"))
)
_INSERT = insert(RefreshToken.__table__)
# A rotation: of concurrent uses of one token, the first spends it and the others find nothing.
# It revokes nothing, so the callers the user's access tokens name are unchanged.
_ROTATE = (
    update(RefreshToken)
    .where(
        RefreshToken.id == bindparam("token_id"),
        RefreshToken.rotated_at.is_(None),
        RefreshToken.revoked_at.is_(None),
    )
    .values(rotated_at=bindparam("now"), last_used_at=bindparam("now"))
    .execution_options(synchronize_session=False, **callers.UNAFFECTED)
)


def find(value: str) -> RefreshToken:
    """Return the usable refresh token with this value, or raise InvalidCredentials."""
    return present(value).token


def present(value: str) -> Presented:
    """The usable refresh token with this value, as the refresh grant reads it; raise
    InvalidCredentials if there is none."""
    kind, _, rest = value.partition("-")
    if kind == "prt":
        token = _find_publishable(rest)
        presented = Presented(token) if token is not None and _in_grace(token) else None
    elif kind == "urt":
        presented = _find_user_token(value)
    else:
        presented = None
    if presented is None:
        raise InvalidCredentials()
    return presented


def lookup(value: str) -> RefreshToken | None:
    """The refresh token with this value, in whatever state, without using it; None if unknown."""
    kind, _, rest = value.partition("-")
    if kind == "prt":
        return _find_publishable(rest)
    if kind == "urt":
        return db.session.scalar(select(RefreshToken).where(RefreshToken.token_hash == hash_secret(value)))
    return None


def _find_publishable(rest: str) -> RefreshToken | None:
    mode, _, token_id = rest.partition("-")
    try:
        token = db.session.get(RefreshToken, uuid.UUID(token_id))
    except ValueError:
        return None
    if token is None or not token.is_publishable or token.account.mode != mode:
        return None
    return token


def _find_user_token(value: str) -> Presented | None:
    row = db.session.execute(_USER_TOKEN, {"token_hash": hash_secret(value)}).one_or_none()
    token = row[0] if row is not None else None
    if token is None or token.revoked_at is not None:
        return None
    if token.rotated_at is not None:
        _replayed(token)
        return None
    return Presented(*row) if _unexpired(token) else None


def _replayed(token: RefreshToken) -> None:
    """A rotated token came back: revoke its family, unless it was rotated a moment ago.

    RFC 9700 4.14.2: a rotated token presented again means it leaked. But a client that
    refreshes twice at once (two tabs, a retry) presents the same token twice within
    moments; within the grace window the second gets invalid_grant and the family lives.
    """
    grace = timedelta(seconds=current_app.config["REFRESH_TOKEN_REUSE_GRACE"])
    if token.rotated_at + grace > utcnow():
        return
    revoke_family(token.family_id)
    security_events.record(
        "refresh_token_reuse",
        family_id=str(token.family_id),
        user_id=str(token.user_id),
        account_id=str(token.account_id),
        client_id=str(token.client_id),
    )


def _in_grace(token: RefreshToken) -> bool:
    """A publishable key works until the grace period after its rotation ends (forever if never rotated)."""
    return token.expires_at is None or utcnow() < token.expires_at


def _unexpired(token: RefreshToken) -> bool:
    """Within both its absolute (family) lifetime and its idle lifetime."""
    now = utcnow()
    idle = timedelta(seconds=current_app.config["REFRESH_TOKEN_IDLE_LIFETIME"])
    return now < token.expires_at and now < token.last_used_at + idle


def is_active(token: RefreshToken) -> bool:
    """Would the refresh grant accept this token (leaving its client aside)?"""
    if token.is_publishable:
        return _in_grace(token)
    usable = token.revoked_at is None and token.rotated_at is None and _unexpired(token)
    return usable and token.user.is_active


def expires_at(token: RefreshToken):
    """When the URT stops working if it is not used: the earlier of its two expiries."""
    idle = timedelta(seconds=current_app.config["REFRESH_TOKEN_IDLE_LIFETIME"])
    return min(token.expires_at, token.last_used_at + idle)


def issue(
    user: User, account: Account, client: Client, *, family: RefreshToken | None = None, expires_at=None
) -> Issued:
    """Create a user refresh token, stored only as a hash; a new family unless family is given.

    A successor in a family keeps the family's absolute expiry; expires_at caps a new family.
    The user, account and client are rows the database has already.
    """
    now = utcnow()
    value = f"urt-{account.mode}-{secrets.token_urlsafe(32)}"
    lifetime = timedelta(seconds=current_app.config["REFRESH_TOKEN_LIFETIME"])
    family_id = family.family_id if family else uuid.uuid4()
    # One INSERT now, not an object for the flush: nothing in the request reads the row again,
    # and the unit of work costs more than the statement (docs/decisions.md, issue 18).
    row = {
        "id": uuid.uuid4() if family else family_id,
        "account_id": account.id,
        "user_id": user.id,
        "client_id": client.id,
        "token_hash": hash_secret(value),
        "family_id": family_id,
        "expires_at": family.expires_at if family else min(now + lifetime, expires_at or now + lifetime),
        "last_used_at": now,
    }
    db.session.execute(_INSERT, row)
    return Issued(value, family_id)


def use(token: RefreshToken, account: Account, value: str) -> Issued:
    """Record a use of the user refresh token value; return what the client holds from now on.

    A rotating client gets a successor in the same family, and the used token is spent; the
    rotation is one conditional UPDATE, so of concurrent uses of one token at most one
    succeeds (InvalidCredentials for the others). A client without rotation keeps its token,
    which its absolute and idle expiry bound.
    """
    now = utcnow()
    if not token.client.rotate_refresh_tokens:
        token.last_used_at = now
        return Issued(value, token.family_id)
    rotated = db.session.execute(_ROTATE, {"token_id": token.id, "now": now})
    if rotated.rowcount != 1:
        raise InvalidCredentials()
    return issue(token.user, account, token.client, family=token)


def branch(token: RefreshToken, account: Account) -> Issued:
    """Start a family in the test twin that lives no longer than the live token's family."""
    token.last_used_at = utcnow()
    return issue(token.user, account, token.client, expires_at=token.expires_at)


def family_is_live(family_id: uuid.UUID) -> bool:
    """False once the family is revoked (logout, reuse, password change, suspension)."""
    first = db.session.get(RefreshToken, family_id, populate_existing=True)
    if first is not None:
        return first.revoked_at is None
    # A family begun before first tokens took the family's id: look for any unrevoked token.
    return db.session.scalar(
        select(exists().where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None)))
    )


def revoke_family(family_id: uuid.UUID) -> None:
    """Revoke every token of the family, and end its session (services/sessions) with it."""
    now = utcnow()
    db.session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    # Its owner's list of sessions must not show it, whoever revoked it (reuse, RFC 7009, logout).
    db.session.execute(
        update(LoginSession)
        .where(LoginSession.id == family_id, LoginSession.ended_at.is_(None))
        .values(ended_at=now)
        .execution_options(synchronize_session=False)
    )
