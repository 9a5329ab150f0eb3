"""Logging in with a password: the use case behind the password grant, and the current password
a signed-in user gives to set a new one (docs/decisions.md, "Brute-force protection").

A login resolves the account once, applies the rate limits and the soft lockout
(services/lockouts.py) to its account+username and client address, verifies the password,
records the attempt (security events ``login_failed`` and ``lockout``) and returns the user,
the account and the role. Unknown accounts, unknown usernames and wrong passwords take the
same steps at the same cost: one hash verify, one failure counted, one event.

What depends on the request is passed in, as Warehouse's ``DatabaseUserService(session,
ratelimiters=..., remote_addr=...)`` takes it: the app's throttle (http/throttling.Throttle,
None when throttling is off), which raises its own 429 when a rate limit is used up, and the
client's address.

A two-factor user's code is checked after the password, inside the attempt
(services/second_factors.py): a wrong code counts as a failure, a missing one (which sends
it) neither counts nor clears the failures, so that asking for codes cannot reset the lockout.
A passkey login (``Login.with_passkey``) is counted against the client's address only: until
the assertion is verified, there is no username to count it against.
"""

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

from flask import current_app
from sqlalchemy import ARRAY, String, and_, any_, bindparam, func, literal, select
from werkzeug.exceptions import TooManyRequests

from freshcom_customers import identifiers
from freshcom_customers.errors import DomainError, InvalidCredentials, WrongPassword
from freshcom_customers.extensions import db
from freshcom_customers.models import Account, Client, Customer, User
from freshcom_customers.observability import metrics, security_events
from freshcom_customers.services import (
    accounts,
    database,
    history,
    passkeys,
    passwords,
    second_factors,
    sessions,
    users,
)
from freshcom_customers.services.lockouts import Lockouts, Policy


class LockedOut(DomainError):
    """Too many failed passwords for this account+username: no password is checked until retry_after."""

    def __init__(self, retry_after: int):
        super().__init__(f"locked out for {retry_after} s")
        self.retry_after = retry_after


class Throttle(Protocol):
    """The app's rate limits over its shared storage; http/throttling.Throttle is the one in use.

    run(operation) calls operation with a backend of hit, check and count (by limit name and
    identity) and the limits' storage, where the lockout keeps its counters.
    """

    prefix: str
    clock: Callable[[], float]

    def run(self, operation: Callable): ...

    def tag(self, *parts: str) -> str: ...


# How a login ends, as metrics count it: the throttle's own 429 is werkzeug's TooManyRequests.
OUTCOMES = (
    (second_factors.SecondFactorRequired, "second_factor_required"),
    (LockedOut, "locked_out"),
    (InvalidCredentials, "invalid_credentials"),
    (TooManyRequests, "throttled"),
)


@dataclass(frozen=True)
class LoggedIn:
    user: User
    account: Account
    role: str
    second_factor: bool = False  # a code or a passkey was proven, not the password alone


@dataclass(frozen=True)
class CustomerLoggedIn:
    """A customer logged in to its own account with its password alone, the account's default
    client allowing it: what its session (sessions.start_at_once) and tokens need, read in
    one statement with the password hash (_ReadAtOnce)."""

    account_id: uuid.UUID
    mode: str  # the account's: live or test
    user_id: uuid.UUID
    token_generation: int
    customer_id: uuid.UUID
    client_id: uuid.UUID


