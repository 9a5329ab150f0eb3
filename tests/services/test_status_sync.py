"""Status sync: a customer and its user move together, whichever of the two is changed.

A registered customer has an active user, a suspended one a suspended user, a guest none
(services/customers.py is in charge of the pair).
"""

import pytest

from freshcom_customers.errors import AccessDenied, ValidationFailed
from freshcom_customers.services import customers, user_management
from tests import factories


@pytest.fixture
def acme(session):
    return factories.account()


def fields_of(error) -> set:
    return {(e.field, e.code) for e in error.value.errors}


def test_suspending_a_registered_customer_suspends_its_user_and_ends_its_sessions(acme):
    customer = factories.customer(acme, "registered")
    customers.update_customer(customer, {"status": "suspended"})
    assert (customer.status, customer.user.status, customer.user.token_generation) == (
        "suspended",
        "suspended",
        1,
    )


def test_registering_a_suspended_customer_again_reactivates_its_user(acme):
    customer = factories.customer(acme, "suspended")
    customers.update_customer(customer, {"status": "registered"})
    assert (customer.status, customer.user.status) == ("registered", "active")


def test_a_customer_created_suspended_has_a_suspended_user(acme):
    attrs = {"status": "suspended", "email": "sue@example.test", "password": "sue-password-1"}
    customer = customers.create_customer(acme, attrs)
    assert (customer.user.status, customer.user.role, customer.user.username) == (
        "suspended",
        "customer",
        "sue@example.test",
    )


def test_registering_a_guest_creates_its_user_from_its_profile(acme):
    guest = factories.customer(acme, email="gia@example.test", first_name="Gia", phone_number="555")
    assert guest.user is None
    customers.update_customer(guest, {"status": "registered", "password": "gia-password-1"})
    user = guest.user
    assert (user.status, user.role, user.username, user.account_id) == (
        "active",
        "customer",
        "gia@example.test",
        acme.id,
    )
    assert (user.email, user.first_name, user.phone_number) == ("gia@example.test", "Gia", "555")


def test_a_guest_registers_only_with_an_email(acme):
    """Staff may leave the password out: the customer is invited to choose one."""
    guest = factories.customer(acme, name="Nameless")
    with pytest.raises(ValidationFailed) as error:
        customers.update_customer(guest, {"status": "registered"})
    assert fields_of(error) == {("email", "required")}


@pytest.mark.parametrize("status", ["registered", "suspended"])
def test_a_customer_with_a_user_cannot_become_a_guest_again(acme, status):
    customer = factories.customer(acme, status)
    with pytest.raises(ValidationFailed) as error:
        customers.update_customer(customer, {"status": "guest"})
    assert fields_of(error) == {("status", "invalid")}
    assert customer.user is not None


def test_a_customer_cannot_change_its_own_status(acme):
    customer = factories.customer(acme, "registered")
    with pytest.raises(AccessDenied):
        customers.update_customer(customer, {"status": "suspended"}, by_customer=True)
    assert customer.user.status == "active"


def test_the_profile_is_copied_to_the_user(acme):
    customer = factories.customer(acme, "registered", first_name="Roy", last_name="Bao", name="Roy Bao")
    customers.update_customer(customer, {"last_name": "Lee", "phone_number": "555"})
    user = customer.user
    assert (user.last_name, user.name, user.phone_number) == ("Lee", "Roy Lee", "555")


def test_a_customer_users_status_moves_its_customer(acme):
    customer = factories.customer(acme, "registered")
    user_management.update_user(customer.user, {"status": "suspended"}, by_role="administrator")
    assert (customer.status, customer.user.status) == ("suspended", "suspended")
    user_management.update_user(customer.user, {"status": "active"}, by_role="administrator")
    assert (customer.status, customer.user.status) == ("registered", "active")


def test_a_guest_registering_as_a_user_creates_a_registered_customer(acme, session):
    attrs = {"email": "roy@example.test", "password": "roy-password-1", "status": "active"}
    user = customers.register_customer_user(acme, attrs)
    customer = customers.of_user(user)
    assert (customer.status, customer.email, user.status) == ("registered", "roy@example.test", "active")
