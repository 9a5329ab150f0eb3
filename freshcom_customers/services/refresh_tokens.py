"""Refresh tokens: the account's publishable PRT and users' URTs (hashed, rotated, expiring).

A URT belongs to a family: every token rotated from one login. A family's first token has
the family's id as its own, so whether a family is revoked is one primary key lookup.
"""

import secrets
import uuid
from datetime import datetime, timedelta
from typing import NamedTuple

from flask import current_app
from sqlalchemy import (
    ARRAY,
    String,
    and_,
    any_,
    bindparam,
    exists,
    func,
    insert,
    literal,
    not_,
    or_,
    select,
    update,
)
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
from freshcom_customers.models.base import UTCDateTime, utcnow
from freshcom_customers.observability import security_events
from freshcom_customers.services import callers, database


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


class Refreshed(NamedTuple):
    """A customer's refresh token used in one statement: what its client holds from now on
    (a successor, or the token itself where the client does not rotate), and what the access
    token names."""

    issued: Issued
    account_id: uuid.UUID
    user_id: uuid.UUID
    token_generation: int
    customer_id: uuid.UUID
    client_id: uuid.UUID


class Guest(NamedTuple):
    """A publishable key checked in one statement: what a guest's access token names, and
    the key as its client gets it back."""

    account_id: uuid.UUID
    client_id: uuid.UUID
    publishable_key: str


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


def _default_client_refreshing(accounts, clients) -> list:
    """The conditions on a client of the one-statement refreshes: it is the default client of
    the account's live account (a test twin shares it), and allows the refresh_token grant
    (Client.check_grant_type, in SQL)."""
    return [
        clients.c.account_id == func.coalesce(accounts.c.live_account_id, accounts.c.id),
        clients.c.is_default,
        _allows_refreshing(clients),
    ]


def _allows_refreshing(clients):
    """The client allows the refresh_token grant: Client.check_grant_type, in SQL."""
    grants = func.string_to_array(clients.c.grant_types, " ", type_=ARRAY(String))
    return literal("refresh_token") == any_(grants)


def _usable_customer_token(*, scoped: bool) -> list:
    """The conditions on the token of the one-statement refreshes of a customer: it is unused,
    unrevoked and unexpired, in an account of the mode its value names; its user is active
    and the customer of its account; scoped: it is the account the scope names. Its client
    is the clients table's row (each statement adds its own conditions on it)."""
    tokens, users, clients = RefreshToken.__table__, User.__table__, Client.__table__
    accounts, customers = Account.__table__, Customer.__table__
    checks = [
        tokens.c.token_hash == bindparam("presented_hash"),
        tokens.c.rotated_at.is_(None),
        tokens.c.revoked_at.is_(None),
        tokens.c.expires_at > bindparam("now", type_=UTCDateTime()),
        tokens.c.last_used_at > bindparam("idle_since", type_=UTCDateTime()),
        accounts.c.id == tokens.c.account_id,
        accounts.c.mode == bindparam("mode"),
        users.c.id == tokens.c.user_id,
        users.c.account_id == tokens.c.account_id,
        users.c.role == "customer",
        users.c.status == "active",
        customers.c.user_id == users.c.id,
        customers.c.account_id == tokens.c.account_id,
        clients.c.id == tokens.c.client_id,
    ]
    if scoped:
        checks.append(tokens.c.account_id == bindparam("scope_account_id"))
    return checks


def _refreshed(used, *writes):
    """The one-statement refresh's query: used (a CTE naming the token's account_id, user_id,
    client_id and family_id, its user's token_generation and its customer_id) and its other
    writes, the session's use noted at most once a TOUCH interval; it returns what the
    access token names, and commits without waiting for the disk (database.unflushed)."""
    login_sessions = LoginSession.__table__
    touched = (
        update(login_sessions)
        .where(
            login_sessions.c.id == used.c.family_id,
            LoginSession.due_a_touch(bindparam("touch_before", type_=UTCDateTime())),
        )
        .values(last_used_at=bindparam("now", type_=UTCDateTime()))
        .cte("touched")
    )
    returned = select(
        used.c.account_id,
        used.c.user_id,
        used.c.token_generation,
        used.c.customer_id,
        used.c.client_id,
        used.c.family_id,
    ).add_cte(*writes, touched)
    return database.unflushed(returned)


