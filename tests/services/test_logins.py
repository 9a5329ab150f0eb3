"""The login use case: one refusal for every wrong credential at one hash's cost, the rate
counts, and the soft lockout of an account+username, known or not.

The throttle here is a stand-in on this process's memory, with no rate limit of its own, so
that only the lockout refuses; tests/http/test_throttling.py runs the real one over HTTP.
"""

import logging
import uuid
from collections import Counter

import pytest
from limits.storage import MemoryStorage

from freshcom_customers.errors import InvalidCredentials, WrongPassword
from freshcom_customers.extensions import db
from freshcom_customers.services import accounts, passwords, users
from freshcom_customers.services.logins import CustomerLoggedIn, LockedOut, Login
from freshcom_customers.services.second_factors import SecondFactorRequired
from tests import factories
from tests.conftest import OWNER_PASSWORD

IP = "192.0.2.1"
WRONG = "wrong-password-1"


class MemoryThrottle:
    """A throttle (logins.Throttle) that is its own backend: it counts hits, limits nothing."""

    prefix = "test"

    def __init__(self):
        self.storage = MemoryStorage()
        self.now = 1_700_000_000.0
        self.counted = Counter()

    def clock(self) -> float:
        return self.now

    def run(self, operation):
        return operation(self)

    def tag(self, *parts: str) -> str:
        return "/".join(parts)

    def hit(self, name: str, identity: str) -> None:
        self.counted[name] += 1

    def count(self, name: str, identity: str) -> None:
        self.counted[name] += 1

    def check(self, name: str, identity: str) -> None:
        pass


@pytest.fixture
def lockout_policy(app, monkeypatch) -> None:
    """A lockout from the third failure on, that waits 60 s, then 120 s, and so on."""
    monkeypatch.setitem(app.config, "LOCKOUT_THRESHOLD", 3)
    monkeypatch.setitem(app.config, "LOCKOUT_BASE_DELAY", 60)


@pytest.fixture
def throttle(lockout_policy) -> MemoryThrottle:
    return MemoryThrottle()


# Committed, as a served request finds them: a failed login rolls back the request's
# uncommitted work before it records itself (services/history.login_failed).
@pytest.fixture
def acme(session):
    account = factories.account(handle="acme-logins")
    session.commit()
    return account


@pytest.fixture
def ann(acme, session):
    user = factories.staff_user(acme, role="developer", username="ann")
    session.commit()
    return user


def outcome(login: Login, reference: str, username: str, password: str, at_once: bool = False) -> str:
    """What one attempt came to: ok, invalid, or locked with its wait."""
    try:
        login.with_password(reference, username, password, at_once=at_once)
    except InvalidCredentials:
        return "invalid"
    except LockedOut as e:
        return f"locked {e.retry_after}"
    return "ok"


# Logging in


def test_a_login_returns_the_user_its_account_and_role(acme, ann):
    for reference in (str(acme.id), f"aid-live-{acme.id}", "acme-logins"):
        logged_in = Login(None, IP).with_password(reference, " ANN", factories.PASSWORD)
        assert (logged_in.user, logged_in.account, logged_in.role) == (ann, acme, "developer")


def test_a_standard_user_logs_in_to_their_default_account(account):
    logged_in = Login(None, IP).with_password(None, "owner@acme.test", OWNER_PASSWORD)
    assert (logged_in.user, logged_in.account, logged_in.role) == (account.owner, account.live, "owner")


@pytest.mark.parametrize(
    ("reference", "username", "password"),
    [
        ("acme-logins", "ann", WRONG),
        ("acme-logins", "nobody", factories.PASSWORD),
        ("no-such-account", "ann", factories.PASSWORD),
        (None, "ann", factories.PASSWORD),  # a managed user is no standard user
    ],
    ids=["wrong-password", "unknown-user", "unknown-account", "no-account"],
)
def test_every_wrong_credential_is_one_refusal_at_the_cost_of_one_hash(
    acme, ann, monkeypatch, reference, username, password
):
    hashes = Counter()
    monkeypatch.setattr(passwords, "verify", _counting(hashes, passwords.verify))
    monkeypatch.setattr(passwords, "dummy_verify", _counting(hashes, passwords.dummy_verify))
    with pytest.raises(InvalidCredentials):
        Login(None, IP).with_password(reference, username, password)
    assert hashes.total() == 1


