"""Accounts, their test twins, publishable keys and OAuth clients."""

import re
import secrets
import uuid
from collections.abc import Iterator
from datetime import timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import selectinload

from freshcom_customers.errors import InvalidCredentials, NotFound, invalid
from freshcom_customers.extensions import db
from freshcom_customers.models import (
    STAFF_ROLES,
    Account,
    AccountMembership,
    Client,
    RefreshToken,
    User,
    hash_secret,
)
from freshcom_customers.models.base import utcnow
from freshcom_customers.observability import security_events
from freshcom_customers.services import refresh_tokens, users
from freshcom_customers.services.database import as_uuid, flush

HANDLE = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
# Freshcom's docs print scopes as aid:aid-test-<uuid>; accept that spelling too.
_PREFIXED_ID = re.compile(r"^aid-(?:live|test)-(?P<id>[0-9a-fA-F-]{32,36})$")


def create_account(name: str, *, owner_email: str, owner_password: str, handle: str | None = None):
    """Create a live account, its test twin, both PRTs and default clients, and the owner."""
    if handle is not None and not HANDLE.match(handle):
        raise invalid("handle", "format", "Handle must be 2-63 lowercase letters, digits or dashes.")
    live = Account(name=name, handle=handle, mode="live")
    test = Account(name=name, mode="test", live_account=live)
    db.session.add_all([live, test])
    db.session.add_all([RefreshToken(account=live), RefreshToken(account=test)])
    # One default client serves the live account and its twin.
    db.session.add(Client(account=live, name="Default", is_default=True))
    owner = users.create_standard_user(owner_email, owner_password, default_account=live)
    db.session.add(AccountMembership(account=live, user=owner, role="owner"))
    flush()
    return live, test, owner


def create_client(
    account: Account, name: str, *, confidential: bool, rotation: bool = True, role: str | None = None
):
    """Create an extra client; return it with its secret, shown once and stored only hashed.

    A client with a role is a machine (API.md 12): confidential, and client_credentials is its
    only grant; its tokens act with that staff role.
    """
    if role is not None:
        if role not in STAFF_ROLES:
            raise invalid("role", "inclusion", f"A client's role is one of {', '.join(STAFF_ROLES)}.")
        if not confidential:
            raise invalid(
                "role", "confidential", "A client with a role must be confidential (it has a secret)."
            )
    secret = secrets.token_urlsafe(32) if confidential else None
    client = Client(
        account_id=account.live_id,  # a live account's client serves its test twin too
        name=name,
        secret_hash=hash_secret(secret) if secret else None,
        rotate_refresh_tokens=rotation,
        role=role,
    )
    if role is not None:
        client.grant_types = "client_credentials"
    db.session.add(client)
    flush()
    return client, secret


def rotate_client_secret(client: Client, grace: timedelta) -> str:
    """Give a confidential client a new secret; the old one keeps working for grace. Return the new one."""
    if not client.is_confidential:
        raise invalid("client", "public", "A public client has no secret to rotate.")
    secret = secrets.token_urlsafe(32)
    client.previous_secret_hash = client.secret_hash if grace > timedelta(0) else None
    client.previous_secret_expires_at = utcnow() + grace if grace > timedelta(0) else None
    client.secret_hash = hash_secret(secret)
    security_events.record(
        "client_secret_rotated",
        client_id=str(client.id),
        account_id=str(client.account_id),
        grace=int(grace.total_seconds()),
    )
    return secret


def list_clients(account: Account) -> list[Client]:
    """The account's clients, the default first, then oldest first."""
    return list(
        db.session.scalars(
            select(Client)
            .where(Client.account_id == account.live_id)
            .order_by(Client.is_default.desc(), Client.inserted_at, Client.id)
        )
    )


def get_client(account: Account, client_id: str | None) -> Client:
    """The account's client with this id, or its default client when client_id is None."""
    if client_id is None:
        return default_client(account)
    client_id = as_uuid(client_id)
    client = db.session.get(Client, client_id) if client_id else None
    if client is None or not client.serves(account):
        raise NotFound("client")
    return client


def live_accounts(batch: int = 500) -> Iterator[Account]:
    """Every live account, oldest first, read a batch at a time."""
    query = select(Account).where(Account.mode == "live").order_by(Account.inserted_at, Account.id)
    query = query.options(selectinload(Account.test_account)).execution_options(yield_per=batch)
    return db.session.scalars(query)


def clients(account: Account) -> list[Client]:
    """The clients that serve the account (a live account's serve its twin), the default first."""
    query = select(Client).where(Client.account_id == account.live_id)
    return list(db.session.scalars(query.order_by(Client.is_default.desc(), Client.inserted_at, Client.id)))


def user_counts(account: Account) -> dict[str, int]:
    """How many owners and members (standard users, owners included) and managed staff users it has."""
    live_id = account.live_id
    memberships = select(func.count()).where(AccountMembership.account_id == live_id)
    twins = select(Account.id).where(or_(Account.id == live_id, Account.live_account_id == live_id))
    staff = select(func.count()).where(User.account_id.in_(twins), User.role != "customer")
    return {
        "owners": db.session.scalar(memberships.where(AccountMembership.role == "owner")),
        "members": db.session.scalar(memberships),
        "staff": db.session.scalar(staff),
    }


def find_by_reference(reference: str) -> Account | None:
    """Find an account by uuid, aid-<mode>-<uuid> or handle; None if there is none."""
    account_id = referenced_id(reference)
    if account_id is not None:
        return db.session.get(Account, account_id)
    return db.session.scalar(select(Account).where(Account.handle == reference.lower()))


def referenced_id(reference: str) -> uuid.UUID | None:
    """The account id a reference gives (a uuid or aid-<mode>-<uuid>); None for a handle."""
    match = _PREFIXED_ID.match(reference)
    return as_uuid(match["id"] if match else reference)


def default_client(account: Account) -> Client:
    """The public client used when a request names none (Freshcom's SDKs never do)."""
    return db.session.scalar(select(Client).where(Client.account_id == account.live_id, Client.is_default))


def of_publishable_key(key: str | None) -> Account:
    """The account whose publishable key (prt-<mode>-<uuid>) this is; InvalidCredentials if none."""
    if not key or not key.startswith("prt-"):
        raise InvalidCredentials()
    return refresh_tokens.find(key).account


def publishable_token(account: Account) -> RefreshToken:
    """The account's current publishable key (keys rotated out are not it, even in their grace period)."""
    return db.session.scalar(_publishable(account).where(RefreshToken.expires_at.is_(None)))


def retiring_publishable_tokens(account: Account) -> list[RefreshToken]:
    """Keys rotated out that still work, the first to stop first."""
    query = _publishable(account).where(RefreshToken.expires_at > utcnow()).order_by(RefreshToken.expires_at)
    return list(db.session.scalars(query))


def rotate_publishable_key(account: Account, grace: timedelta) -> tuple[RefreshToken, RefreshToken]:
    """Give the account a new publishable key; the current one keeps working for grace, then stops.

    Storefronts ship the key in their code, so they need the grace period to deploy the new
    one. Guest access tokens already issued from the old key live out their lifetime.
    """
    old = publishable_token(account)
    old.expires_at = utcnow() + grace
    flush()  # the old key leaves the one current place before the new key takes it
    new = RefreshToken(account=account)
    db.session.add(new)
    flush()
    return new, old


def _publishable(account: Account):
    return select(RefreshToken).where(RefreshToken.account_id == account.id, RefreshToken.user_id.is_(None))
