"""Email verification over real email: /v1/email_verification_tokens and /v1/email_verifications."""

import uuid

import pytest
from sqlalchemy import select, update

from freshcom_customers.models import Customer, User
from freshcom_customers.services import users
from tests.conftest import assert_no_content, errors_of

PASSWORD = "roy-password-1"


def request_verification(client, headers, user_id=None, body=True):
    document = {"data": {"type": "EmailVerificationToken"}}
    if user_id is not None:
        document["data"]["relationships"] = {"user": {"data": {"type": "User", "id": user_id}}}
    if not body:
        return client.post("/v1/email_verification_tokens", headers=headers)
    return client.post("/v1/email_verification_tokens", json=document, headers=headers)


def verify(client, token, headers=None):
    body = {"data": {"type": "EmailVerification", "attributes": {"token": token}}}
    return client.post("/v1/email_verifications", json=body, headers=headers or {})


@pytest.fixture
def roy_headers(auth, account, roy):
    return auth.headers(auth.login(account, "roy@example.com", PASSWORD)["access_token"])


@pytest.fixture
def roy_user_id(roy):
    return roy["relationships"]["user"]["data"]["id"]


@pytest.fixture
def staff(auth, account, session):
    """Headers for a managed staff user of the account with the given role."""

    def staff(role, email=None):
        users.create_managed_user(
            account.live, username=role, password=f"{role}-password", role=role, email=email
        )
        session.commit()
        return auth.headers(auth.login(account, role, f"{role}-password")["access_token"])

    return staff


@pytest.mark.parametrize("body", [True, False])
def test_a_customer_verifies_its_email(client, session, roy, roy_headers, roy_user_id, mailbox, body):
    assert_no_content(request_verification(client, roy_headers, body=body))

    (message,) = mailbox.wait_for(1)
    assert message["To"] == "roy@example.com"
    assert message["Subject"] == "Verify your email address at Acme"
    assert mailbox.link(message).startswith("http://localhost:3000/verify-email?token=")
    token = mailbox.token(message)
    customer = client.get("/v1/customer", headers=roy_headers).get_json()["data"]
    assert customer["attributes"]["emailVerified"] is False

    assert_no_content(verify(client, token))  # no bearer token needed: the link is the proof

    customer = client.get("/v1/customer", headers=roy_headers).get_json()["data"]
    assert customer["attributes"]["emailVerified"] is True
    user = session.get(User, uuid.UUID(roy_user_id))
    session.refresh(user)
    assert user.email_verified is True
    assert user.email_verified_at is not None
    assert errors_of(verify(client, token)) == {("invalid", "/data/attributes/token")}


def test_staff_send_the_email_to_a_user_of_their_account(client, auth, account, roy_user_id, mailbox):
    owner = auth.headers(auth.owner(account))
    assert_no_content(request_verification(client, owner, roy_user_id.upper()))
    (message,) = mailbox.wait_for(1)
    assert message["To"] == "roy@example.com"
    assert_no_content(verify(client, mailbox.token(message), owner))


@pytest.mark.parametrize("role", ["administrator", "developer", "support_specialist"])
def test_each_sending_staff_role_may_name_a_user(client, staff, roy_user_id, mailbox, role):
    assert_no_content(request_verification(client, staff(role), roy_user_id))
    assert [m["To"] for m in mailbox.wait_for(1)] == ["roy@example.com"]


def test_staff_verify_their_own_email(client, auth, account, mailbox):
    owner = auth.headers(auth.owner(account))
    assert_no_content(request_verification(client, owner))
    (message,) = mailbox.wait_for(1)
    assert message["To"] == "owner@acme.test"
    assert "Acme" not in mailbox.parts(message)[0]  # a standard user belongs to no one account
    assert_no_content(verify(client, mailbox.token(message)))


