"""Magic-link login: a single-use link by email, exchanged for a customer's JWT (the Chec face's).

The link carries a one-time token (services/one_time_tokens): 256 random bits, stored only
hashed, used once, for 15 minutes, and a new one deletes the customer's older ones. It
belongs to the customer, so guests log in too; suspended customers never do. The JWT is
signed with the service's key and checked against the database on every request, so a
suspension, a deletion or a password reset ends it at once. Each JWT is a login session
(services/sessions), named by its `sid` claim, that its customer's user can see and end.
JWTs signed before sessions were recorded have no `sid`: they live out their 24 hours unlisted.
"""

import json
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import NamedTuple

from flask import current_app
from sqlalchemy import String, bindparam, cast, exists, insert, literal, or_, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import joinedload

from freshcom_customers import identifiers, origins
from freshcom_customers.errors import AccessDenied, InvalidToken, NotFound, invalid
from freshcom_customers.extensions import db
from freshcom_customers.models import (
    Account,
    Customer,
    CustomerEvent,
    LoginSession,
    OneTimeToken,
    RefreshToken,
    User,
    hash_secret,
)
from freshcom_customers.models.base import UTCDateTime
from freshcom_customers.observability import metrics
from freshcom_customers.services import (
    access_tokens,
    actors,
    customers,
    database,
    history,
    mail,
    one_time_tokens,
    refresh_tokens,
    sessions,
)

PURPOSE = "magic_link"
LIFETIME = timedelta(minutes=15)
PLACEHOLDER = "{token}"
MAX_URL_LENGTH = 2048
# The JWT's typ: only the Chec face takes these tokens, and the native face refuses them.
TOKEN_TYPE = "chec"


@dataclass(frozen=True)
class Session:
    """Who a live JWT logs in: a customer, and its account; and when the link was used (Unix seconds)."""

    account: Account
    customer: Customer
    logged_in_at: int
    # The login session (its sid); None for a JWT signed before sessions were recorded.
    session_id: uuid.UUID | None = None
    # Whether checking the JWT noted a use of its session (sessions.touch): a write to commit.
    touched: bool = False

    @property
    def recent(self) -> bool:
        """Whether the login link was used within its own lifetime: proof of the address, still fresh."""
        return time.time() - self.logged_in_at <= LIFETIME.total_seconds()


# Second factors a login link cannot stand for: they prove something other than the inbox.
BEYOND_EMAIL = ("tfa_sms", "tfa_totp")
# An exchange reads the link's customer and its user with the link (one statement, not three).
_WITH_CUSTOMER = (joinedload(OneTimeToken.customer).joinedload(Customer.user),)


def send_login_link(account: Account, email: str, base_url: str) -> None:
    """Email a login link to the account's customer with this email, unless it is suspended.

    The email matches as people read it (by email_key); the link goes to the customer's own
    address, not to the look-alike that was typed.

    Says nothing about whether that customer exists: an unknown email gets no email and no
    error, and costs the same: its transaction writes a token and deletes it, and its email is
    rendered and sent nowhere; the email itself leaves after the response (services.mail).
    """
    check_base_url(base_url)
    customer = db.session.scalar(
        select(Customer).where(
            Customer.account_id == account.id, Customer.email_key == identifiers.canonical(email)
        )
    )
    known = customer is not None and customer.status != "suspended"
    if known:
        email = customer.email
        token = one_time_tokens.issue(PURPOSE, customer=customer, email=email, lifetime=LIFETIME)
    else:
        token = one_time_tokens.issue_for_no_one(PURPOSE)
    mail.send(
        "login_link", email, account=account, link=login_link(base_url, token), email=email, deliver=known
    )


def check_base_url(base_url: str) -> None:
    """A login link must be an absolute http(s) URL, on an origin MAGIC_LINK_ORIGINS allows.

    Whoever asks for a link chooses where it points, and the link is a login: pointed at
    another site, it would hand that site the customer's session.
    """
    origin = origins.of(base_url)
    if (
        origin is None
        or len(base_url) > MAX_URL_LENGTH
        or any(c.isspace() or not c.isprintable() for c in base_url)
    ):
        raise invalid("base_url", "format", "Base URL must be an absolute http or https URL.")
    allowed = origins.parse(current_app.config["MAGIC_LINK_ORIGINS"], "FRESHCOM_MAGIC_LINK_ORIGINS")
    if allowed is not None and origin not in allowed:
        raise invalid("base_url", "inclusion", "Base URL must be a page of one of the account's storefronts.")


