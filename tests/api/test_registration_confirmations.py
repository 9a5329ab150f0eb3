"""Returning guests (API.md 9): a registration with a guest's email is confirmed by a link to it."""

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from freshcom_customers.models import Customer, OneTimeToken, User
from freshcom_customers.services import orders
from tests.conftest import customer_document, error_code, errors_of

MEDIA_TYPE = "application/vnd.api+json"
EMAIL = "roy@example.com"
PASSWORD = "roy-chose-this-1"
REGISTRATION = {"status": "registered", "email": EMAIL, "password": PASSWORD, "firstName": "Roy"}


def post_customer(client, headers, **attributes):
    return client.post("/v1/customers", json=customer_document(**attributes), headers=headers)


def patch_customer(client, headers, customer_id, **attributes):
    document = customer_document(**attributes)
    document["data"]["id"] = customer_id
    return client.patch(f"/v1/customers/{customer_id}", json=document, headers=headers)


def confirm(client, headers, token):
    body = {"data": {"type": "RegistrationConfirmation", "attributes": {"token": token}}}
    return client.post("/v1/registration_confirmations", json=body, headers=headers)


def log_in(auth, account, username=EMAIL, password=PASSWORD, expect=200):
    data = {"grant_type": "password", "username": username, "password": password}
    return auth.token(expect=expect, scope=f"aid:{account.live.id}", **data)


@pytest.fixture
def past_guest(client, guest, account, session):
    """A guest customer who bought twice with roy@example.com; return its id and its orders' ids."""
    response = post_customer(client, guest, email=EMAIL, firstName="R.", phoneNumber="+1 555 0100")
    customer = session.get(Customer, uuid.UUID(response.get_json()["data"]["id"]))
    bought = [orders.create_order(account.live, {"currency": "USD"}, customer) for _ in range(2)]
    session.commit()
    return str(customer.id), {str(order.id) for order in bought}


def test_a_returning_guest_registers_and_keeps_its_id_and_orders(
    client, auth, account, guest, session, past_guest, mailbox
):
    guest_id, order_ids = past_guest

    response = post_customer(client, guest, **REGISTRATION)

    assert response.status_code == 202
    body = response.get_json()
    assert body["meta"] == {"confirmation": "sent"}
    assert body["data"]["type"] == "RegistrationConfirmation"
    assert body["data"]["attributes"] == {"email": EMAIL, "status": "sent"}
    assert body["data"]["id"] != guest_id  # names the confirmation, never the customer
    # Nothing changed yet: still a guest, no user, no login.
    customer = session.get(Customer, uuid.UUID(guest_id))
    session.refresh(customer)
    assert (customer.status, customer.user_id, customer.first_name) == ("guest", None, "R.")
    assert log_in(auth, account, expect=400)["error"] == "invalid_grant"
    (message,) = mailbox.wait_for(1)
    assert message["To"] == EMAIL
    assert mailbox.link(message).startswith("http://localhost:3000/confirm-registration?token=")

    confirmed = confirm(client, guest, mailbox.token(message))

    assert confirmed.status_code == 201, confirmed.get_json()
    data = confirmed.get_json()["data"]
    assert data["id"] == guest_id
    assert confirmed.headers["Location"].endswith(f"/v1/customers/{guest_id}")
    assert data["attributes"]["status"] == "registered"
    assert data["attributes"]["emailVerified"] is True
    assert data["attributes"]["firstName"] == "Roy"  # the registration's profile came with it
    assert data["attributes"]["phoneNumber"] == "+1 555 0100"  # and what it did not say stayed
    token = log_in(auth, account)["access_token"]
    listed = client.get("/v1/orders", headers=auth.headers(token)).get_json()["data"]
    assert {order["id"] for order in listed} == order_ids
    user = session.scalar(select(User).where(User.account_id == account.live.id))
    assert (user.username, user.email_verified) == (EMAIL, True)


def test_a_confirmation_link_works_once(client, guest, past_guest, mailbox):
    post_customer(client, guest, **REGISTRATION)
    token = mailbox.token(mailbox.wait_for(1)[0])
    assert confirm(client, guest, token).status_code == 201

    assert errors_of(confirm(client, guest, token)) == {("invalid", "/data/attributes/token")}


def test_the_freshcom_patch_of_the_kept_guest_id_sends_a_confirmation(
    client, auth, account, guest, session, past_guest, mailbox
):
    guest_id, _ = past_guest
    response = patch_customer(
        client, guest, guest_id, status="registered", password=PASSWORD, username="roy", lastName="Bao"
    )
    assert response.status_code == 202, response.get_json()
    assert response.get_json()["data"]["attributes"] == {"email": EMAIL, "status": "sent"}
    assert session.get(Customer, uuid.UUID(guest_id)).status == "guest"

    data = confirm(client, guest, mailbox.token(mailbox.wait_for(1)[0])).get_json()["data"]

    assert (data["id"], data["attributes"]["lastName"]) == (guest_id, "Bao")
    assert log_in(auth, account, username="roy")["access_token"]  # the username chosen at registration