class Login:
    """Password logins from one client: client_ip is where its attempts count from."""

    def __init__(self, throttle: Throttle | None, client_ip: str):
        self.throttle = throttle
        self.client_ip = client_ip

    def with_password(
        self,
        account_reference: str | None,
        username: str,
        password: str,
        otp: str | None = None,
        *,
        at_once: bool = False,
    ) -> "LoggedIn | CustomerLoggedIn":
        """Log in a managed user of the referenced account, else a standard user to their default account.

        otp is a two-factor user's code. Every refusal is InvalidCredentials (WrongSecondFactor
        for a wrong code), or LockedOut while the account+username waits; SecondFactorRequired
        when the password is right and the code missing.

        at_once: the caller can start a CustomerLoggedIn's session with the default client; on
        PostgreSQL, an account referenced by id is then read with its user in one statement.
        """
        with metrics.outcome(metrics.LOGINS, OUTCOMES):
            account_id = None
            if at_once and account_reference is not None and database.on_postgresql():
                account_id = accounts.referenced_id(account_reference)
            found = _ReadAtOnce(account_id, username) if account_id else _ReadAsModels(account_reference)
            with self._attempt(found.account_id, _account_key(account_reference, found.account_id), username):
                logged_in = found.verified(username, password, otp)
            if logged_in is None:
                raise InvalidCredentials()  # the password was right, so no failure is counted
            return logged_in

    def with_passkey(self, account_reference: str | None, assertion: str) -> LoggedIn:
        """Log in the user of the referenced account whose passkey signed the assertion.

        Every refusal is InvalidCredentials, recorded as a failed login from the client's address.
        """
        with metrics.outcome(metrics.LOGINS, OUTCOMES):
            if self.throttle is not None:
                self.throttle.run(lambda backend: backend.hit("login_per_ip", self.client_ip))
            account = accounts.find_by_reference(account_reference) if account_reference is not None else None
            try:
                if account is None:
                    raise InvalidCredentials()
                user = passkeys.authenticate(account, assertion)
            except InvalidCredentials:
                security_events.record(
                    "login_failed", account_id=_id_of(account), method="passkey", ip=self.client_ip
                )
                raise
            return LoggedIn(user, account, users.role_in(user, account), second_factor=True)

    @contextmanager
    def current_password(self, user: User) -> Iterator[None]:
        """Guard the current password a signed-in user gives to set a new one (PATCH /v1/user).

        A WrongPassword raised inside counts against the same account+username as failed logins,
        so a stolen access token gains no extra guesses; LockedOut while it waits.
        """
        account_id = str(user.account_id) if user.is_managed else None
        with self._attempt(account_id, account_id or "standard", user.username, failure=WrongPassword):
            yield

    @contextmanager
    def _attempt(
        self,
        account_id: str | None,
        account_key: str,
        username: str,
        failure: type[Exception] = InvalidCredentials,
    ) -> Iterator[None]:
        """Check the limits and the lockout, run the check inside, then count its failure or success."""
        name = identifiers.canonical(username)
        counters = self._counters(account_key, name)
        counters.before()
        try:
            yield
        except failure:
            fields = {"account_id": account_id, "username": name, "ip": self.client_ip}
            security_events.record("login_failed", **fields)
            history.login_failed(account_id, name, sessions.network(self.client_ip), "password")
            delay = counters.failed()
            if delay:
                security_events.record("lockout", **fields, seconds=delay)
                metrics.lockout()
            raise
        counters.succeeded()

    def _counters(self, account_key: str, name: str) -> "_Counters | _Unthrottled":
        if self.throttle is None:
            return _Unthrottled()
        return _Counters(self.throttle, account_key, name, self.client_ip)


class _Counters:
    """One attempt's counters in the throttle's storage: per IP, per account+username, and the lockout."""

    def __init__(self, throttle: Throttle, account_key: str, name: str, ip: str):
        self.throttle = throttle
        self.ip = ip
        # Opaque keys: the storage never holds a username (usually an email) in clear.
        self.subject = throttle.tag(account_key, name)
        self.address = throttle.tag("ip", ip)
        self.policy = Policy.from_config(current_app.config)

    def before(self) -> None:
        """The throttle's 429 when the IP or the account+username is over a limit; LockedOut while locked."""
        self.throttle.run(self._before)

    def failed(self) -> int:
        """Count a failure; return the lockout delay it starts (0 when none)."""
        return self.throttle.run(self._failed)

    def succeeded(self) -> None:
        """Reset the lockout and make the address familiar to the account+username."""
        self.throttle.run(self._succeeded)

    def _before(self, backend) -> None:
        backend.hit("login_per_ip", self.ip)
        backend.check("login_per_username", self.subject)
        lockouts = self._lockouts(backend)
        wait = lockouts.remaining(lockouts.scope(self.subject, self.address))
        if wait:
            raise LockedOut(wait)

    def _failed(self, backend) -> int:
        backend.count("login_per_username", self.subject)
        lockouts = self._lockouts(backend)
        return lockouts.failed(lockouts.scope(self.subject, self.address))

    def _succeeded(self, backend) -> None:
        lockouts = self._lockouts(backend)
        lockouts.succeeded(self.subject, self.address, lockouts.scope(self.subject, self.address))

    def _lockouts(self, backend) -> Lockouts:
        return Lockouts(backend.storage, self.policy, f"{self.throttle.prefix}/lockout", self.throttle.clock)


class _Unthrottled:
    """The counters while throttling is off: nothing is limited, nothing locks."""

    def before(self) -> None:
        pass

    def failed(self) -> int:
        return 0

    def succeeded(self) -> None:
        pass