def _rotation_at_once(*, scoped: bool):
    """One PostgreSQL statement for the common refresh: a customer's token in its own account,
    from the account's default client, which rotates.

    It spends the token only where everything the refresh grant checks holds (the token is
    unused, unrevoked and unexpired; its user is active and the customer of its account; its
    client is the account's default one, allows the grant and rotates; scoped: it is the
    account the scope names), inserts the successor, notes the session's use at most once a
    TOUCH interval, and returns what the access token names. Where any check fails it
    changes nothing and returns no row, and the grant reads the token the general way.
    It commits without waiting for the disk (database.unflushed): a database crash just
    after may lose the rotation, leaving the old token unspent and the successor unknown.
    """
    tokens, clients, accounts = RefreshToken.__table__, Client.__table__, Account.__table__
    users, customers = User.__table__, Customer.__table__
    now = bindparam("now", type_=UTCDateTime())
    checks = [
        *_usable_customer_token(scoped=scoped),
        *_default_client_refreshing(accounts, clients),
        clients.c.rotate_refresh_tokens,
    ]
    spent = (
        update(tokens)
        .where(*checks)
        .values(rotated_at=now, last_used_at=now)
        .returning(
            tokens.c.account_id,
            tokens.c.user_id,
            tokens.c.client_id,
            tokens.c.family_id,
            tokens.c.expires_at,
            users.c.token_generation,
            customers.c.id.label("customer_id"),
        )
        .cte("spent")
    )
    successor = (
        insert(tokens)
        .from_select(
            [
                "id",
                "account_id",
                "user_id",
                "client_id",
                "token_hash",
                "family_id",
                "expires_at",
                "last_used_at",
                "inserted_at",
            ],
            select(
                bindparam("successor_id", type_=tokens.c.id.type),
                spent.c.account_id,
                spent.c.user_id,
                spent.c.client_id,
                bindparam("successor_hash", type_=tokens.c.token_hash.type),
                spent.c.family_id,
                spent.c.expires_at,
                now,
                now,
            ),
        )
        .cte("successor")
    )
    return _refreshed(spent, successor)


_ROTATE_AT_ONCE = {scoped: _rotation_at_once(scoped=scoped) for scoped in (False, True)}


def _keeping_at_once(*, scoped: bool):
    """One PostgreSQL statement for a customer's refresh from a public client that names
    itself (client_id, no secret) and does not rotate: a native app's, say.

    It reads the token only where everything the refresh grant checks holds (as
    _rotation_at_once, and the client is the one named, public, of the token, serving its
    account, allowing the grant and not rotating), notes the token's last use, which its
    idle expiry counts from, at most once a TOUCH interval (refresh_tokens.use), and the
    session's likewise, and returns what the access token names. Otherwise no row and no
    change, and the grant goes the general way, which authenticates the client.
    """
    tokens, clients, accounts = RefreshToken.__table__, Client.__table__, Account.__table__
    users, customers = User.__table__, Customer.__table__
    live_account_id = func.coalesce(accounts.c.live_account_id, accounts.c.id)
    found = (
        select(
            tokens.c.id,
            tokens.c.account_id,
            tokens.c.user_id,
            tokens.c.client_id,
            tokens.c.family_id,
            tokens.c.last_used_at,
            users.c.token_generation,
            customers.c.id.label("customer_id"),
        )
        .where(
            *_usable_customer_token(scoped=scoped),
            clients.c.id == bindparam("named_client", type_=clients.c.id.type),
            clients.c.secret_hash.is_(None),  # public: Client.check_endpoint_auth_method("none")
            # Client.serves: the client is of the token's account, or of that account's live one.
            clients.c.account_id.in_([accounts.c.id, live_account_id]),
            _allows_refreshing(clients),
            not_(clients.c.rotate_refresh_tokens),
        )
        .cte("found")
    )
    kept = (
        update(tokens)
        .where(
            tokens.c.id == found.c.id,
            found.c.last_used_at <= bindparam("touch_before", type_=UTCDateTime()),
        )
        .values(last_used_at=bindparam("now", type_=UTCDateTime()))
        .cte("kept")
    )
    return _refreshed(found, kept)


