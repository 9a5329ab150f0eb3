"""One-time tokens sent by email: reset, verification, magic link, registration confirmation, invitation.

The value is 256 bits from the CSPRNG, given out once and stored only as its SHA-256 hash.
A token belongs to a user or, for a magic link that a guest may get, to a customer; issuing
one deletes the subject's older unused tokens of the same purpose, and using one is a
conditional UPDATE, so of two concurrent uses only one succeeds.
"""

import secrets
import uuid
from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm.attributes import set_committed_value

from freshcom_customers.errors import NotFound
from freshcom_customers.extensions import db
from freshcom_customers.models import TOKEN_PURPOSES, Customer, OneTimeToken, User, hash_secret
from freshcom_customers.models.base import utcnow
from freshcom_customers.services.database import flush


def issue(
    purpose: str,
    *,
    user: User | None = None,
    customer: Customer | None = None,
    email: str | None,
    lifetime: timedelta | int,
    payload: dict | None = None,
    token_id: uuid.UUID | None = None,
) -> str:
    """Create a token for the user (or, without one, the customer); return its only plaintext.

    email is the address the token is sent to; lifetime is a timedelta or seconds; payload is
    what using the token carries out; token_id names the token where an answer must show it.
    """
    if purpose not in TOKEN_PURPOSES:
        raise ValueError(f"unknown one-time token purpose {purpose!r}")
    if user is None and customer is None:
        raise ValueError("a one-time token needs a user or a customer")
    if not isinstance(lifetime, timedelta):
        lifetime = timedelta(seconds=lifetime)
    discard(purpose, user=user, customer=customer)
    value = secrets.token_urlsafe(32)
    db.session.add(
        OneTimeToken(
            id=token_id or uuid.uuid4(),
            purpose=purpose,
            token_hash=hash_secret(value),
            user=user,
            customer=customer,
            email=email,
            expires_at=utcnow() + lifetime,
            payload=payload,
        )
    )
    flush()
    return value


def issue_for_no_one(purpose: str) -> None:
    """Do the database work of issue() for a subject that does not exist, and keep nothing.

    An answer for an unknown address must cost what one for a known address does (password
    reset, magic link): the same DELETE, an INSERT, and a DELETE of that row, so that both
    transactions write and commit alike. No row survives the transaction.
    """
    db.session.execute(
        delete(OneTimeToken)
        .where(
            OneTimeToken.purpose == purpose,
            OneTimeToken.user_id == uuid.uuid4(),
            OneTimeToken.used_at.is_(None),
        )
        .execution_options(synchronize_session=False)
    )
    decoy = OneTimeToken(
        purpose=purpose, token_hash=hash_secret(secrets.token_urlsafe(32)), email=None, expires_at=utcnow()
    )
    db.session.add(decoy)
    flush()
    db.session.execute(
        delete(OneTimeToken).where(OneTimeToken.id == decoy.id).execution_options(synchronize_session=False)
    )
    db.session.expunge(decoy)


def discard(purpose: str, *, user: User | None = None, customer: Customer | None = None) -> None:
    """Delete the unused tokens of this purpose of the user (or the customer)."""
    subject = OneTimeToken.user_id == user.id if user else OneTimeToken.customer_id == customer.id
    db.session.execute(
        delete(OneTimeToken)
        .where(OneTimeToken.purpose == purpose, subject, OneTimeToken.used_at.is_(None))
        .execution_options(synchronize_session=False)
    )


def consume(purpose: str | tuple[str, ...], value: str) -> OneTimeToken:
    """Use the token once and return it; NotFound if it is unknown, used, expired or for another purpose.

    purpose may name several, for links used in the same place (a reset and an invitation).
    """
    purposes = (purpose,) if isinstance(purpose, str) else purpose
    token = db.session.scalar(
        select(OneTimeToken)
        .where(OneTimeToken.token_hash == hash_secret(value), OneTimeToken.purpose.in_(purposes))
        .execution_options(populate_existing=True)
    )
    now = utcnow()
    if token is None or token.used_at is not None or token.expires_at <= now:
        raise NotFound("one-time token")
    used = db.session.execute(
        update(OneTimeToken)
        .where(OneTimeToken.id == token.id, OneTimeToken.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if used.rowcount != 1:
        raise NotFound("one-time token")  # another request used it first
    set_committed_value(token, "used_at", now)
    return token
