"""One-time tokens: the links sent by email (reset, verification, magic link, registration
confirmation, invitation), the short codes of a second factor, and WebAuthn challenges.

A link's value is 256 bits from the CSPRNG, given out once and stored only as its SHA-256 hash.
A token belongs to a user or, for a magic link that a guest may get, to a customer; issuing
one deletes the subject's older unused tokens of the same purpose, and using one is a
conditional UPDATE, so of two concurrent uses only one succeeds.

A code (a login's or a phone's six digits, API.md 11) has too few values for a plain hash:
it is stored as an HMAC keyed with the app's secret key over the token's id and the code, and
found by its user, whose only live code of that purpose it is. A WebAuthn challenge is its
own token value; a login's challenge belongs to no one until the assertion names its user.
"""

import hashlib
import hmac
import secrets
import uuid
from datetime import timedelta

from flask import current_app
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
    value: str | None = None,
) -> str:
    """Create a token for the user (or, without one, the customer); return its only plaintext.

    email is the address the token is sent to; lifetime is a timedelta or seconds; payload is
    what using the token carries out; token_id names the token where an answer must show it;
    value, the token's own value when the caller made it (a WebAuthn challenge), at least as
    random as the default. Only a passkey login's challenge has no subject.
    """
    if purpose not in TOKEN_PURPOSES:
        raise ValueError(f"unknown one-time token purpose {purpose!r}")
    if user is None and customer is None and purpose != "passkey_challenge":
        raise ValueError("a one-time token needs a user or a customer")
    if user is not None or customer is not None:
        discard(purpose, user=user, customer=customer)
    value = value or secrets.token_urlsafe(32)
    _add(purpose, hash_secret(value), token_id or uuid.uuid4(), user, customer, email, lifetime, payload)
    return value


def issue_code(
    purpose: str, user: User, *, email: str | None, lifetime: int, payload: dict | None = None
) -> str:
    """Create a six-digit code for the user, in place of its older unused one; return the code."""
    discard(purpose, user=user)
    code = f"{secrets.randbelow(10**6):06d}"
    token_id = uuid.uuid4()
    _add(purpose, _code_hash(token_id, code), token_id, user, None, email, lifetime, payload)
    return code


def live(purpose: str, user: User) -> OneTimeToken | None:
    """The user's unused, unexpired token of this purpose (issuing keeps at most one), or None."""
    return db.session.scalar(
        select(OneTimeToken)
        .where(
            OneTimeToken.purpose == purpose,
            OneTimeToken.user_id == user.id,
            OneTimeToken.used_at.is_(None),
            OneTimeToken.expires_at > utcnow(),
        )
        .order_by(OneTimeToken.inserted_at.desc())
        .limit(1)
    )


def consume_code(purpose: str, user: User, code: str | None) -> OneTimeToken:
    """Use the user's live code of this purpose if code is it; NotFound if not (or none is live)."""
    token = live(purpose, user)
    if token is None or not code or not hmac.compare_digest(token.token_hash, _code_hash(token.id, code)):
        raise NotFound("code")
    use(token)
    return token


def use(token: OneTimeToken) -> None:
    """Mark the token used; NotFound if another request used it first."""
    now = utcnow()
    used = db.session.execute(
        update(OneTimeToken)
        .where(OneTimeToken.id == token.id, OneTimeToken.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if used.rowcount != 1:
        raise NotFound("one-time token")
    set_committed_value(token, "used_at", now)


def _code_hash(token_id: uuid.UUID, code: str) -> str:
    key = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(key, f"{token_id}:{code}".encode(), hashlib.sha256).hexdigest()


def _add(purpose, token_hash, token_id, user, customer, email, lifetime, payload) -> None:
    if not isinstance(lifetime, timedelta):
        lifetime = timedelta(seconds=lifetime)
    db.session.add(
        OneTimeToken(
            id=token_id,
            purpose=purpose,
            token_hash=token_hash,
            user=user,
            customer=customer,
            email=email,
            expires_at=utcnow() + lifetime,
            payload=payload,
        )
    )
    flush()


def issue_for_no_one(purpose: str) -> str:
    """Do the work of issue() for a subject that does not exist, keep nothing; return a decoy value.

    An answer for an unknown address must cost what one for a known address does (password
    reset, magic link): the same DELETE, an INSERT, and a DELETE of that row, so that both
    transactions write and commit alike. No row survives the transaction, and the value
    returned opens nothing.
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
    value = secrets.token_urlsafe(32)
    decoy = OneTimeToken(purpose=purpose, token_hash=hash_secret(value), email=None, expires_at=utcnow())
    db.session.add(decoy)
    flush()
    db.session.execute(
        delete(OneTimeToken).where(OneTimeToken.id == decoy.id).execution_options(synchronize_session=False)
    )
    db.session.expunge(decoy)
    return value


def discard(purpose: str, *, user: User | None = None, customer: Customer | None = None) -> None:
    """Delete the unused tokens of this purpose of the user (or the customer)."""
    subject = OneTimeToken.user_id == user.id if user else OneTimeToken.customer_id == customer.id
    db.session.execute(
        delete(OneTimeToken)
        .where(OneTimeToken.purpose == purpose, subject, OneTimeToken.used_at.is_(None))
        .execution_options(synchronize_session=False)
    )


def consume(purpose: str | tuple[str, ...], value: str, *, options=()) -> OneTimeToken:
    """Use the token once and return it; NotFound if it is unknown, used, expired or for another purpose.

    purpose may name several, for links used in the same place (a reset and an invitation).
    options: loader options for the token's read, such as the rows the caller goes on to
    need, read with it in the same statement.
    """
    purposes = (purpose,) if isinstance(purpose, str) else purpose
    token = db.session.scalar(
        select(OneTimeToken)
        .where(OneTimeToken.token_hash == hash_secret(value), OneTimeToken.purpose.in_(purposes))
        .options(*options)
        .execution_options(populate_existing=True)
    )
    if token is None or token.used_at is not None or token.expires_at <= utcnow():
        raise NotFound("one-time token")
    use(token)  # NotFound if another request used it first
    return token