_KEEP_AT_ONCE = {scoped: _keeping_at_once(scoped=scoped) for scoped in (False, True)}


def rotate_at_once(value: str, account_id: uuid.UUID | None, touch_interval: timedelta) -> Refreshed | None:
    """Rotate a customer's refresh token in one statement (PostgreSQL; _rotation_at_once says
    when); None where that does not apply, and then nothing changed.

    account_id: the account the request's scope names, None when it names none.
    """
    mode = _customer_token_mode(value)
    if mode is None:
        return None
    successor = _new_value(mode)
    params = _at_once_params(value, mode, account_id, touch_interval)
    params |= {"successor_id": uuid.uuid4(), "successor_hash": hash_secret(successor)}
    return _run_at_once(_ROTATE_AT_ONCE[account_id is not None], params, successor)


def keep_at_once(
    value: str, account_id: uuid.UUID | None, client_id: uuid.UUID, touch_interval: timedelta
) -> Refreshed | None:
    """Use a customer's refresh token from the public client client_id, which does not rotate,
    in one statement (PostgreSQL; _keeping_at_once says when); None where that does not
    apply, and then nothing changed.

    account_id: the account the request's scope names, None when it names none.
    """
    mode = _customer_token_mode(value)
    if mode is None:
        return None
    params = _at_once_params(value, mode, account_id, touch_interval) | {"named_client": client_id}
    return _run_at_once(_KEEP_AT_ONCE[account_id is not None], params, value)


def _customer_token_mode(value: str) -> str | None:
    """The mode a user refresh token's value names, where a one-statement refresh may take
    it (PostgreSQL); else None."""
    kind, _, rest = value.partition("-")
    if kind != "urt" or not database.on_postgresql():
        return None
    return rest.partition("-")[0]


def _at_once_params(value: str, mode: str, account_id: uuid.UUID | None, touch_interval: timedelta) -> dict:
    # No key names a column (named_client, not client_id): an UPDATE would set that column from it.
    now = utcnow()
    return {
        "presented_hash": hash_secret(value),
        "now": now,
        "idle_since": now - timedelta(seconds=current_app.config["REFRESH_TOKEN_IDLE_LIFETIME"]),
        "touch_before": now - touch_interval,
        "mode": mode,
        "scope_account_id": account_id,
    }


def _run_at_once(statement, params: dict, held: str) -> Refreshed | None:
    """Run a one-statement refresh alone; held is the value its client holds after it."""
    row = database.alone(statement, params)
    if row is None:
        return None
    account_id, user_id, generation, customer_id, client_id, family_id = row
    return Refreshed(Issued(held, family_id), account_id, user_id, generation, customer_id, client_id)


def _guest_at_once(*, scoped: bool):
    """One PostgreSQL query for a storefront's guest token: its publishable key, in its
    account, from the account's default client.

    It returns the token's account and user and the client only where the rest of what the
    refresh grant checks holds (the token is the account's, of the mode its value names, and
    current or in its grace period; the account's default client allows the grant; scoped:
    it is the account the scope names). Otherwise no row, and the grant reads the key the
    general way, which refuses it or finds what the query does not cover.

    That the token is a key (no user) guest_at_once checks on the row, not the query: with
    `user_id IS NULL` there, stale statistics can lead PostgreSQL to read every account's
    keys through the index on user_id, where the primary key finds the one row.
    """
    tokens, accounts, clients = RefreshToken.__table__, Account.__table__, Client.__table__
    checks = [
        tokens.c.id == bindparam("token_id"),
        or_(tokens.c.expires_at.is_(None), tokens.c.expires_at > bindparam("now", type_=UTCDateTime())),
        accounts.c.id == tokens.c.account_id,
        accounts.c.mode == bindparam("mode"),
        *_default_client_refreshing(accounts, clients),
    ]
    if scoped:
        checks.append(tokens.c.account_id == bindparam("scope_account_id"))
    return select(tokens.c.account_id, clients.c.id, tokens.c.user_id).where(*checks)


