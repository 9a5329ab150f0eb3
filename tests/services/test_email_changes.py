"""One's own new email as a service: the proof it needs, where it waits, and how the old address sees it."""

import pytest
from sqlalchemy import select

from freshcom_customers.errors import ValidationFailed, WrongPassword
from freshcom_customers.models import OneTimeToken
from freshcom_customers.services import email_changes
from tests import factories


@pytest.fixture
def acme(session):
    return factories.account()


@pytest.mark.parametrize(
    ("address", "hint"),
    [("roy.bao@example.net", "r•••@example.net"), ("x@y.test", "x•••@y.test")],
)
def test_the_notice_shows_enough_to_recognise_the_address_not_to_write_to_it(address, hint):
    assert email_changes.hint(address) == hint


def test_without_the_current_password_nothing_waits(acme):
    customer = factories.customer(acme, "registered")
    with pytest.raises(WrongPassword):
        email_changes.hold_back({"email": "new@example.net", "current_password": "wrong"}, user=customer.user)
    assert customer.user.pending_email is None


def test_a_stale_login_link_session_is_refused_by_name(acme):
    customer = factories.customer(acme, "registered")
    with pytest.raises(ValidationFailed) as error:
        email_changes.hold_back({"email": "new@example.net"}, user=customer.user, login_link_recent=False)
    assert [(e.field, e.code) for e in error.value.errors] == [("email", "stale_login")]


def test_the_other_changes_go_on_and_the_email_waits(session, acme):
    customer = factories.customer(acme, "registered")
    attrs = {"email": "New@Example.net", "current_password": factories.PASSWORD, "first_name": "Roy"}

    others = email_changes.hold_back(attrs, user=customer.user)

    assert others == {"current_password": factories.PASSWORD, "first_name": "Roy"}
    assert customer.user.pending_email == "new@example.net"


def test_a_guests_new_address_waits_on_its_link_alone(session, acme):
    guest = factories.customer(acme, email="gia@example.com")

    email_changes.hold_back({"email": "gia@example.net"}, user=None, guest=guest, login_link_recent=True)

    token = session.scalar(select(OneTimeToken).where(OneTimeToken.customer_id == guest.id))
    assert (token.purpose, token.email, guest.email) == (
        "email_verification",
        "gia@example.net",
        "gia@example.com",
    )
