"""Uniqueness is the database's: every unique constraint and index becomes Taken(field); a statement
that is a transaction by itself runs alone."""

import socket
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from sqlalchemy import Uuid, bindparam, create_engine, event, func, literal, make_url, select
from sqlalchemy.exc import DataError, OperationalError

from freshcom_customers.errors import Taken
from freshcom_customers.extensions import db
from freshcom_customers.models import Customer
from freshcom_customers.models.base import UTCDateTime
from freshcom_customers.services import database, users
from freshcom_customers.services.database import flush


@pytest.mark.parametrize(
    ("first", "second", "field"),
    [
        ({"email": "a@x.test"}, {"email": "a@x.test"}, "email"),
        ({"code": "C-1"}, {"code": "C-1"}, "code"),
    ],
)
def test_customer_unique_keys_become_taken(session, account, first, second, field):
    session.add(Customer(account_id=account.live.id, **first))
    flush()
    session.add(Customer(account_id=account.live.id, **second))
    with pytest.raises(Taken) as error:
        flush()
    assert error.value.errors[0].field == field
    assert error.value.errors[0].code == "taken"
    session.rollback()


def test_same_email_in_another_account_is_fine(session, account, other_account):
    session.add(Customer(account_id=account.live.id, email="a@x.test"))
    session.add(Customer(account_id=other_account.live.id, email="a@x.test"))
    session.add(Customer(account_id=account.test.id, email="a@x.test"))
    flush()


@pytest.mark.parametrize(
    ("username", "email", "field"), [("dup", "b@x.test", "username"), ("b", "a@x.test", "email")]
)
def test_managed_user_keys_become_taken(session, account, username, email, field):
    users.create_managed_user(
        account.live, username="dup", password="password-1", role="customer", email="a@x.test"
    )
    flush()
    users.create_managed_user(
        account.live, username=username, password="password-1", role="customer", email=email
    )
    with pytest.raises(Taken) as error:
        flush()
    assert error.value.errors[0].field == field
    session.rollback()


def test_standard_users_are_unique_among_themselves(session, account):
    users.create_standard_user("Owner@acme.test ", "password-1", default_account=account.live)
    with pytest.raises(Taken) as error:
        flush()
    assert error.value.errors[0].field in ("username", "email")
    session.rollback()


def test_a_managed_user_may_share_a_standard_users_name(session, account):
    users.create_managed_user(
        account.live, username=account.owner.username, password="password-1", role="manager"
    )
    flush()


# database.alone: a statement that is a transaction by itself.


@contextmanager
def autocommit_seen(engine):
    """Whether each statement run on engine in the block went on an autocommit connection."""
    seen = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(conn.connection.dbapi_connection.autocommit)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


TRANSACTION = select(func.txid_current())


def status_of(database_uri: str, transaction: int) -> str:
    """What another connection sees of a transaction: committed, in progress or aborted."""
    engine = create_engine(database_uri)
    try:
        with engine.connect() as connection:
            return connection.execute(select(func.txid_status(transaction))).scalar()
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_alone_commits_by_itself_where_the_session_owns_its_connections(app_on, database_uri):
    with app_on(database_uri).app_context():
        (alone,) = database.alone(TRANSACTION, {})
        assert db.session().in_transaction() is False  # nothing left open to commit
        assert status_of(database_uri, alone) == "committed"
        db.session.execute(select(literal(1)))  # a transaction begun: alone joins it
        (joined,) = database.alone(TRANSACTION, {})
        assert status_of(database_uri, joined) == "in progress"
        db.session.rollback()
        assert joined != alone


SYNCHRONOUS_COMMIT = select(func.current_setting("synchronous_commit"), func.pg_backend_pid())


@pytest.mark.postgres
def test_unflushed_commits_its_transaction_alone_without_waiting_for_the_disk(app_on, database_uri):
    """synchronous_commit off in the statement's own transaction, which commits; the pooled
    connection's next transaction waits for the disk again."""
    with app_on(database_uri, SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 1, "max_overflow": 0}).app_context():
        (server_default, pid) = database.alone(SYNCHRONOUS_COMMIT, {})
        assert server_default != "off"
        assert database.alone(database.unflushed(SYNCHRONOUS_COMMIT), {}) == ("off", pid)
        (written,) = database.alone(database.unflushed(TRANSACTION), {})
        assert status_of(database_uri, written) == "committed"
        assert database.alone(SYNCHRONOUS_COMMIT, {}) == (server_default, pid)