_GUEST_AT_ONCE = {scoped: _guest_at_once(scoped=scoped) for scoped in (False, True)}


def guest_at_once(value: str, account_id: uuid.UUID | None) -> Guest | None:
    """Check a publishable key for a guest token in one statement (PostgreSQL; _guest_at_once
    says when); None where that does not apply.

    account_id: the account the request's scope names, None when it names none.
    """
    named = publishable_key_id(value)
    if named is None or not database.on_postgresql():
        return None
    mode, token_id = named
    params = {"token_id": token_id, "now": utcnow(), "mode": mode, "scope_account_id": account_id}
    row = database.alone(_GUEST_AT_ONCE[account_id is not None], params)
    if row is None or row[2] is not None:  # none, or a user's token
        return None
    return Guest(row[0], row[1], f"prt-{mode}-{token_id}")


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
    named = publishable_id(rest)
    if named is None:
        return None
    mode, token_id = named
    token = db.session.get(RefreshToken, token_id, options=[joinedload(RefreshToken.account)])
    if token is None or not token.is_publishable or token.account.mode != mode:
        return None
    return token


def publishable_key_id(value: str | None) -> tuple[str, uuid.UUID] | None:
    """The mode and the token id a publishable key (prt-<mode>-<uuid>) names; None when the
    value is no publishable key's."""
    kind, _, rest = (value or "").partition("-")
    return publishable_id(rest) if kind == "prt" else None


def publishable_id(rest: str) -> tuple[str, uuid.UUID] | None:
    """The mode and the token id a publishable key names after its prt-: <mode>-<uuid>; None
    when the id is no uuid."""
    mode, _, token_id = rest.partition("-")
    try:
        return mode, uuid.UUID(token_id)
    except ValueError:
        return None


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


def _new_value(mode: str) -> str:
    """A new user refresh token's value: urt-, its account's mode (live or test), 256 random bits."""
    return f"urt-{mode}-{secrets.token_urlsafe(32)}"


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
    if family is None:
        issued, row = first_of_family(account.id, account.mode, user.id, client.id, expires_at=expires_at)
    else:
        value = _new_value(account.mode)
        issued = Issued(value, family.family_id)
        row = _row(
            uuid.uuid4(), value, account.id, user.id, client.id, family.family_id, family.expires_at, utcnow()
        )
    # One INSERT now, not an object for the flush: nothing in the request reads the row again,
    # and the unit of work costs more than the statement (docs/decisions.md, issue 18).
    db.session.execute(_INSERT, row)
    return issued


def first_of_family(account_id, mode: str, user_id, client_id, *, expires_at=None) -> tuple[Issued, dict]:
    """A new family's first token: what its client gets, and its row."""
    now = utcnow()
    latest = now + timedelta(seconds=current_app.config["REFRESH_TOKEN_LIFETIME"])
    value, family_id = _new_value(mode), uuid.uuid4()
    expires = min(latest, expires_at or latest)
    row = _row(family_id, value, account_id, user_id, client_id, family_id, expires, now)
    return Issued(value, family_id), row


def _row(token_id, value: str, account_id, user_id, client_id, family_id, expires_at, now) -> dict:
    """A new token's row, every column given: statements compiled once get no table defaults."""
    return {
        "id": token_id,
        "account_id": account_id,
        "user_id": user_id,
        "client_id": client_id,
        "token_hash": hash_secret(value),
        "family_id": family_id,
        "expires_at": expires_at,
        "last_used_at": now,
        "inserted_at": now,
    }


def use(token: RefreshToken, account: Account, value: str, touch_interval: timedelta) -> Issued:
    """Record a use of the user refresh token value; return what the client holds from now on.

    A rotating client gets a successor in the same family, and the used token is spent; the
    rotation is one conditional UPDATE, so of concurrent uses of one token at most one
    succeeds (InvalidCredentials for the others). A client without rotation keeps its token,
    which its absolute and idle expiry bound: its last use, which the idle expiry counts
    from, is written at most once a touch_interval, as its session's is (a client that
    refreshes often writes nothing on most refreshes; the idle lifetime is days).
    """
    now = utcnow()
    if not token.client.rotate_refresh_tokens:
        if token.last_used_at <= now - touch_interval:
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