def test_who_may_not_name_another_user(client, auth, account, other_account, roy_user_id, staff, mailbox):
    read_only = staff("read_only", email="ro@acme.test")
    assert request_verification(client, read_only, roy_user_id).status_code == 403
    other_owner = auth.headers(auth.owner(other_account))
    assert request_verification(client, other_owner, roy_user_id).status_code == 404
    owner = auth.headers(auth.owner(account))
    assert request_verification(client, owner, str(uuid.uuid4())).status_code == 404
    assert request_verification(client, owner, "not-a-uuid").status_code == 404
    guest = auth.headers(auth.guest(account))
    assert request_verification(client, guest).status_code == 403
    assert request_verification(client, {}).status_code == 401
    assert mailbox.settled() == []


def test_a_customer_may_not_name_another_user(client, auth, account, register, roy_headers, mailbox):
    other, _ = register(email="amy@example.com")
    other_id = other["relationships"]["user"]["data"]["id"]
    assert request_verification(client, roy_headers, other_id).status_code == 403
    assert request_verification(client, roy_headers, str(uuid.uuid4())).status_code == 403
    assert mailbox.settled() == []


def test_a_malformed_user_relationship(client, auth, account, roy_user_id):
    owner = auth.headers(auth.owner(account))
    body = {"data": {"type": "EmailVerificationToken", "relationships": {"user": {"data": {"id": 5}}}}}
    response = client.post("/v1/email_verification_tokens", json=body, headers=owner)
    assert response.status_code == 400
    body["data"]["relationships"]["user"]["data"] = {"type": "Customer", "id": roy_user_id}
    response = client.post("/v1/email_verification_tokens", json=body, headers=owner)
    assert errors_of(response) == {("invalid", "/data/relationships/user")}
    body["data"]["type"] = "Customer"
    response = client.post("/v1/email_verification_tokens", json=body, headers=owner)
    assert response.status_code == 409
    body["data"] = {"type": "EmailVerificationToken", "relationships": None}  # found by the fuzzer
    response = client.post("/v1/email_verification_tokens", json=body, headers=owner)
    assert response.status_code == 400
    assert response.get_json()["errors"][0]["source"] == {"pointer": "/data/relationships"}


def test_a_user_without_an_email(client, staff, mailbox):
    assert errors_of(request_verification(client, staff("developer"))) == {
        ("required", "/data/attributes/email")
    }


def test_a_second_email_invalidates_the_first_link(client, roy_headers, mailbox):
    assert_no_content(request_verification(client, roy_headers))
    assert_no_content(request_verification(client, roy_headers))
    first, second = (mailbox.token(m) for m in mailbox.wait_for(2))
    assert errors_of(verify(client, first)) == {("invalid", "/data/attributes/token")}
    assert_no_content(verify(client, second))


def test_a_link_to_an_old_address_verifies_nothing(client, session, roy, roy_headers, mailbox):
    assert_no_content(request_verification(client, roy_headers))
    token = mailbox.token(mailbox.wait_for(1)[0])
    for model in (User, Customer):
        session.execute(update(model).where(model.email == "roy@example.com").values(email="roy@new.example"))
    session.commit()

    assert errors_of(verify(client, token)) == {("invalid", "/data/attributes/token")}
    customer = session.scalar(select(Customer).where(Customer.email == "roy@new.example"))
    session.refresh(customer)
    assert customer.email_verified is False
    assert customer.user.email_verified is False


def test_a_reset_token_does_not_verify(client, auth, account, roy, mailbox):
    body = {"data": {"type": "PasswordResetToken", "attributes": {"username": "roy@example.com"}}}
    client.post("/v1/password_reset_tokens", json=body, headers=auth.headers(auth.guest(account)))
    (message,) = mailbox.wait_for(1)
    assert errors_of(verify(client, mailbox.token(message))) == {("invalid", "/data/attributes/token")}


@pytest.mark.parametrize(
    ("attributes", "code"), [({}, "required"), ({"token": None}, "required"), ({"token": "nope"}, "invalid")]
)
def test_a_bad_token(client, attributes, code):
    body = {"data": {"type": "EmailVerification", "attributes": attributes}}
    assert errors_of(client.post("/v1/email_verifications", json=body)) == {(code, "/data/attributes/token")}
