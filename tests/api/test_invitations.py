"""Invitations (API.md 9): staff register a customer without a password, and it chooses one by email."""

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from freshcom_customers.models import Customer, OneTimeToken, User
from tests.conftest import assert_no_content, customer_document, error_code, errors_of

EMAIL = "ada@example.com"
CHOSEN = "ada-chose-this-1"


def create(client, headers, **attributes):
    return client.post("/v1/customers", json=customer_document(**attributes), headers=headers)


def set_password(client, token, value=CHOSEN):
    body = {"data": {"type": "Password", "attributes": {"value": value}}}
    return client.patch(f"/v1/password?resetToken={token}", json=body)


def invite(client, headers, customer_id):
    return client.post(f"/v1/customers/{customer_id}/invitations", headers=headers)


def log_in(auth, account, password=CHOSEN, expect=200):
    data = {"grant_type": "password", "username": EMAIL, "password": password}
    return auth.token(expect=expect, scope=f"aid:{account.live.id}", **data)


@pytest.fixture
def invited(client, owner, mailbox):
    """A customer staff registered by phone, without a password; return its id and the invitation."""
    response = create(client, owner, status="registered", email=EMAIL, firstName="Ada")
    assert response.status_code == 201, response.get_json()
    (message,) = mailbox.wait_for(1)
    return response.get_json()["data"]["id"], message


def test_staff_register_a_customer_who_then_chooses_its_password(
    client, auth, account, session, invited, mailbox
):
    customer_id, message = invited
    assert message["To"] == EMAIL
    assert "Acme" in message["Subject"]
    assert mailbox.link(message).startswith("http://localhost:3000/set-password?token=")
    user = session.scalar(select(User).where(User.email == EMAIL))
    assert user.password_hash is None
    assert log_in(auth, account, password="", expect=400)["error"] == "invalid_request"
    assert log_in(auth, account, password="anything-at-all", expect=400)["error"] == "invalid_grant"

    assert_no_content(set_password(client, mailbox.token(message)))

    log_in(auth, account)
    customer = session.get(Customer, uuid.UUID(customer_id))
    session.refresh(customer)
    assert customer.email_verified is True  # the link went to the address
    # A first password is not news to tell anyone about: the invitation is the only email.
    assert len(mailbox.settled()) == 1


def test_a_new_invitation_replaces_the_first(client, auth, account, owner, invited, mailbox):
    customer_id, first = invited

    assert_no_content(invite(client, owner, customer_id))

    second = mailbox.wait_for(2)[1]
    assert errors_of(set_password(client, mailbox.token(first))) == {
        ("invalid", "/data/attributes/resetToken")
    }
    assert_no_content(set_password(client, mailbox.token(second)))
    log_in(auth, account)


def test_an_invitation_lasts_seven_days(client, auth, account, session, invited, mailbox):
    _, message = invited
    token = session.scalar(select(OneTimeToken).where(OneTimeToken.purpose == "invitation"))
    assert timedelta(days=6, hours=23) < token.expires_at - token.inserted_at <= timedelta(days=7)
    token.expires_at -= timedelta(days=7)
    session.commit()

    assert errors_of(set_password(client, mailbox.token(message))) == {
        ("invalid", "/data/attributes/resetToken")
    }
    log_in(auth, account, expect=400)


def test_a_customer_with_a_password_is_not_invited(client, owner, register, mailbox):
    customer, _ = register()
    assert errors_of(invite(client, owner, customer["id"])) == {("invalid", "/data/attributes/password")}
    assert mailbox.settled() == []


def test_a_guest_is_not_invited(client, owner, guest, mailbox):
    guest_customer = create(client, guest, email="g@example.com").get_json()["data"]
    assert errors_of(invite(client, owner, guest_customer["id"])) == {("invalid", "/data/attributes/status")}


def test_who_may_invite(client, auth, account, other_account, headers_as, invited):
    customer_id, _ = invited
    assert error_code(invite(client, headers_as("read_only"), customer_id), 403) == "access_denied"
    assert error_code(invite(client, headers_as("guest"), customer_id), 403) == "access_denied"
    elsewhere = auth.headers(auth.owner(other_account))
    assert error_code(invite(client, elsewhere, customer_id), 404) == "not_found"


def test_a_guest_token_still_needs_a_password_to_register(client, guest, mailbox):
    response = create(client, guest, status="registered", email=EMAIL)
    assert errors_of(response) == {("required", "/data/attributes/password")}
    assert mailbox.settled() == []


def test_a_forgotten_password_link_also_sets_a_first_one(client, auth, account, guest, invited, mailbox):
    body = {"data": {"type": "PasswordResetToken", "attributes": {"username": EMAIL}}}
    assert_no_content(client.post("/v1/password_reset_tokens", json=body, headers=guest))

    reset_link = mailbox.wait_for(2)[1]
    assert mailbox.link(reset_link).startswith("http://localhost:3000/reset-password?token=")
    assert_no_content(set_password(client, mailbox.token(reset_link)))
    log_in(auth, account)


def test_once_a_password_is_set_the_other_link_is_dead(client, auth, account, guest, invited, mailbox):
    _, invitation = invited
    body = {"data": {"type": "PasswordResetToken", "attributes": {"username": EMAIL}}}
    client.post("/v1/password_reset_tokens", json=body, headers=guest)
    reset_link = mailbox.wait_for(2)[1]

    assert_no_content(set_password(client, mailbox.token(reset_link)))

    response = set_password(client, mailbox.token(invitation), "someone-elses-choice")
    assert errors_of(response) == {("invalid", "/data/attributes/resetToken")}
    log_in(auth, account)
