"""Uniqueness: emails (as people read them), codes and usernames are unique per account, and
the database says so; a clash is Taken on the field the client sent."""

import pytest

from freshcom_customers.errors import Taken
from freshcom_customers.services import customers
from freshcom_customers.services.database import flush
from tests import factories
from tests.test_identifiers import LOOK_ALIKES


@pytest.fixture
def acme(session):
    return factories.account()


def taken_field(error) -> str:
    (field_error,) = error.value.errors
    assert field_error.code == "taken"
    return field_error.field


def test_a_customer_email_is_taken_once_per_account(acme, session):
    factories.customer(acme, email="amy@example.test")
    with pytest.raises(Taken) as error, session.begin_nested():
        customers.create_customer(acme, {"email": "amy@example.test"})
    assert taken_field(error) == "email"
    customers.create_customer(factories.account("Globex"), {"email": "amy@example.test"})


@pytest.mark.parametrize(("plain", "look_alike"), LOOK_ALIKES)
def test_a_look_alike_of_a_taken_email_is_taken(acme, session, plain, look_alike):
    factories.customer(acme, email=plain)
    with pytest.raises(Taken) as error, session.begin_nested():
        customers.create_customer(acme, {"email": look_alike})
    assert taken_field(error) == "email"


def test_a_customer_code_is_taken_once_per_account(acme, session):
    factories.customer(acme, code="C-1")
    with pytest.raises(Taken) as error, session.begin_nested():
        customers.create_customer(acme, {"code": "C-1"})
    assert taken_field(error) == "code"


def test_a_username_the_client_chose_is_taken_on_username(acme, session):
    factories.staff_user(acme, username="roy")
    attrs = {"status": "registered", "email": "roy@example.test", "password": "roy-password-1"}
    with pytest.raises(Taken) as error, session.begin_nested():
        customers.create_customer(acme, {**attrs, "username": "ROY"})
    assert taken_field(error) == "username"


def test_a_username_that_came_from_the_email_is_taken_on_email(acme, session):
    factories.staff_user(acme, username="roy@example.test")  # the username, not the email, of staff
    attrs = {"status": "registered", "email": "roy@example.test", "password": "roy-password-1"}
    with pytest.raises(Taken) as error, session.begin_nested():
        customers.create_customer(acme, attrs)
    assert taken_field(error) == "email"


def test_the_database_is_what_refuses_a_duplicate(acme, session):
    # Nothing checks before inserting: both rows are staged, and the flush's constraint refuses one.
    first = customers.add_customer(acme, {"email": "amy@example.test"})
    second = customers.add_customer(acme, {"email": "AMY@example.test"})
    assert first in session.new and second in session.new
    with pytest.raises(Taken) as error:
        flush()
    assert taken_field(error) == "email"
    session.rollback()