def _counting(counter: Counter, function):
    def counted(*args):
        counter[function.__name__] += 1
        return function(*args)

    return counted


def test_a_suspended_user_is_refused(acme):
    user = factories.staff_user(acme, username="sam", status="suspended")
    with pytest.raises(InvalidCredentials):
        Login(None, IP).with_password("acme-logins", user.username, factories.PASSWORD)


# Rate counts


def test_every_attempt_counts_against_the_ip_and_only_failures_against_the_username(throttle, acme, ann):
    login = Login(throttle, IP)
    assert [outcome(login, "acme-logins", "ann", p) for p in (WRONG, factories.PASSWORD, WRONG)] == [
        "invalid",
        "ok",
        "invalid",
    ]
    assert throttle.counted == {"login_per_ip": 3, "login_per_username": 2}


# The soft lockout


def test_an_account_username_is_locked_after_threshold_failures_until_its_delay_ends(throttle, acme, ann):
    login = Login(throttle, IP)
    assert [outcome(login, "acme-logins", "ann", WRONG) for _ in range(3)] == ["invalid"] * 3
    assert outcome(login, "acme-logins", "ann", factories.PASSWORD) == "locked 60"  # the right one waits too
    throttle.now += 60
    assert outcome(login, "acme-logins", "ann", factories.PASSWORD) == "ok"


def test_a_success_resets_the_failures(throttle, acme, ann):
    login = Login(throttle, IP)
    for _ in range(5):
        assert outcome(login, "acme-logins", "ann", WRONG) == "invalid"
        assert outcome(login, "acme-logins", "ann", WRONG) == "invalid"
        assert outcome(login, "acme-logins", "ann", factories.PASSWORD) == "ok"


@pytest.mark.parametrize(
    ("reference", "at_once"),
    [
        ("acme-logins", False),
        ("no-such-account", False),
        ("{id}", True),  # read at once on PostgreSQL
        (str(uuid.UUID(int=7)), True),
    ],
)
def test_an_unknown_username_is_locked_like_a_known_one(lockout_policy, acme, ann, reference, at_once):
    reference = reference.format(id=acme.id)

    def story(username: str) -> list[str]:
        throttle = MemoryThrottle()
        login = Login(throttle, IP)
        outcomes = [outcome(login, reference, username, WRONG, at_once) for _ in range(5)]
        throttle.now += 60
        return outcomes + [outcome(login, reference, username, WRONG, at_once) for _ in range(2)]

    known, unknown = story("ann"), story("nobody")
    assert known == unknown == ["invalid"] * 3 + ["locked 60"] * 2 + ["invalid", "locked 120"]


def test_the_lockout_is_per_account_username(throttle, acme, ann):
    login = Login(throttle, IP)
    for _ in range(3):
        outcome(login, "acme-logins", "ann", WRONG)
    other = factories.staff_user(acme, username="bo")
    assert outcome(login, "acme-logins", other.username, factories.PASSWORD) == "ok"
    assert outcome(login, "acme-logins", "ANN ", factories.PASSWORD) == "locked 60"


def test_a_wrong_current_password_counts_as_a_failed_login(throttle, acme, ann):
    login = Login(throttle, IP)
    for _ in range(3):
        with pytest.raises(WrongPassword), login.current_password(ann):
            users.change_password(ann, WRONG, "new-password-1")
    assert outcome(login, "acme-logins", "ann", factories.PASSWORD) == "locked 60"
    with pytest.raises(LockedOut), login.current_password(ann):
        pytest.fail("no password is checked while locked out")


def test_a_user_without_a_role_is_refused_but_not_counted_as_a_failure(throttle, account):
    users.create_standard_user("nomad@acme.test", "nomad-password-1", default_account=account.live)
    login = Login(throttle, IP)
    for _ in range(5):
        assert outcome(login, None, "nomad@acme.test", "nomad-password-1") == "invalid"
    assert throttle.counted["login_per_username"] == 0


