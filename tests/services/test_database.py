"""Uniqueness is the database's: every unique constraint and index becomes Taken(field)."""

import pytest

from freshcom_customers.errors import Taken
from freshcom_customers.models import Customer
from freshcom_customers.services import users
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
