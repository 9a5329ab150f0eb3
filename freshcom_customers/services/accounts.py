"""Accounts, their test twins, publishable keys and OAuth clients."""

import re
import secrets

from sqlalchemy import select

from freshcom_customers.errors import InvalidCredentials, NotFound, invalid
from freshcom_customers.extensions import db
from freshcom_customers.models import Account, AccountMembership, Client, RefreshToken, hash_secret
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


def create_client(account: Account, name: str, *, confidential: bool, rotation: bool = True):
    """Create an extra client; return it with its secret, shown once and stored only hashed."""
    secret = secrets.token_urlsafe(32) if confidential else None
    client = Client(
        account=account,
        name=name,
        secret_hash=hash_secret(secret) if secret else None,
        rotate_refresh_tokens=rotation,
    )
    db.session.add(client)
    flush()
    return client, secret


def get_client(account: Account, client_id: str | None) -> Client:
    """The account's client with this id, or its default client when client_id is None."""
    if client_id is None:
        return default_client(account)
    client_id = as_uuid(client_id)
    client = db.session.get(Client, client_id) if client_id else None
    if client is None or not client.serves(account):
        raise NotFound("client")
    return client


def get_account(account_id) -> Account:
    account_id = as_uuid(account_id)
    account = db.session.get(Account, account_id) if account_id else None
    if account is None:
        raise NotFound("account")
    return account


def find_by_reference(reference: str) -> Account | None:
    """Find an account by uuid, aid-<mode>-<uuid> or handle; None if there is none."""
    match = _PREFIXED_ID.match(reference)
    account_id = as_uuid(match["id"] if match else reference)
    if account_id is not None:
        return db.session.get(Account, account_id)
    return db.session.scalar(select(Account).where(Account.handle == reference.lower()))


def default_client(account: Account) -> Client:
    """The public client used when a request names none (Freshcom's SDKs never do)."""
    return db.session.scalar(select(Client).where(Client.account_id == account.live_id, Client.is_default))


def of_publishable_key(key: str | None) -> Account:
    """The account whose publishable key (prt-<mode>-<uuid>) this is; InvalidCredentials if none."""
    if not key or not key.startswith("prt-"):
        raise InvalidCredentials()
    return refresh_tokens.find(key).account


def publishable_token(account: Account) -> RefreshToken:
    return db.session.scalar(
        select(RefreshToken).where(RefreshToken.account_id == account.id, RefreshToken.user_id.is_(None))
    )
