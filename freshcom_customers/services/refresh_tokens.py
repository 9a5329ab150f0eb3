"""Refresh tokens: the account's publishable PRT and users' URTs (hashed, rotated, expiring)."""

import secrets
import uuid
from datetime import timedelta

from flask import current_app
from sqlalchemy import select, update

from freshcom_customers.errors import InvalidCredentials
from freshcom_customers.extensions import db
from freshcom_customers.models import Account, Client, RefreshToken, User, hash_secret
from freshcom_customers.orm import utcnow


def find(value: str) -> RefreshToken:
    """Return the usable refresh token with this value, or raise InvalidCredentials."""
    kind, _, rest = value.partition("-")
    if kind == "prt":
        token = _find_publishable(rest)
    elif kind == "urt":
        token = _find_user_token(value)
    else:
        token = None
    if token is None:
        raise InvalidCredentials()
    return token


def _find_publishable(rest: str) -> RefreshToken | None:
    mode, _, token_id = rest.partition("-")
    try:
        token = db.session.get(RefreshToken, uuid.UUID(token_id))
    except ValueError:
        return None
    if token is None or not token.is_publishable or token.account.mode != mode:
        return None
    return token


def _find_user_token(value: str) -> RefreshToken | None:
    token = db.session.scalar(select(RefreshToken).where(RefreshToken.token_hash == hash_secret(value)))
    if token is None or token.revoked_at is not None:
        return None
    if token.rotated_at is not None:
        # RFC 9700 4.14.2: a rotated token presented again means it leaked; end the family.
        revoke_family(token.family_id)
        return None
    now = utcnow()
    idle = timedelta(seconds=current_app.config["REFRESH_TOKEN_IDLE_LIFETIME"])
    if token.expires_at <= now or token.last_used_at + idle <= now:
        return None
    return token


def issue(
    user: User, account: Account, client: Client, *, family: RefreshToken | None = None, expires_at=None
) -> str:
    """Create a user refresh token; return its value, which is stored only as a hash.

    A successor in a family keeps the family's absolute expiry; expires_at caps a new family.
    """
    now = utcnow()
    value = f"urt-{account.mode}-{secrets.token_urlsafe(32)}"
    lifetime = timedelta(seconds=current_app.config["REFRESH_TOKEN_LIFETIME"])
    db.session.add(
        RefreshToken(
            account=account,
            user=user,
            client=client,
            token_hash=hash_secret(value),
            family_id=family.family_id if family else uuid.uuid4(),
            expires_at=family.expires_at if family else min(now + lifetime, expires_at or now + lifetime),
            last_used_at=now,
        )
    )
    return value


def use(token: RefreshToken, account: Account) -> str | None:
    """Record a use of a user refresh token; return its successor when the client rotates.

    The rotation is one conditional UPDATE, so of two concurrent uses of one token at most
    one succeeds.
    """
    now = utcnow()
    if not token.client.rotate_refresh_tokens:
        token.last_used_at = now
        return None
    rotated = db.session.execute(
        update(RefreshToken)
        .where(
            RefreshToken.id == token.id, RefreshToken.rotated_at.is_(None), RefreshToken.revoked_at.is_(None)
        )
        .values(rotated_at=now, last_used_at=now)
        .execution_options(synchronize_session=False)
    )
    if rotated.rowcount != 1:
        raise InvalidCredentials()
    return issue(token.user, account, token.client, family=token)


def branch(token: RefreshToken, account: Account) -> str:
    """Start a family in the test twin that lives no longer than the live token's family."""
    token.last_used_at = utcnow()
    return issue(token.user, account, token.client, expires_at=token.expires_at)


def revoke_family(family_id: uuid.UUID) -> None:
    db.session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
