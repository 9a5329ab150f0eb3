"""Login sessions as their owner sees them (API.md 10): recorded, listed, ended.

A native session is a refresh-token family and has its id; a Chec session is a magic-link JWT
and its `sid` claim. What a session started with is kept: its client, the user agent, and
the network the request came from (an IPv4 /24 or an IPv6 /48: enough to tell "home" from
"abroad", not enough to point at one device). Its last use is kept coarsely, at most once a
minute (TOUCH_INTERVAL), so a busy session does not write on every request.

Ending a session sets ended_at and revokes its family's refresh tokens; its access tokens
and its JWT die on their next request, which reads the session (access_tokens, magic_links).
"""

import ipaddress
import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import NamedTuple

from flask import current_app
from sqlalchemy import String, and_, bindparam, cast, exists, insert, or_, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import joinedload

from freshcom_customers.errors import NotFound
from freshcom_customers.extensions import db
from freshcom_customers.models import (
    Account,
    Client,
    Customer,
    CustomerEvent,
    LoginSession,
    RefreshToken,
    User,
)
from freshcom_customers.models.base import utcnow
from freshcom_customers.services import actors, callers, database, history, refresh_tokens, users
from freshcom_customers.services.database import as_uuid

TOUCH_INTERVAL = timedelta(minutes=1)
USER_AGENT_LENGTH = LoginSession.__table__.c.user_agent.type.length
IPV4_PREFIX, IPV6_PREFIX = 24, 48
# What a Chec session shows as its client: the storefront's SDK has no client of its own.
CHEC_CLIENT_NAME = "Storefront (Chec)"


@dataclass(frozen=True)
class Device:
    """Where a session started: the user agent (at most 512 characters) and the network."""

    user_agent: str | None = None
    network: str | None = None


def device(user_agent: str | None, address: str | None) -> Device:
    """The Device of a request with this User-Agent from this client address."""
    agent = (user_agent or "").replace("\x00", "")[:USER_AGENT_LENGTH] or None
    return Device(agent, network(address))


def network(address: str | None) -> str | None:
    """The /24 (IPv4) or /48 (IPv6) an address, or a smaller network, belongs to; None if none."""
    try:
        net = ipaddress.ip_network((address or "").strip(), strict=False)
    except ValueError:
        return None
    if isinstance(net, ipaddress.IPv6Network) and net.network_address.ipv4_mapped is not None:
        net = ipaddress.ip_network(net.network_address.ipv4_mapped)
    prefix = IPV4_PREFIX if net.version == 4 else IPV6_PREFIX
    return str(net.supernet(new_prefix=prefix) if net.prefixlen > prefix else net)


class Started(NamedTuple):
    """A native session's first refresh token, and the user's customer (None for staff)."""

    issued: refresh_tokens.Issued
    customer: Customer | None


def log_in(
    user: User, account: Account, client: Client, where: Device, *, second_factor: bool = False
) -> Started:
    """Start a native session: a new refresh-token family for the user, and its session row.

    second_factor: the login proved one (a code, a passkey), which a step-up may rely on
    for a while (services/step_up.py).
    """
    issued = refresh_tokens.issue(user, account, client)
    row = _record(issued.family_id, "oauth", account.id, where, user=user, client=client)
    customer = _remember_login(user.id, None, "oauth", where)
    if second_factor:
        row.second_factor_at = row.created_at
    return Started(issued, customer)


def start_at_once(
    account_id, mode: str, user_id, customer_id, client_id, where: Device
) -> refresh_tokens.Issued:
    """Start a customer's native session in its own account as log_in does, in one PostgreSQL
    statement that is its own transaction (services/database.alone): the family's first
    refresh token, the session, and the login in the customer's history."""
    issued, token = refresh_tokens.first_of_family(account_id, mode, user_id, client_id)
    now = token["inserted_at"]
    row = _session_values(
        issued.family_id, "oauth", account_id, where, now, user_id=user_id, client_id=client_id
    )
    line = history.line_of(
        account_id, customer_id, "logged_in", actors.CUSTOMER, where.network, {"face": "oauth"}
    )
    line["details"] = json.dumps(line["details"])  # the statement casts it; the driver adapts no dict
    statement = _start_at_once(tuple(token), tuple(row), tuple(line))
    database.alone(statement, {**_named("token", token), **_named("session", row), **_named("event", line)})
    return issued


@lru_cache(maxsize=4)
def _start_at_once(token_columns: tuple, session_columns: tuple, event_columns: tuple):
    """INSERT the token, the session and the history line, each value a parameter named
    after its table and column; the line's details come as JSON text."""
    tokens, login_sessions, events = RefreshToken.__table__, LoginSession.__table__, CustomerEvent.__table__

    def values(table, prefix: str, columns: tuple) -> dict:
        return {name: bindparam(f"{prefix}_{name}", type_=table.c[name].type) for name in columns}

    token = insert(tokens).values(values(tokens, "token", token_columns)).cte("token")
    row = insert(login_sessions).values(values(login_sessions, "session", session_columns)).cte("session")
    line = values(events, "event", event_columns)
    line["details"] = cast(bindparam("event_details", type_=String()), JSONB)
    return insert(events).values(line).returning(events.c.id).add_cte(token, row)


def _named(prefix: str, values: dict) -> dict:
    return {f"{prefix}_{name}": value for name, value in values.items()}


def branch(token: RefreshToken, account: Account, where: Device) -> refresh_tokens.Issued:
    """Start the test twin's session from a live URT (refresh_tokens.branch), and record it."""
    issued = refresh_tokens.branch(token, account)
    _record(issued.family_id, "oauth", account.id, where, user=token.user, client=token.client)
    return issued