def test_failures_and_lockouts_are_security_events_without_the_password(throttle, acme, ann, caplog):
    login = Login(throttle, IP)
    with caplog.at_level(logging.WARNING, logger="freshcom_customers.security"):
        for _ in range(3):
            outcome(login, "acme-logins", "ANN", WRONG)
    events = [(r.security_event, r.fields) for r in caplog.records if hasattr(r, "security_event")]
    fields = {"account_id": str(acme.id), "username": "ann", "ip": IP}
    assert events == [("login_failed", fields)] * 3 + [("lockout", {**fields, "seconds": 60})]
    assert WRONG not in caplog.text


# A customer's login read at once (PostgreSQL; the general way on SQLite)


@pytest.fixture
def roy(account, session):
    customer = factories.customer(account.live, status="registered", email="roy@example.test")
    session.commit()
    return customer


def test_a_customers_login_at_once_names_what_its_session_and_tokens_need(account, roy, session):
    reference = str(account.live.id)
    logged_in = Login(None, IP).with_password(reference, "ROY@example.test", factories.PASSWORD, at_once=True)
    if session.get_bind().dialect.name != "postgresql":
        assert (logged_in.user, logged_in.role) == (roy.user, "customer")
        return
    default = accounts.default_client(account.live)
    assert logged_in == CustomerLoggedIn(
        account.live.id, "live", roy.user.id, roy.user.token_generation, roy.id, default.id
    )


def test_a_login_at_once_of_one_who_needs_more_than_a_password_goes_on_the_general_way(account, ann_of, roy):
    """Staff, a two-factor customer, and a customer of an account whose default client may not
    use the password grant: the user and account as models, as the general way gives them."""
    reference = str(account.live.id)
    staff = Login(None, IP).with_password(reference, ann_of.username, factories.PASSWORD, at_once=True)
    assert (staff.user, staff.role) == (ann_of, "developer")
    roy.user.auth_method = "tfa_totp"
    db.session.commit()
    with pytest.raises(SecondFactorRequired):
        Login(None, IP).with_password(reference, roy.user.username, factories.PASSWORD, at_once=True)
    roy.user.auth_method = "simple"
    accounts.default_client(account.live).grant_types = "refresh_token"
    db.session.commit()
    logged_in = Login(None, IP).with_password(reference, roy.user.username, factories.PASSWORD, at_once=True)
    assert (logged_in.user, logged_in.role) == (roy.user, "customer")


@pytest.fixture
def ann_of(account, session):
    user = factories.staff_user(account.live, role="developer", username="ann")
    session.commit()
    return user


@pytest.mark.parametrize(
    ("reference", "username", "password"),
    [
        ("{id}", "roy@example.test", WRONG),
        ("{id}", "nobody@example.test", factories.PASSWORD),
        (str(uuid.UUID(int=7)), "roy@example.test", factories.PASSWORD),
        ("{id}", "ann", WRONG),
    ],
    ids=["wrong-password", "unknown-user", "unknown-account", "staff-wrong-password"],
)
def test_every_wrong_credential_at_once_is_one_refusal_at_the_cost_of_one_hash(
    account, roy, ann_of, monkeypatch, reference, username, password
):
    hashes = Counter()
    monkeypatch.setattr(passwords, "verify", _counting(hashes, passwords.verify))
    monkeypatch.setattr(passwords, "dummy_verify", _counting(hashes, passwords.dummy_verify))
    with pytest.raises(InvalidCredentials):
        Login(None, IP).with_password(reference.format(id=account.live.id), username, password, at_once=True)
    assert hashes.total() == 1


def test_a_suspended_customer_is_refused_at_once(account, session):
    suspended = factories.customer(account.live, status="suspended")
    session.commit()
    with pytest.raises(InvalidCredentials):
        Login(None, IP).with_password(str(account.live.id), suspended.email, factories.PASSWORD, at_once=True)