def login_link(base_url: str, token: str) -> str:
    """base_url with {token} replaced by the token, or, without the placeholder, base_url/token."""
    if PLACEHOLDER in base_url:
        return base_url.replace(PLACEHOLDER, token)
    return f"{base_url.rstrip('/')}/{token}"


def exchange(account: Account, value: str) -> Customer:
    """Use a login link's token once; return its customer.

    NotFound for a token that is unknown, used, expired or superseded, that was sent for
    another account, to an address the customer no longer has, or to a customer suspended since.

    A link proves the email alone. That is a whole login for a simple user and for a tfa_email
    one (its code would come to the same inbox), but not for a user whose second factor is a
    phone or an authenticator app (API.md 11): Commerce.js cannot send a code, so such a
    user's link is refused, with a 422 on token that says why (docs/decisions.md).
    """
    token = one_time_tokens.consume(PURPOSE, value, options=_WITH_CUSTOMER)
    customer = token.customer
    if (
        customer is None
        or customer.account_id != account.id
        or customer.status == "suspended"
        or customer.email != token.email
    ):
        raise NotFound("one-time token")
    if customer.user is not None and customer.user.auth_method in BEYOND_EMAIL:
        raise invalid(
            "token",
            "second_factor",
            "This account logs in with its password and a second factor: a login link is not enough.",
        )
    return customer


class Exchanged(NamedTuple):
    """A login link exchanged in one statement (exchange_at_once): the customer's account and
    id, its user's token generation (None for a guest), and the new session's id."""

    account_id: uuid.UUID
    customer_id: uuid.UUID
    generation: int | None
    session_id: uuid.UUID


def exchange_at_once(key: str | None, value: str, where: sessions.Device) -> Exchanged | None:
    """Exchange a login link for a Chec session in one PostgreSQL statement run alone
    (database.alone): what exchange() checks and start_session() records, for the account of
    the publishable key `key`. None where that does not apply or any check fails, and then
    nothing changed: the caller goes the general way, which answers why (issue 18).
    """
    named = refresh_tokens.publishable_key_id(key)
    if named is None or not database.on_postgresql():
        return None
    mode, key_id = named
    session_id = uuid.uuid4()
    line = history.line_of(None, None, "logged_in", actors.CUSTOMER, where.network, {"face": "chec"})
    # No key names a column of one_time_tokens: the UPDATE would set that column from it.
    params = {
        "key_id": key_id,
        "mode": mode,
        "link_hash": hash_secret(value),
        "now": line["occurred_at"],
        "session_id": session_id,
        "user_agent": where.user_agent,
        "network": where.network,
        "details": json.dumps(line["details"]),  # the statement casts it; the driver adapts no dict
    }
    row = database.alone(_EXCHANGE_AT_ONCE, params)
    return Exchanged(*row, session_id) if row is not None else None


def _exchange_at_once():
    """The login link spent, its session and its history line written, in one statement.

    The link is spent only where everything exchange() checks holds, with the publishable
    key's: the key is current (or in its grace period) and of the mode its value names; the
    link is of this purpose, unused and unexpired, and its customer is of the key's account,
    not suspended, still at the address the link went to, and without a second factor beyond
    email. The key is read in a CTE of its own, by its primary key, and that it is no user's
    token is checked on what it returns (as guest_at_once does, for the same reason).
    """
    links, customers_, users_ = OneTimeToken.__table__, Customer.__table__, User.__table__
    keys, accounts_ = RefreshToken.__table__, Account.__table__
    now = bindparam("now", type_=UTCDateTime())
    key = (
        select(keys.c.account_id, keys.c.user_id)
        .join(accounts_, accounts_.c.id == keys.c.account_id)
        .where(
            keys.c.id == bindparam("key_id"),
            or_(keys.c.expires_at.is_(None), keys.c.expires_at > now),
            accounts_.c.mode == bindparam("mode"),
        )
        .cte("publishable")
        .prefix_with("MATERIALIZED")
    )
    # An OR of equalities, not IN: statements run alone are compiled once, with no expanding list.
    beyond = or_(*(users_.c.auth_method == method for method in BEYOND_EMAIL))
    beyond_email = select(users_.c.id).where(users_.c.id == customers_.c.user_id, beyond)
    generation = select(users_.c.token_generation).where(users_.c.id == customers_.c.user_id)
    spent = (
        update(links)
        .where(
            links.c.token_hash == bindparam("link_hash"),
            links.c.purpose == PURPOSE,
            links.c.used_at.is_(None),
            links.c.expires_at > now,
            customers_.c.id == links.c.customer_id,
            customers_.c.account_id == key.c.account_id,
            key.c.user_id.is_(None),
            customers_.c.status != "suspended",
            customers_.c.email == links.c.email,
            ~exists(beyond_email),
        )
        .values(used_at=now)
        .returning(
            customers_.c.account_id,
            customers_.c.id.label("customer_id"),
            customers_.c.user_id,
            generation.scalar_subquery().label("generation"),
        )
        .cte("spent")
    )
    login_sessions = LoginSession.__table__
    session = insert(login_sessions).from_select(
        [
            "id",
            "face",
            "account_id",
            "user_id",
            "customer_id",
            "user_agent",
            "ip_address",
            "created_at",
            "last_used_at",
        ],
        select(
            bindparam("session_id", type_=login_sessions.c.id.type),
            literal("chec"),
            spent.c.account_id,
            spent.c.user_id,
            spent.c.customer_id,
            bindparam("user_agent", type_=String()),
            bindparam("network", type_=String()),
            now,
            now,
        ),
    )
    events = CustomerEvent.__table__
    line = insert(events).from_select(
        ["account_id", "customer_id", "event", "actor", "ip_address", "details", "occurred_at"],
        select(
            spent.c.account_id,
            spent.c.customer_id,
            literal("logged_in"),
            literal(actors.CUSTOMER.kind),
            bindparam("network", type_=String()),
            cast(bindparam("details", type_=String()), JSONB),
            now,
        ),
    )
    returned = select(spent.c.account_id, spent.c.customer_id, spent.c.generation)
    return returned.add_cte(session.cte("session"), line.cte("line"))


