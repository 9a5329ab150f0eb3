"""A returning guest's registration as a service: what waits on the token, and what the link may still do."""

import pytest

from freshcom_customers.errors import ValidationFailed
from freshcom_customers.models import OneTimeToken
from freshcom_customers.services import one_time_tokens, registrations
from tests import factories

PASSWORD = "a-guest-chose-this-1"


@pytest.fixture
def acme(session):
    return factories.account()


@pytest.fixture
def guest(acme):
    return factories.customer(acme, email="gia@example.com", first_name="G.", code="CRM-7", label="vip")


@pytest.fixture
def sent(monkeypatch) -> list[str]:
    """The values of the tokens issued, which only the emails carry."""
    values = []
    issue = one_time_tokens.issue

    def keep(*args, **kwargs):
        values.append(issue(*args, **kwargs))
        return values[-1]

    monkeypatch.setattr(one_time_tokens, "issue", keep)
    return values


def registration(**fields):
    return {"status": "registered", "email": "gia@example.com", "password": PASSWORD, **fields}


def stored(session, pending) -> OneTimeToken:
    return session.get(OneTimeToken, pending.id)


def test_the_registration_waits_hashed_with_the_persons_own_fields_only(session, acme, guest):
    pending = registrations.request_confirmation(
        guest, registration(first_name="Gia", label="mine", code="X")
    )

    payload = stored(session, pending).payload
    assert PASSWORD not in str(payload)
    assert payload["profile"] == {"first_name": "Gia"}  # code and label are the merchant's
    assert (guest.status, guest.first_name, guest.user) == ("guest", "G.", None)


def test_confirming_keeps_the_merchants_fields_and_verifies_the_email(session, acme, guest, sent):
    registrations.request_confirmation(guest, registration(first_name="Gia"))

    customer = registrations.confirm(acme, sent[0])

    assert customer is guest
    assert (customer.status, customer.first_name, customer.code, customer.label) == (
        "registered",
        "Gia",
        "CRM-7",
        "vip",
    )
    assert customer.email_verified and customer.user.email_verified


def test_a_guest_whose_email_changed_since_is_not_registered(session, acme, guest, sent):
    registrations.request_confirmation(guest, registration())
    guest.email = "someone-else@example.com"

    with pytest.raises(ValidationFailed) as error:
        registrations.confirm(acme, sent[0])
    assert [(e.field, e.code) for e in error.value.errors] == [("token", "invalid")]


def test_a_username_taken_since_is_reported_on_the_token(session, acme, guest, sent):
    registrations.request_confirmation(guest, registration(username="gia"))
    factories.staff_user(acme, username="gia")

    with pytest.raises(ValidationFailed) as error:
        registrations.confirm(acme, sent[0])
    assert [(e.field, e.code) for e in error.value.errors] == [("token", "taken")]
