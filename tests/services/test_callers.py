"""The process's cache of callers (services/callers.py): what drops an entry, and when none is used.

The suite's writes are rolled back, so PostgreSQL never notifies them: the notifications here
are sent with pg_notify from a connection of the test's own, as the migration's triggers send
them at a commit. tests/e2e/test_caller_cache.py checks the triggers and the bound across
processes.
"""

import time
import uuid
from datetime import timedelta

import psycopg
import pytest
from sqlalchemy import inspect, update
from sqlalchemy.engine import Engine

from freshcom_customers.extensions import db
from freshcom_customers.models import LoginSession, RefreshToken
from freshcom_customers.models.base import utcnow
from freshcom_customers.services import access_tokens, callers, sessions
from tests import factories
from tests.statements import statements

WAIT = 3  # seconds: far beyond the bound, for a slow machine


@pytest.fixture
def cache(app):
    """A cache of the app's database, registered as init_app would; its listener stopped after."""
    with app.app_context():
        cache = callers.Cache(db.engine)
    callers._CACHES.add(cache)
    yield cache
    cache.stop()
    callers._CACHES.discard(cache)


@pytest.fixture
def listening(cache, database_uri):
    if not database_uri.startswith("postgresql"):
        pytest.skip("notifications need PostgreSQL")
    _until(cache.usable)
    return cache


def _until(condition, timeout: float = WAIT):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _notify(database_uri: str, payload: str) -> None:
    with psycopg.connect(database_uri.replace("postgresql+psycopg", "postgresql"), autocommit=True) as c:
        c.execute("SELECT pg_notify(%s, %s)", (callers.CHANNEL, payload))


def _entry(**columns) -> callers.Entry:
    values = dict.fromkeys(callers.Entry.__dataclass_fields__)
    return callers.Entry(**{**values, **columns})


def _key(account_id=None, user_id=None):
    return (account_id or uuid.uuid4(), user_id or uuid.uuid4(), None)


@pytest.mark.postgres
def test_a_notification_drops_the_callers_it_names_and_no_other(listening, database_uri):
    account_id = uuid.uuid4()
    alice, bob, elsewhere = _key(account_id), _key(account_id), _key()
    for key in (alice, bob, elsewhere):
        listening.put(key, _entry(), listening.mark())
    assert listening.get(alice) is not None

    _notify(database_uri, f"u:{alice[1]}")
    _until(lambda: listening.get(alice) is None)
    assert listening.get(bob) is not None and listening.get(elsewhere) is not None

    _notify(database_uri, f"a:{account_id}")
    _until(lambda: listening.get(bob) is None)
    assert listening.get(elsewhere) is not None


@pytest.mark.postgres
def test_a_fill_that_a_notification_overtook_keeps_nothing(listening, database_uri):
    key = _key()
    mark = listening.mark()  # the fill's query starts
    _notify(database_uri, f"u:{uuid.uuid4()}")  # someone else's change, but it may be this one's
    _until(lambda: listening.mark() != mark)
    listening.put(key, _entry(), mark)
    assert listening.get(key) is None
    listening.put(key, _entry(), listening.mark())
    assert listening.get(key) is not None


@pytest.mark.postgres
def test_a_broken_channel_sends_every_read_to_the_database_until_it_listens_again(listening, database_uri):
    key = _key()
    listening.put(key, _entry(), listening.mark())
    admin = database_uri.replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(admin, autocommit=True) as c:
        ended = c.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (callers.APPLICATION_NAME,),
        ).fetchall()
    assert ended and all(row[0] for row in ended)
    _until(lambda: not listening.usable(), timeout=callers.BOUND + 1)
    assert listening.get(key) is None  # what it missed while deaf is forgotten
    listening.put(key, _entry(), listening.mark())
    assert listening.get(key) is None  # and nothing is kept until it listens again
    _until(listening.usable, timeout=callers.RECONNECT + WAIT)
    listening.put(key, _entry(), listening.mark())
    assert listening.get(key) is not None


def test_nothing_is_used_before_the_channel_is_proved(cache):
    # No listener yet, so no proof: a fill is not kept. (Not after starting one: on PostgreSQL
    # its first proof may come before the next line, as it did once in CI.)
    key = _key()
    cache.put(key, _entry(), cache.mark())
    assert cache.get(key) is None
    assert not cache.usable()  # the first call starts the listener and answers no


