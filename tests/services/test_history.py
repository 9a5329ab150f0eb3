"""A customer's history as a service (services/history.py, services/changes.py): who is the author
of each line, what a failed login writes, and what an erasure forgets."""

import re

import pytest
from sqlalchemy import select

from freshcom_customers.models import Customer, CustomerEvent
from freshcom_customers.services import actors, customers, history, passwords, users
from tests import factories
from tests.statements import statements

NETWORK = "203.0.113.0/24"


@pytest.fixture
def acme(session):
    return factories.account()


def lines_of(session, customer) -> list[tuple]:
    """(event, actor, actor_id) of the customer's lines, oldest first, as the database has them."""
    query = select(CustomerEvent.event, CustomerEvent.actor, CustomerEvent.actor_id)
    return [tuple(row) for row in session.execute(query.where(CustomerEvent.customer_id == customer.id))]


def test_without_a_face_the_system_is_the_author(session, acme):
    customer = customers.create_customer(acme, {"email": "ann@x.test"})

    assert lines_of(session, customer) == [("created", "system", None)]


def test_the_actor_the_session_acts_as_is_the_author_of_what_follows(session, acme):
    manager = factories.staff_user(acme)
    customer = factories.customer(acme)
    session.commit()  # made before: changes in its own transaction are told as its creation

    actors.act_as(actors.Actor("staff", manager.id))
    customers.update_customer(customer, {"label": "vip"})
    actors.act_as(actors.CUSTOMER)
    customers.update_customer(customer, {"first_name": "Ann"})

    assert lines_of(session, customer) == [
        ("created", "system", None),
        ("updated", "staff", manager.id),
        ("updated", "customer", None),
    ]


def test_a_change_rolled_back_in_a_savepoint_leaves_no_line(session, acme):
    customer = factories.customer(acme, "registered")

    savepoint = session.begin_nested()
    customers.update_customer(customer, {"status": "suspended"})
    savepoint.rollback()

    assert lines_of(session, customer) == [("created", "system", None)]


def test_only_a_password_said_to_be_changed_is_a_password_change(session, acme):
    customer = factories.customer(acme, "registered")

    customer.user.password_hash = passwords.hash_password(factories.PASSWORD)  # as a login's rehash
    session.flush()
    users.change_password(customer.user, factories.PASSWORD, "a brand new passphrase")
    session.flush()

    assert lines_of(session, customer) == [("created", "system", None), ("password_changed", "system", None)]


def test_record_writes_a_line_by_the_given_or_current_actor(session, acme):
    customer = factories.customer(acme, "registered")
    actors.act_as(actors.Actor("staff", None))

    history.record(
        customer, "logged_in", actor=actors.CUSTOMER, ip_address=NETWORK, details={"face": "oauth"}
    )
    history.record(customer, "sessions_ended", details={"all_but_current": False})
    session.flush()

    assert lines_of(session, customer)[1:] == [
        ("logged_in", "customer", None),
        ("sessions_ended", "staff", None),
    ]


@pytest.mark.parametrize("known", [True, False], ids=["known", "unknown"])
def test_a_failed_login_is_written_and_committed_known_or_not(session, acme, known):
    customer = factories.customer(acme, "registered")
    session.commit()
    username = customer.user.username if known else "nobody@example.test"

    history.login_failed(str(acme.id), username.upper(), NETWORK, "password")
    session.rollback()  # what the failing request does next

    failed = session.scalars(select(CustomerEvent).where(CustomerEvent.event == "login_failed")).one()
    assert failed.customer_id == (customer.id if known else None)
    assert (failed.account_id, failed.actor, failed.actor_id) == (acme.id, "anonymous", None)
    assert (failed.ip_address, failed.details) == (NETWORK, {"method": "password"})


def test_a_failed_login_of_an_unknown_username_runs_the_statements_of_a_known_one(session, acme):
    customer = factories.customer(acme, "registered")
    account_id, known = str(acme.id), customer.user.username
    session.commit()

    ran = []
    for username in (known, "nobody@example.test"):
        with statements(session.connection()) as seen:
            history.login_failed(account_id, username, NETWORK, "password")
        ran.append([re.sub(r"sa_savepoint_\d+", "sa_savepoint", statement) for statement in seen])

    assert ran[0] == ran[1]
    assert [statement.split()[0] for statement in ran[0]] == ["ROLLBACK", "SAVEPOINT", "INSERT", "RELEASE"]


def test_a_failed_login_commits_nothing_of_the_work_it_interrupts(session, acme):
    customer = factories.customer(acme, first_name="Ann")
    session.commit()

    customer.first_name = "Mallory"  # unflushed work of the failing request
    history.login_failed(str(acme.id), "nobody@example.test", NETWORK, "password")
    session.rollback()

    assert session.scalar(select(Customer.first_name).where(Customer.id == customer.id)) == "Ann"
    assert lines_of(session, customer) == [("created", "system", None)]


def test_forgetting_the_networks_keeps_the_lines_and_the_other_customers_networks(session, acme):
    ann, bea = factories.customer(acme, "registered"), factories.customer(acme, "registered")
    for customer in (ann, bea):
        history.record(customer, "logged_in", ip_address=NETWORK)
    session.flush()

    history.forget_networks(ann.id)

    networks = select(CustomerEvent.event, CustomerEvent.ip_address).order_by(CustomerEvent.id)
    assert session.execute(networks.where(CustomerEvent.customer_id == ann.id)).all() == [
        ("created", None),
        ("logged_in", None),
    ]
    assert session.execute(networks.where(CustomerEvent.customer_id == bea.id)).all() == [
        ("created", None),
        ("logged_in", NETWORK),
    ]