class _ReadAsModels:
    """The referenced account, read as a model (none: a standard user's login)."""

    def __init__(self, reference: str | None):
        self.reference = reference
        self.account = accounts.find_by_reference(reference) if reference is not None else None
        self.account_id = _id_of(self.account)

    def verified(self, username: str, password: str, otp: str | None) -> LoggedIn | None:
        """The login, or InvalidCredentials; None when the user has no role in the account.

        An unknown account costs a hash verify, as an unknown user and a wrong password do.
        """
        if self.reference is not None and self.account is None:
            passwords.dummy_verify()
            raise InvalidCredentials()
        user = users.authenticate(self.account, username, password)
        account = self.account or user.default_account  # a standard user logs in to their default account
        if account is None:
            raise InvalidCredentials()
        return _proven(user, account, otp)


class _ReadAtOnce:
    """The account an id references, its user of this username, that user's customer in it
    and its default client, read in one PostgreSQL statement (issue 18).

    A login read so costs what the general way's does: one verify, a dummy one where there is
    no such account or user. A right password that needs more than a CustomerLoggedIn (a
    second factor, a staff role, a new hash) goes on the general way, with the rows as models.
    """

    def __init__(self, account_id, username: str):
        params = {"account_id": account_id, "username": identifiers.canonical(username)}
        self.row = database.alone(_LOGIN_AT_ONCE, params)
        self.account_id = str(self.row[0]) if self.row is not None else None

    def verified(self, username: str, password: str, otp: str | None) -> "CustomerLoggedIn | LoggedIn | None":
        if self.row is None or self.row[2] is None:
            passwords.dummy_verify()  # no such account, or no user of this name in it
            raise InvalidCredentials()
        (
            account_id,
            mode,
            user_id,
            password_hash,
            status,
            role,
            auth_method,
            generation,
            customer_id,
            client_id,
        ) = self.row
        ok, new_hash = passwords.verify(password, password_hash)
        if not ok or status != "active":
            raise InvalidCredentials()
        if role == "customer" and auth_method == "simple" and customer_id and client_id and not new_hash:
            return CustomerLoggedIn(account_id, mode, user_id, generation, customer_id, client_id)
        user, account = db.session.get(User, user_id), db.session.get(Account, account_id)
        if user is None or account is None:
            raise InvalidCredentials()  # deleted since the read
        if new_hash:
            user.password_hash = new_hash
        return _proven(user, account, otp)


def _login_at_once():
    accounts_, users_ = Account.__table__, User.__table__
    customers, clients = Customer.__table__, Client.__table__
    grants = func.string_to_array(clients.c.grant_types, " ", type_=ARRAY(String))
    return (
        select(
            accounts_.c.id,
            accounts_.c.mode,
            users_.c.id,
            users_.c.password_hash,
            users_.c.status,
            users_.c.role,
            users_.c.auth_method,
            users_.c.token_generation,
            customers.c.id,
            clients.c.id,
        )
        .select_from(accounts_)
        .outerjoin(
            users_,
            and_(users_.c.account_id == accounts_.c.id, users_.c.username == bindparam("username")),
        )
        # The user's customer (it has at most one), where it is the account's.
        .outerjoin(
            customers,
            and_(customers.c.user_id == users_.c.id, customers.c.account_id == accounts_.c.id),
        )
        # The default client, where it allows the grant (Client.serves and check_grant_type).
        .outerjoin(
            clients,
            and_(
                clients.c.account_id == func.coalesce(accounts_.c.live_account_id, accounts_.c.id),
                clients.c.is_default,
                literal("password") == any_(grants),
            ),
        )
        .where(accounts_.c.id == bindparam("account_id"))
    )


_LOGIN_AT_ONCE = _login_at_once()


def _proven(user: User, account: Account, otp: str | None) -> LoggedIn | None:
    """The login of a user whose password is right, once its second factor is; None when it
    has no role in the account."""
    role = users.role_in(user, account)
    if role is None:
        return None
    second_factors.prove(user, otp)
    return LoggedIn(user, account, role, second_factor=user.auth_method != "simple")


def _id_of(account: Account | None) -> str | None:
    return str(account.id) if account is not None else None


def _account_key(reference: str | None, account_id: str | None) -> str:
    """Whose usernames this one is counted among: the account, the same under each spelling."""
    if account_id is not None:
        return account_id
    return "standard" if reference is None else f"unknown:{reference.lower()}"
