"""The export's rows (services/customer_data.py): all of the customer's, none of another's."""

import logging

import pytest

from freshcom_customers.services import customer_data
from tests import factories
from tests.personal_data import furnish


@pytest.fixture
def acme(session):
    return factories.account()


@pytest.fixture
def ann(acme):
    customer = factories.customer(acme, "registered", first_name="Annabel", last_name="Quistgaard")
    return furnish(customer, "annabel", "198.51.100.0/24")


@pytest.fixture
def bob(acme):
    customer = factories.customer(acme, "registered", first_name="Bartholomew", last_name="Ostrowski")
    return furnish(customer, "bartholomew", "203.0.113.0/24")


def test_every_row_of_the_customer_and_none_of_another(ann, bob):
    data = customer_data.export_customer_data(ann.customer)

    assert data.customer is ann.customer and data.user is ann.customer.user
    assert {a.id for a in data.addresses} == ann.ids["addresses"]
    assert {o.id for o in data.orders} == ann.ids["orders"]
    # Sessions of both faces: the user's native one and the customer's Chec one.
    assert {s.id for s in data.sessions} == ann.ids["sessions"]
    assert {(t.purpose, t.email) for t in data.emails} == {
        ("email_verification", ann.customer.email),
        ("magic_link", ann.customer.email),
    }


def test_a_guest_has_no_user_and_its_chec_sessions(acme, bob):
    guest = furnish(factories.customer(acme, email="gwen@example.org"), "gwendolyn", "192.0.2.0/24")

    data = customer_data.export_customer_data(guest.customer)

    assert data.user is None
    assert {s.id for s in data.sessions} == guest.ids["sessions"]
    assert [(t.purpose, t.email) for t in data.emails] == [("magic_link", "gwen@example.org")]


def test_the_export_is_recorded_with_ids_only(ann, caplog):
    caplog.set_level(logging.WARNING, logger="freshcom_customers.security")

    customer_data.export_customer_data(ann.customer)

    [record] = [r for r in caplog.records if getattr(r, "security_event", None) == "customer_data_exported"]
    customer = ann.customer
    assert record.fields == {
        "account_id": str(customer.account_id),
        "customer_id": str(customer.id),
        "user_id": str(customer.user_id),
    }