@pytest.mark.postgres
def test_a_commit_of_this_process_drops_what_it_changed_at_once(app, listening):
    """The suite's commits are savepoints: no notification ever comes, only the local drop."""
    cache = listening
    account = factories.account()
    alice = factories.customer(account, status="registered")
    bob = factories.customer(account, status="registered")
    db.session.commit()
    keys = {who: (account.id, who.user.id, None) for who in (alice, bob)}
    for key in keys.values():
        cache.put(key, _entry(), cache.mark())
    assert all(cache.get(key) for key in keys.values())

    alice.first_name = "Alicia"
    db.session.flush()
    assert cache.get(keys[alice]) is not None  # not before the commit
    db.session.commit()
    assert cache.get(keys[alice]) is None and cache.get(keys[bob]) is not None

    alice.user.status = "suspended"
    db.session.rollback()
    assert cache.get(keys[bob]) is not None  # a rolled back change drops nothing

    db.session.execute(
        update(RefreshToken).where(RefreshToken.user_id == bob.user.id).values(revoked_at=None)
    )
    db.session.commit()
    assert cache.get(keys[bob]) is None  # a bulk statement on a watched table drops all


@pytest.mark.postgres
def test_noting_a_sessions_last_use_drops_nothing(app, listening):
    cache = listening
    account = factories.account()
    alice = factories.customer(account, status="registered")
    long_ago = utcnow() - timedelta(hours=1)
    row = LoginSession(face="oauth", account_id=account.id, user_id=alice.user.id, last_used_at=long_ago)
    db.session.add(row)
    db.session.commit()
    key = (account.id, alice.user.id, row.id)
    cache.put(key, _entry(), cache.mark())
    assert sessions.touch(row.id)
    db.session.commit()
    assert cache.get(key) is not None


@pytest.mark.postgres
def test_past_its_size_the_cache_forgets_its_oldest_fill(listening, monkeypatch):
    monkeypatch.setattr(callers, "MAX_ENTRIES", 2)
    oldest, middle, newest = _key(), _key(), _key()
    for key in (oldest, middle, newest):
        listening.put(key, _entry(), listening.mark())
    assert [listening.get(key) is not None for key in (oldest, middle, newest)] == [False, True, True]
    listening.drop(f"u:{oldest[1]}")  # nothing left to drop: no error
    listening.drop(f"a:{middle[0]}")
    assert listening.get(middle) is None and listening.get(newest) is not None


def test_a_kept_principals_rows_join_the_session_only_when_read_its_customer_with_its_user(app):
    account = factories.account()
    alice = factories.customer(account, status="registered")
    db.session.commit()
    kept = callers.detached(_entry(account=account, user=alice.user, customer=alice))
    db.session.expunge_all()  # a new request's session: none of the rows is in it
    principal = access_tokens.KeptPrincipal(kept.account, "customer", kept.user, customer=kept.customer)
    assert not db.session.identity_map  # nothing merged before a row is read
    with statements(Engine) as seen:
        customer = principal.customer
        assert inspect(customer).dict["user"] is principal.user  # loaded: no lazy load to run
        assert customer.user.email == alice.user.email
    assert seen == []
    assert customer in db.session and principal.user in db.session
    assert len(db.session.identity_map) == 2  # the account is not read, so not merged
    assert principal.account in db.session and principal.customer is customer
    assert principal.user is not kept.user  # the kept copy stays out of every session


@pytest.mark.postgres
def test_a_cached_callers_principals_share_what_views_rendered_until_its_rows_change(
    app, listening, monkeypatch
):
    cache = listening
    monkeypatch.setitem(app.extensions, "freshcom_callers", cache)
    account = factories.account()
    alice = factories.customer(account, status="registered")
    db.session.commit()
    token, _ = access_tokens.issue(account, "customer", user=alice.user, customer_id=alice.id)
    first = access_tokens.authenticate(token, read_only=True)  # read from the database, then kept
    first.memo["document"] = b"rendered"
    assert access_tokens.authenticate(token, read_only=True).memo == {"document": b"rendered"}
    assert access_tokens.authenticate(token).memo == {}  # a write reads the database: nothing kept
    alice.first_name = "Alicia"
    db.session.commit()  # drops the caller here at once
    assert access_tokens.authenticate(token, read_only=True).memo == {}