@pytest.mark.postgres
def test_alone_takes_its_literals_and_gives_the_drivers_values(app_on, database_uri):
    """Compiled once, run as the driver's SQL: the statement's own literals go with it."""
    today, key = datetime.now(UTC), uuid.uuid4()
    statement = select(
        literal("customer"), bindparam("at", type_=UTCDateTime()), bindparam("key", type_=Uuid())
    )
    with app_on(database_uri).app_context():
        assert database.alone(statement, {"at": today, "key": key}) == ("customer", today, key)


@pytest.mark.postgres
def test_alone_raises_a_drivers_error_as_sqlalchemys_and_keeps_the_connection(app_on, database_uri):
    with app_on(database_uri, SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 1, "max_overflow": 0}).app_context():
        (pid,) = database.alone(select(func.pg_backend_pid()), {})
        with pytest.raises(DataError) as raised:
            database.alone(select(literal(1) / literal(0)), {})
        assert "SQL parameters hidden" in str(raised.value)  # a rotation's would be token hashes
        assert database.alone(select(func.pg_backend_pid()), {}) == (pid,)  # back in the pool, in autocommit
        assert status_of(database_uri, database.alone(TRANSACTION, {})[0]) == "committed"
        # The pool's one connection is back out of autocommit: a session's statements share a transaction.
        assert db.session.execute(select(func.pg_backend_pid())).scalar() == pid
        assert db.session.execute(TRANSACTION).scalar() == db.session.execute(TRANSACTION).scalar()
        db.session.rollback()


@pytest.mark.postgres
def test_a_connection_lost_during_alone_is_an_outage_and_leaves_the_pool(app_on, database_uri):
    """The server ends the connection mid-statement: OperationalError (a 503), and the next
    statement gets a new connection instead of the dead one."""
    with app_on(database_uri, SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 1, "max_overflow": 0}).app_context():
        (pid,) = database.alone(select(func.pg_backend_pid()), {})
        with pytest.raises(database.OUTAGES) as raised:
            database.alone(select(func.pg_terminate_backend(func.pg_backend_pid())), {})
        assert raised.value.connection_invalidated
        (other,) = database.alone(select(func.pg_backend_pid()), {})
        assert other != pid


@pytest.mark.postgres
def test_a_database_alone_cannot_reach_is_an_outage(app_on, database_uri):
    """The pool's connect fails (the server is down): OperationalError (a 503), not the driver's
    own error, which no error handler knows."""
    unreachable = make_url(database_uri).set(host="127.0.0.1", port=closed_port())
    with app_on(unreachable.render_as_string(hide_password=False)).app_context():
        with pytest.raises(database.OUTAGES) as raised:
            database.alone(select(literal(1)), {})
        assert isinstance(raised.value, OperationalError)


def closed_port() -> int:
    """A loopback port nothing listens on: one the system gave and took back."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.postgres
def test_alone_joins_a_transaction_its_caller_owns(session):
    with autocommit_seen(session.get_bind()) as seen:
        assert database.alone(select(literal(9)), {}) == (9,)
    assert seen and not any(seen)  # its SAVEPOINT and the statement, in the test's transaction


PARALLEL = select(func.current_setting("max_parallel_workers_per_gather"))


@pytest.mark.postgres
def test_in_one_process_comes_with_the_rows_its_query_reads(session, account):
    """Set inside the statement, for the rest of its transaction, as it reads a row: a query
    that reads none sets nothing."""
    server_default = session.scalar(PARALLEL)
    assert server_default != "0"
    nobody = select(Customer.id).where(Customer.account_id == uuid.uuid4())
    assert session.execute(database.in_one_process(nobody)).all() == []
    assert session.scalar(PARALLEL) == server_default
    session.add(Customer(account_id=account.live.id, status="guest"))
    session.flush()
    everyone = select(Customer.id).where(Customer.account_id == account.live.id)
    assert len(session.execute(database.in_one_process(everyone)).all()) == 1
    assert session.scalar(PARALLEL) == "0"
    session.rollback()
    assert session.scalar(PARALLEL) == server_default
