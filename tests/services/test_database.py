"""Uniqueness is the database's: every unique constraint and index becomes Taken(field); a statement
that is a transaction by itself runs alone."""

from contextlib import contextmanager

import pytest
from sqlalchemy import event, literal, select

from freshcom_customers.errors import Taken
from freshcom_customers.extensions import db
from freshcom_customers.models import Customer
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


@pytest.mark.postgres
def test_alone_runs_in_autocommit_where_the_session_owns_its_connections(app_on, database_uri):
    with app_on(database_uri).app_context(), autocommit_seen(db.engine) as seen:
        assert database.alone(select(literal(7)), {}) == (7,)
        assert db.session().in_transaction() is False  # nothing left open to commit
        db.session.execute(select(literal(1)))  # a transaction begun: alone joins it
        assert database.alone(select(literal(8)), {}) == (8,)
        assert db.session().in_transaction() is True
        db.session.rollback()
    assert seen == [True, False, False]


@pytest.mark.postgres
def test_alone_joins_a_transaction_its_caller_owns(session):
    with autocommit_seen(session.get_bind()) as seen:
        assert database.alone(select(literal(9)), {}) == (9,)
    assert seen and not any(seen)  # its SAVEPOINT and the statement, in the test's transaction