def start_chec(customer: Customer, where: Device) -> LoginSession:
    """Record a Chec session of the customer (its user's too, when it has one); its id is the JWT's sid."""
    _remember_login(None, customer.id, "chec", where)
    return _record(uuid.uuid4(), "chec", customer.account_id, where, user=customer.user, customer=customer)


def _remember_login(user_id, customer_id, face: str, where: Device) -> Customer | None:
    """A customer's login in its history (a staff user's has none), by the customer itself;
    return the customer."""
    if (customer := _customer_of(user_id, customer_id)) is not None:
        history.record(
            customer, "logged_in", actor=actors.CUSTOMER, ip_address=where.network, details={"face": face}
        )
    return customer


def _customer_of(user_id, customer_id) -> Customer | None:
    if customer_id is not None:
        return db.session.get(Customer, customer_id)
    return db.session.scalar(select(Customer).where(Customer.user_id == user_id))


def _record(session_id, face, account_id, where: Device, *, user=None, client=None, customer=None):
    row = LoginSession(
        **_session_values(
            session_id,
            face,
            account_id,
            where,
            utcnow(),
            user_id=user.id if user is not None else None,
            customer_id=customer.id if customer is not None else None,
            client_id=client.id if client is not None else None,
        )
    )
    db.session.add(row)
    return row


def _session_values(
    session_id, face, account_id, where: Device, now, *, user_id=None, customer_id=None, client_id=None
):
    """A new session's row, every column given but those it starts without (ended_at, second_factor_at)."""
    return {
        "id": session_id,
        "face": face,
        "account_id": account_id,
        "user_id": user_id,
        "customer_id": customer_id,
        "client_id": client_id,
        "user_agent": where.user_agent,
        "ip_address": where.network,
        "created_at": now,
        "last_used_at": now,
    }


def touch(session_id: uuid.UUID | None, last_used_at=None) -> bool:
    """Note a use of the session, at most once a TOUCH_INTERVAL; return whether it wrote.

    last_used_at, when the caller has read it, spares the statement while it is recent.
    """
    if session_id is None:
        return False
    now = utcnow()
    cutoff = now - TOUCH_INTERVAL
    if last_used_at is not None and last_used_at > cutoff:
        return False
    touched = db.session.execute(
        update(LoginSession)
        .where(
            LoginSession.id == session_id,
            LoginSession.due_a_touch(cutoff),
        )
        .values(last_used_at=now)
        .execution_options(synchronize_session=False, **callers.UNAFFECTED)
    )
    return touched.rowcount == 1


def live_sessions(user: User) -> list[LoginSession]:
    """The user's sessions that still work, of either face, newest first.

    A customer's Chec sessions carry its user: one begun while the customer was a guest died
    when it registered (its JWT has no token generation), so the user's id finds every live one.
    """
    query = (
        select(LoginSession)
        .where(LoginSession.user_id == user.id, _live())
        .options(joinedload(LoginSession.client))
        .order_by(LoginSession.created_at.desc(), LoginSession.id)
    )
    return list(db.session.scalars(query))


def get_own(user: User, session_id) -> LoginSession:
    """The user's live session with this id; NotFound for another's, an ended or a malformed one."""
    row = db.session.get(LoginSession, as_uuid(session_id)) if as_uuid(session_id) else None
    if row is None or row.user_id != user.id or not _is_live(row):
        raise NotFound("session")
    return row


def end(session: LoginSession) -> None:
    """End the session now: its refresh tokens revoked, its access tokens or JWT dead on next use."""
    session.ended_at = utcnow()
    if session.face == "oauth":
        refresh_tokens.revoke_family(session.id)
    _remember_ended(session.user_id, session.customer_id, {"session_id": str(session.id)})


def end_all(user: User, *, except_session: uuid.UUID | None = None) -> None:
    """End every session of the user but except_session: its refresh tokens (live and test) too."""
    users.revoke_refresh_tokens(user, except_family=except_session)
    _remember_ended(user.id, None, {"all_but_current": except_session is not None})


def _remember_ended(user_id, customer_id, details: dict) -> None:
    if (customer := _customer_of(user_id, customer_id)) is not None:
        history.record(customer, "sessions_ended", details=details)


def client_name(session: LoginSession) -> str | None:
    """What the owner calls the session's client: its name, or the Chec storefront's."""
    if session.face == "chec":
        return CHEC_CLIENT_NAME
    return session.client.name if session.client is not None else None


def chec_expiry() -> timedelta:
    """How long a Chec session lives: its JWT's lifetime."""
    return timedelta(seconds=current_app.config["CHEC_JWT_LIFETIME"])


def _live():
    """Not ended; a Chec JWT unexpired, a family with a refresh token that still works."""
    now = utcnow()
    idle = timedelta(seconds=current_app.config["REFRESH_TOKEN_IDLE_LIFETIME"])
    usable_token = exists().where(
        RefreshToken.family_id == LoginSession.id,
        RefreshToken.revoked_at.is_(None),
        RefreshToken.rotated_at.is_(None),
        RefreshToken.expires_at > now,
        RefreshToken.last_used_at > now - idle,
    )
    return and_(
        LoginSession.ended_at.is_(None),
        or_(
            and_(LoginSession.face == "chec", LoginSession.created_at > now - chec_expiry()),
            and_(LoginSession.face == "oauth", usable_token),
        ),
    )


def _is_live(session: LoginSession) -> bool:
    return db.session.scalar(select(exists().where(LoginSession.id == session.id, _live())))
