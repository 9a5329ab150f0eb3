"""Email change (API.md 9): the password for one's own change, a link to the new address, the old one told."""

import uuid

import pytest
from sqlalchemy import select

from freshcom_customers.models import User
from tests.conftest import assert_no_content, customer_document, errors_of

OLD, NEW = "roy@example.com", "roy.bao@example.net"
PASSWORD = "roy-password-1"


def patch_customer(client, headers, customer_id, **attributes):
    document = customer_document(**attributes)
    document["data"]["id"] = customer_id
    return client.patch(f"/v1/customers/{customer_id}", json=document, headers=headers)


def patch_user(client, headers, **attributes):
    return client.patch(
        "/v1/user", json={"data": {"type": "User", "attributes": attributes}}, headers=headers
    )


def verify(client, token):
    body = {"data": {"type": "EmailVerification", "attributes": {"token": token}}}
    return client.post("/v1/email_verifications", json=body)


def log_in(auth, account, username, password=PASSWORD, expect=200):
    data = {"grant_type": "password", "username": username, "password": password}
    return auth.token(expect=expect, scope=f"aid:{account.live.id}", **data)


@pytest.fixture
def roy_headers(auth, account, roy):
    return auth.headers(log_in(auth, account, OLD)["access_token"])


def test_a_customers_new_email_waits_for_its_link_and_the_old_address_is_told(
    client, auth, account, session, roy, roy_headers, mailbox
):
    response = patch_customer(client, roy_headers, roy["id"], email=NEW, currentPassword=PASSWORD)

    assert response.status_code == 200, response.get_json()
    attributes = response.get_json()["data"]["attributes"]
    assert (attributes["email"], attributes["pendingEmail"]) == (OLD, NEW)
    log_in(auth, account, OLD)  # the username still follows the old email
    log_in(auth, account, NEW, expect=400)
    (confirmation,) = mailbox.wait_for(1)
    assert confirmation["To"] == NEW
    assert mailbox.link(confirmation).startswith("http://localhost:3000/verify-email?token=")

    assert_no_content(verify(client, mailbox.token(confirmation)))

    after = client.get(f"/v1/customers/{roy['id']}", headers=roy_headers).get_json()["data"]["attributes"]
    assert (after["email"], after["pendingEmail"], after["emailVerified"]) == (NEW, None, True)
    log_in(auth, account, NEW)
    log_in(auth, account, OLD, expect=400)
    notice = mailbox.wait_for(2)[1]
    assert notice["To"] == OLD
    text, html = mailbox.parts(notice)
    assert "r•••@example.net" in text and NEW not in text  # recognisable, not writable
    assert "token=" not in text + html  # nothing that could undo the change
    user = session.get(User, uuid.UUID(roy["relationships"]["user"]["data"]["id"]))
    session.refresh(user)
    assert (user.email, user.username, user.pending_email) == (NEW, NEW, None)


@pytest.mark.parametrize("current", [None, "wrong-password-1"], ids=["none", "wrong"])
def test_ones_own_change_needs_the_current_password(client, roy, roy_headers, mailbox, current):
    attributes = {"email": NEW} if current is None else {"email": NEW, "currentPassword": current}
    response = patch_customer(client, roy_headers, roy["id"], **attributes)
    assert errors_of(response) == {("invalid", "/data/attributes/currentPassword")}
    assert mailbox.settled() == []


def test_the_same_address_needs_no_password_and_cancels_a_pending_change(client, roy, roy_headers, mailbox):
    patch_customer(client, roy_headers, roy["id"], email=NEW, currentPassword=PASSWORD)
    token = mailbox.token(mailbox.wait_for(1)[0])

    response = patch_customer(client, roy_headers, roy["id"], email="ROY@example.com", firstName="Roy")

    assert response.status_code == 200
    assert response.get_json()["data"]["attributes"]["pendingEmail"] is None
    assert errors_of(verify(client, token)) == {("invalid", "/data/attributes/token")}


def test_an_address_another_customer_has_is_refused_before_any_mail(
    client, roy, roy_headers, register, mailbox
):
    register(email=NEW)
    mailbox.handler.messages.clear()
    response = patch_customer(client, roy_headers, roy["id"], email=NEW, currentPassword=PASSWORD)
    assert errors_of(response) == {("taken", "/data/attributes/email")}
    assert mailbox.settled() == []


def test_staff_change_an_email_at_once_and_an_older_link_dies(
    client, auth, account, owner, roy, roy_headers, mailbox
):
    patch_customer(client, roy_headers, roy["id"], email=NEW, currentPassword=PASSWORD)
    token = mailbox.token(mailbox.wait_for(1)[0])

    response = patch_customer(client, owner, roy["id"], email="roy@elsewhere.test")

    attributes = response.get_json()["data"]["attributes"]
    assert (attributes["email"], attributes["pendingEmail"]) == ("roy@elsewhere.test", None)
    log_in(auth, account, "roy@elsewhere.test")
    assert errors_of(verify(client, token)) == {("invalid", "/data/attributes/token")}


def test_the_users_own_patch_goes_the_same_way(client, auth, account, roy, roy_headers, mailbox):
    response = patch_user(client, roy_headers, email=NEW, currentPassword=PASSWORD)

    attributes = response.get_json()["data"]["attributes"]
    assert (attributes["email"], attributes["pendingEmail"]) == (OLD, NEW)
    assert_no_content(verify(client, mailbox.token(mailbox.wait_for(1)[0])))
    log_in(auth, account, NEW)


def test_a_staff_users_own_change_waits_too(client, auth, account, session, mailbox):
    owner = account.owner
    headers = auth.headers(auth.owner(account))
    response = patch_user(client, headers, email="boss@acme.example", currentPassword=account.owner_password)

    assert response.get_json()["data"]["attributes"]["pendingEmail"] == "boss@acme.example"
    assert_no_content(verify(client, mailbox.token(mailbox.wait_for(1)[0])))
    session.refresh(owner)
    assert owner.email == "boss@acme.example"
    assert mailbox.wait_for(2)[1]["To"] == "owner@acme.test"


def test_the_address_taken_while_the_link_waited_changes_nothing(
    client, auth, account, owner, session, roy, roy_headers, register, mailbox
):
    patch_customer(client, roy_headers, roy["id"], email=NEW, currentPassword=PASSWORD)
    token = mailbox.token(mailbox.wait_for(1)[0])
    register(email=NEW)

    assert errors_of(verify(client, token)) == {("taken", "/data/attributes/token")}
    assert session.scalar(select(User).where(User.username == OLD)).email == OLD


# Passwords: the owner hears of every change.


def test_a_password_change_and_a_reset_tell_the_owner(
    client, auth, account, guest, roy, roy_headers, mailbox
):
    patch_user(client, roy_headers, password="roy-password-2", currentPassword=PASSWORD)
    changed = mailbox.wait_for(1)[0]
    assert (changed["To"], "token=" in mailbox.parts(changed)[0]) == (OLD, False)
    assert "changed" in mailbox.parts(changed)[0]

    body = {"data": {"type": "PasswordResetToken", "attributes": {"username": OLD}}}
    client.post("/v1/password_reset_tokens", json=body, headers=guest)
    link = mailbox.token(mailbox.wait_for(2)[1])
    reset = {"data": {"type": "Password", "attributes": {"value": "roy-password-3"}}}
    assert_no_content(client.patch(f"/v1/password?resetToken={link}", json=reset))

    notice = mailbox.wait_for(3)[2]
    assert notice["To"] == OLD
    assert "reset" in mailbox.parts(notice)[0]
    log_in(auth, account, OLD, password="roy-password-3")