def test_someone_elses_guest_email_only_mails_its_owner_and_takes_over_nothing(
    client, auth, account, guest, session, past_guest, mailbox
):
    guest_id, _ = past_guest
    attacker = {**REGISTRATION, "password": "attacker-pass-1"}
    assert post_customer(client, guest, **attacker).status_code == 202
    # The storefront kept no id, but an attacker who learnt it cannot point the link elsewhere.
    moved = patch_customer(client, guest, guest_id, **{**attacker, "email": "mallory@evil.test"})
    assert errors_of(moved) == {("invalid", "/data/attributes/email")}

    assert [m["To"] for m in mailbox.settled()] == [EMAIL]
    customer = session.get(Customer, uuid.UUID(guest_id))
    session.refresh(customer)
    assert (customer.status, customer.email, customer.user_id) == ("guest", EMAIL, None)
    log_in(auth, account, password="attacker-pass-1", expect=400)
    stored = session.scalar(select(OneTimeToken).where(OneTimeToken.customer_id == customer.id))
    assert "attacker-pass-1" not in str(stored.payload)  # kept hashed, never in clear
    assert stored.payload["password_hash"].startswith("$argon2id$")


def test_the_newest_registration_wins(client, auth, account, guest, past_guest, mailbox):
    post_customer(client, guest, **REGISTRATION)
    post_customer(client, guest, **{**REGISTRATION, "password": "second-choice-1"})
    first, second = (mailbox.token(m) for m in mailbox.wait_for(2))

    assert errors_of(confirm(client, guest, first)) == {("invalid", "/data/attributes/token")}
    assert confirm(client, guest, second).status_code == 201
    log_in(auth, account, password="second-choice-1")


def test_an_expired_link_registers_nothing(client, guest, session, past_guest, mailbox):
    post_customer(client, guest, **REGISTRATION)
    token = mailbox.token(mailbox.wait_for(1)[0])
    stored = session.scalar(select(OneTimeToken).where(OneTimeToken.purpose == "registration_confirmation"))
    stored.expires_at -= timedelta(hours=24)
    session.commit()

    assert errors_of(confirm(client, guest, token)) == {("invalid", "/data/attributes/token")}
    assert session.get(Customer, uuid.UUID(past_guest[0])).status == "guest"


def test_a_registration_that_would_fail_sends_nothing(client, guest, past_guest, mailbox):
    assert errors_of(post_customer(client, guest, **{**REGISTRATION, "password": "short"})) == {
        ("length", "/data/attributes/password")
    }
    assert errors_of(post_customer(client, guest, **{**REGISTRATION, "password": None})) == {
        ("required", "/data/attributes/password")
    }
    assert mailbox.settled() == []


def test_a_registered_customers_email_stays_taken(client, guest, register, mailbox):
    register(email=EMAIL)
    assert errors_of(post_customer(client, guest, **REGISTRATION)) == {("taken", "/data/attributes/email")}
    assert mailbox.settled() == []


def test_a_link_for_another_accounts_guest_is_invalid(
    client, auth, other_account, past_guest, guest, mailbox
):
    post_customer(client, guest, **REGISTRATION)
    token = mailbox.token(mailbox.wait_for(1)[0])
    elsewhere = auth.headers(auth.guest(other_account))

    assert errors_of(confirm(client, elsewhere, token)) == {("invalid", "/data/attributes/token")}
    assert confirm(client, guest, token).status_code == 201  # the failed try did not use it up


def test_a_guest_converted_by_staff_meanwhile_is_not_registered_twice(
    client, owner, guest, past_guest, mailbox
):
    guest_id, _ = past_guest
    post_customer(client, guest, **REGISTRATION)
    token = mailbox.token(mailbox.wait_for(1)[0])
    staff = patch_customer(client, owner, guest_id, status="registered", password="staff-chose-1")
    assert staff.status_code == 200  # staff may still convert a guest directly

    assert errors_of(confirm(client, guest, token)) == {("invalid", "/data/attributes/token")}


def test_a_guest_token_may_only_register_guests(client, guest, past_guest, register):
    guest_id, _ = past_guest
    renamed = patch_customer(client, guest, guest_id, firstName="Mallory")
    assert error_code(renamed, 403) == "access_denied"
    registered, _ = register(email="amy@example.com")
    again = patch_customer(client, guest, registered["id"], status="registered", password=PASSWORD)
    assert error_code(again, 403) == "access_denied"


def test_only_a_guest_token_confirms(client, owner, past_guest, guest, mailbox):
    post_customer(client, guest, **REGISTRATION)
    token = mailbox.token(mailbox.wait_for(1)[0])
    assert error_code(confirm(client, owner, token), 403) == "access_denied"
    assert error_code(confirm(client, {}, token), 401)