_EXCHANGE_AT_ONCE = _exchange_at_once()


def start_session(customer: Customer, cid: str, where: sessions.Device | None = None) -> tuple[str, int]:
    """Record a login session for the customer and sign its JWT; return it and when it expires (Unix seconds).

    cid is the customer's id as the face shows it: storefronts read it from the token. The
    user's token generation, when the customer has a user, ties the JWT to its login; sid,
    the session's id, lets its owner end it. where: the request's user agent and network.
    """
    session = sessions.start_chec(customer, where or sessions.Device())
    generation = customer.user.token_generation if customer.user is not None else None
    return session_jwt(customer.account_id, customer.id, cid, session.id, generation)


def session_jwt(account_id, customer_id, cid: str, session_id, generation: int | None) -> tuple[str, int]:
    """Sign a Chec session's JWT (start_session says what it carries); return it and when it expires."""
    claims = {
        "role": "customer",
        "typ": TOKEN_TYPE,
        "sub": str(customer_id),
        "cid": cid,
        "sid": str(session_id),
    }
    if generation is not None:
        claims["gen"] = generation
    signed = access_tokens.sign(account_id, claims, current_app.config["CHEC_JWT_LIFETIME"])
    metrics.token_issued("chec_magic_link")
    return signed


def authenticate(jwt: str) -> Session:
    """The session of a JWT from start_session; InvalidToken when it is not, or no longer, live."""
    claims = access_tokens.decode(jwt)
    if claims.get("typ") != TOKEN_TYPE:
        raise InvalidToken()
    account = db.session.get(Account, access_tokens.claim_uuid(claims["aid"]))
    customer = db.session.get(Customer, access_tokens.claim_uuid(claims.get("sub")))
    if account is None or customer is None or customer.account_id != account.id:
        raise InvalidToken()
    if customer.status == "suspended":
        raise InvalidToken()
    # A suspension or a password reset bumps the generation, and reactivation keeps the old
    # tokens dead; a token given to a guest ends when the guest registers.
    generation = customer.user.token_generation if customer.user is not None else None
    if claims.get("gen") != generation:
        raise InvalidToken()
    session_id = access_tokens.claim_uuid(claims["sid"]) if "sid" in claims else None
    touched = session_id is not None and _session_in_use(session_id, customer)
    return Session(account, customer, int(claims["iat"]), session_id, touched)


def _session_in_use(session_id: uuid.UUID, customer: Customer) -> bool:
    """Check the JWT's session is the customer's and not ended; note its use (sessions.touch)."""
    # Read afresh: the session may have ended since this database session last read it.
    session = db.session.get(LoginSession, session_id, populate_existing=True)
    if session is None or session.ended_at is not None or session.customer_id != customer.id:
        raise InvalidToken()
    return sessions.touch(session.id, session.last_used_at)


def session_for(jwt: str, customer_id: uuid.UUID | None) -> Session:
    """The JWT's session, for a request about the customer with this id.

    Another customer of the account is AccessDenied; anything else (another account's
    customer, no customer, no id) is NotFound.
    """
    session = authenticate(jwt)
    if customer_id != session.customer.id:
        customers.get_customer(session.account, customer_id)
        raise AccessDenied("A customer's token is good for that customer only.")
    return session
