"""Customers on /v1: create, read, list, update, status sync, delete, uniqueness, roles and tenancy."""

import json
import uuid

import pytest
from sqlalchemy import func, select

from freshcom_customers.api import customers as customers_api
from freshcom_customers.models import Customer, RefreshToken, User
from freshcom_customers.oauth2.scopes import GENERIC_FAILURE
from freshcom_customers.services import customers, users
from freshcom_customers.services.access_tokens import Principal
from tests import factories
from tests.conftest import customer_document, error_code, errors_of
from tests.test_identifiers import LOOK_ALIKES

MEDIA_TYPE = "application/vnd.api+json"
ATTRIBUTES = {
    "status",
    "code",
    "name",
    "firstName",
    "lastName",
    "email",
    "phoneNumber",
    "label",
    "caption",
    "description",
    "customData",
    "emailVerified",
    "pendingEmail",
    "insertedAt",
    "updatedAt",
}


def login(auth, account, username="roy@example.com", password="roy-password-1"):
    return auth.headers(auth.login(account, username, password)["access_token"])


def create(client, headers, **attributes):
    body = json.dumps(customer_document(**attributes))
    return client.post("/v1/customers", data=body, content_type=MEDIA_TYPE, headers=headers)


def update(client, headers, customer_id, **attributes):
    body = json.dumps(customer_document(**attributes))
    return client.patch(f"/v1/customers/{customer_id}", data=body, content_type=MEDIA_TYPE, headers=headers)


def read(client, headers, customer_id):
    return client.get(f"/v1/customers/{customer_id}", headers=headers)


def user_of(session, customer: dict) -> User:
    return session.get(User, uuid.UUID(customer["relationships"]["user"]["data"]["id"]))


def count_customers(session, account) -> int:
    return session.scalar(select(func.count()).select_from(Customer).where(Customer.account_id == account.id))


def password_grant(auth, account, username="roy@example.com", password="roy-password-1"):
    return auth.token(
        expect=400,
        grant_type="password",
        username=username,
        password=password,
        scope=f"aid:{account.live.id}",
    )


# Create


def test_guest_creates_a_guest_customer_by_default(client, guest, owner, session, account):
    response = create(client, guest, firstName="Roy", email="roy@example.com", code="C-1")
    assert response.status_code == 201
    data = response.get_json()["data"]
    assert data["type"] == "Customer"
    assert data["attributes"]["status"] == "guest"
    assert data["attributes"]["code"] == "C-1"
    assert data["relationships"]["user"] == {"data": None}
    assert response.headers["Location"].endswith(f"/v1/customers/{data['id']}")
    assert read(client, owner, data["id"]).get_json()["data"]["attributes"]["email"] == "roy@example.com"
    assert (
        session.scalar(select(func.count()).select_from(User).where(User.account_id == account.live.id)) == 0
    )


def test_registration_creates_the_customer_and_its_user(register, session, account):
    customer, _ = register(phoneNumber="+1 604 555 0100")
    assert customer["attributes"]["status"] == "registered"
    assert customer["attributes"]["name"] == "Roy Bao"
    assert customer["relationships"]["user"]["data"]["type"] == "User"
    user = user_of(session, customer)
    assert user.account_id == account.live.id
    assert (user.username, user.email, user.role, user.status) == (
        "roy@example.com",
        "roy@example.com",
        "customer",
        "active",
    )
    assert (user.first_name, user.last_name, user.name, user.phone_number) == (
        "Roy",
        "Bao",
        "Roy Bao",
        "+1 604 555 0100",
    )
    assert user.password_hash.startswith("$argon2id$")
    stored = session.scalar(select(Customer).where(Customer.id == uuid.UUID(customer["id"])))
    assert stored.user_id == user.id


def test_registered_customer_logs_in_with_its_email(auth, account, register):
    _, password = register()
    token = auth.login(account, "ROY@example.com", password)
    assert token["refresh_token"].startswith("urt-live-")


def test_an_explicit_username_replaces_the_email_as_login(auth, account, register, session):
    customer, password = register(username="Roy.Bao")
    assert user_of(session, customer).username == "roy.bao"
    assert auth.login(account, "roy.bao", password)["access_token"]
    assert password_grant(auth, account, "roy@example.com", password)["error"] == "invalid_grant"


def test_an_explicit_name_wins_over_first_and_last_name(register, session):
    customer, _ = register(name="Mr. Roy Bao")
    assert customer["attributes"]["name"] == "Mr. Roy Bao"
    assert user_of(session, customer).name == "Mr. Roy Bao"


def test_email_is_compared_case_insensitively_at_login(auth, account, register):
    register(email="Roy.Bao@Example.COM", password="roy-password-1")
    assert auth.login(account, "roy.bao@example.com", "roy-password-1")["access_token"]


@pytest.mark.parametrize("length", [8, 128])
def test_passwords_of_8_to_128_characters_are_accepted_untruncated(auth, account, register, length):
    password = ("correct-horse-" * 10)[: length - 1] + "!"
    register(password=password)
    assert auth.login(account, "roy@example.com", password)["access_token"]
    # Nothing is cut off: a prefix of the password is just a wrong password.
    assert password_grant(auth, account, password=password[:-1])["error"] == "invalid_grant"


@pytest.mark.parametrize("status", ["guest", "registered"])
def test_staff_create_guest_and_registered_customers(client, owner, status):
    response = create(client, owner, status=status, email="roy@example.com", password="roy-password-1")
    assert response.status_code == 201
    data = response.get_json()["data"]
    assert data["attributes"]["status"] == status
    assert (data["relationships"]["user"]["data"] is None) == (status == "guest")


def test_staff_create_a_suspended_customer_with_a_suspended_user(client, auth, account, owner, session):
    response = create(client, owner, status="suspended", email="roy@example.com", password="roy-password-1")
    assert response.status_code == 201, response.get_json()
    data = response.get_json()["data"]
    assert data["attributes"]["status"] == "suspended"
    # API.md 1: every registered or suspended customer has exactly one managed user.
    assert user_of(session, data).status == "suspended"
    assert password_grant(auth, account)["error"] == "invalid_grant"


def test_suspending_a_guest_customer_gives_it_a_suspended_user(client, auth, account, guest, owner, session):
    created = create(client, guest, email="roy@example.com").get_json()["data"]
    response = update(client, owner, created["id"], status="suspended", password="roy-password-1")
    assert response.status_code == 200, response.get_json()
    assert user_of(session, response.get_json()["data"]).status == "suspended"
    assert password_grant(auth, account)["error"] == "invalid_grant"


def test_suspending_a_guest_without_a_password_invites_no_one(client, guest, owner, session, mailbox):
    created = create(client, guest, email="roy@example.com").get_json()["data"]
    response = update(client, owner, created["id"], status="suspended")
    assert response.status_code == 200, response.get_json()
    user = user_of(session, response.get_json()["data"])
    assert (user.status, user.password_hash) == ("suspended", None)
    assert mailbox.settled() == []


def test_a_guest_cannot_create_a_suspended_customer(client, guest, owner, session, account):
    response = create(client, guest, status="suspended", email="roy@example.com", password="roy-password-1")
    assert error_code(response, 403) == "access_denied"
    assert count_customers(session, account.live) == 0


REG = {"status": "registered", "email": "roy@example.com", "password": "roy-password-1"}
CREATE_ERRORS = [
    pytest.param(
        {"status": "registered"}, {("required", "email"), ("required", "password")}, id="no credentials"
    ),
    pytest.param({**REG, "password": None}, {("required", "password")}, id="no password"),
    pytest.param({**REG, "password": ""}, {("required", "password")}, id="empty password"),
    pytest.param({**REG, "email": None}, {("required", "email")}, id="no email"),
    pytest.param({**REG, "password": "seven77"}, {("length", "password")}, id="password of 7"),
    pytest.param({**REG, "password": "x" * 129}, {("length", "password")}, id="password of 129"),
    pytest.param({**REG, "username": "ab"}, {("length", "username")}, id="short username"),
    pytest.param({"status": "deleted"}, {("inclusion", "status")}, id="unknown status"),
    pytest.param({"status": "Registered"}, {("inclusion", "status")}, id="status is case-sensitive"),
    pytest.param({"email": "not-an-email"}, {("format", "email")}, id="bad email"),
    pytest.param({**REG, "email": "roy@"}, {("format", "email")}, id="bad email on registration"),
    pytest.param({"code": "x" * 65}, {("length", "code")}, id="long code"),
    pytest.param({"firstName": "x" * 256}, {("length", "firstName")}, id="long first name"),
    pytest.param({"last_name": "x" * 256}, {("length", "lastName")}, id="long snake_case last name"),
    pytest.param({"phoneNumber": "1" * 33}, {("length", "phoneNumber")}, id="long phone number"),
    pytest.param({"label": "x" * 65}, {("length", "label")}, id="long label"),
    pytest.param({"customData": "gold"}, {("invalid", "customData")}, id="custom data not an object"),
    pytest.param({"firstName": 5}, {("invalid", "firstName")}, id="first name not a string"),
    pytest.param(
        {"email": "bad", "code": "x" * 65}, {("format", "email"), ("length", "code")}, id="several at once"
    ),
]


@pytest.mark.parametrize(("attributes", "expected"), CREATE_ERRORS)
def test_create_validation(client, guest, session, account, attributes, expected):
    response = create(client, guest, **attributes)
    assert errors_of(response) == {(code, f"/data/attributes/{field}") for code, field in expected}
    assert count_customers(session, account.live) == 0


@pytest.mark.parametrize("password", ["password", "12345678", "qwertyuiop"])
def test_common_passwords_are_refused(client, guest, session, account, password):
    response = create(client, guest, **{**REG, "password": password})
    assert errors_of(response) == {("invalid", "/data/attributes/password")}
    assert count_customers(session, account.live) == 0


def test_a_failed_registration_writes_neither_row(client, guest, register, session, account):
    register()
    # The customer row alone would be fine; its user's username is taken.
    response = create(client, guest, **{**REG, "email": "ray@example.com", "username": "roy@example.com"})
    assert errors_of(response) == {("taken", "/data/attributes/username")}
    assert count_customers(session, account.live) == 1
    assert session.scalar(select(User).where(User.email == "ray@example.com")) is None


# Read


def test_customer_reads_itself(client, auth, account, register):
    customer, password = register()
    response = client.get("/v1/customer", headers=login(auth, account, password=password))
    assert response.status_code == 200
    assert response.mimetype == MEDIA_TYPE
    data = response.get_json()["data"]
    assert data["id"] == customer["id"]
    assert data["type"] == "Customer"
    assert set(data["attributes"]) == ATTRIBUTES
    assert data["attributes"]["email"] == "roy@example.com"
    assert data["relationships"]["user"] == customer["relationships"]["user"]


def test_customer_reads_itself_by_id_but_not_others(client, auth, account, register, guest):
    customer, password = register()
    amy = create(client, guest, email="amy@example.com").get_json()["data"]
    headers = login(auth, account, password=password)
    assert read(client, headers, customer["id"]).get_json()["data"]["id"] == customer["id"]
    # Another customer's id does not exist for a customer: 404, not 403.
    assert error_code(read(client, headers, amy["id"]), 404) == "not_found"


def test_staff_read_any_customer_of_the_account(client, guest, staff):
    amy = create(client, guest, email="amy@example.com", customData={"tier": "gold"}).get_json()["data"]
    response = read(client, staff("read_only"), amy["id"])
    assert response.status_code == 200
    assert response.get_json()["data"]["attributes"]["customData"] == {"tier": "gold"}


def test_guest_finds_a_guest_customer_by_code_and_identifier(client, guest):
    amy = create(client, guest, code="A-1", firstName="Amy", lastName="Li", phoneNumber="(604) 555-0100")
    amy_id = amy.get_json()["data"]["id"]
    found = client.get("/v1/customer", query_string={"code": "A-1", "firstName": " amy "}, headers=guest)
    assert found.status_code == 200
    assert found.get_json()["data"]["id"] == amy_id
    by_phone = client.get(
        "/v1/customer", query_string={"code": "A-1", "phoneNumber": "6045550100"}, headers=guest
    )
    assert by_phone.get_json()["data"]["id"] == amy_id
    wrong = client.get("/v1/customer", query_string={"code": "A-1", "lastName": "Bao"}, headers=guest)
    assert wrong.status_code == 404


# List


def _newest_ids(client, headers, **query):
    response = client.get("/v1/customers", query_string=query, headers=headers)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    return [c["id"] for c in body["data"]], body["meta"]


def test_list_is_newest_first_with_counts(client, guest, owner):
    created = [create(client, guest, email=f"c{i}@example.com").get_json()["data"]["id"] for i in range(3)]
    ids, meta = _newest_ids(client, owner)
    assert ids == created[::-1]
    assert meta == {"totalCount": 3, "allCount": 3, "totalCountExact": True}


def test_list_pages(client, guest, owner):
    created = [create(client, guest, email=f"c{i}@example.com").get_json()["data"]["id"] for i in range(5)]
    newest = created[::-1]
    assert _newest_ids(client, owner, **{"page[size]": "2"})[0] == newest[:2]
    assert _newest_ids(client, owner, **{"page[size]": "2", "page[number]": "2"})[0] == newest[2:4]
    assert _newest_ids(client, owner, **{"page[size]": "2", "page[number]": "3"})[0] == newest[4:]
    ids, meta = _newest_ids(client, owner, **{"page[size]": "2", "page[number]": "4"})
    assert ids == []
    assert meta["totalCount"] == 5


def test_default_page_size_is_25(client, owner, account, session):
    for i in range(26):
        customers.create_customer(account.live, {"email": f"c{i}@example.com"})
    session.commit()
    ids, meta = _newest_ids(client, owner)
    assert len(ids) == 25
    assert meta["totalCount"] == 26
    assert len(_newest_ids(client, owner, **{"page[number]": "2"})[0]) == 1
    assert len(_newest_ids(client, owner, **{"page[size]": "100"})[0]) == 26


def test_list_shows_only_the_accounts_customers(client, auth, account, other_account, register):
    mine, _ = register()
    other_guest = auth.headers(auth.guest(other_account))
    create(client, other_guest, email="amy@example.com")
    ids, meta = _newest_ids(client, auth.headers(auth.owner(account)))
    assert ids == [mine["id"]]
    assert meta["totalCount"] == 1


def test_list_filters_by_status(client, guest, owner, register):
    roy, _ = register()
    create(client, guest, email="amy@example.com")
    ids, meta = _newest_ids(client, owner, **{"filter[status]": "registered"})
    assert ids == [roy["id"]]
    assert meta == {"totalCount": 1, "allCount": 2, "totalCountExact": True}


def test_list_searches(client, guest, owner, register):
    register()
    amy = create(client, guest, email="amy@example.com", firstName="Amy").get_json()["data"]
    ids, meta = _newest_ids(client, owner, search="amy")
    assert ids == [amy["id"]]
    assert meta == {"totalCount": 1, "allCount": 2, "totalCountExact": True}


# Update and profile sync


def test_staff_update_copies_the_profile_to_the_user(client, owner, register, session):
    customer, _ = register()
    response = update(
        client,
        owner,
        customer["id"],
        email="Ray@Example.com",
        phoneNumber="555-0100",
        firstName="Ray",
        lastName="Bow",
        label="vip",
    )
    assert response.status_code == 200, response.get_json()
    attributes = response.get_json()["data"]["attributes"]
    assert (attributes["firstName"], attributes["lastName"], attributes["name"]) == ("Ray", "Bow", "Ray Bow")
    assert attributes["label"] == "vip"
    user = user_of(session, customer)
    assert (user.email, user.phone_number, user.first_name, user.last_name, user.name) == (
        "ray@example.com",
        "555-0100",
        "Ray",
        "Bow",
        "Ray Bow",
    )


def test_a_username_that_was_the_email_follows_a_new_email(client, auth, account, owner, register):
    customer, password = register()
    assert update(client, owner, customer["id"], email="ray@example.com").status_code == 200
    assert auth.login(account, "ray@example.com", password)["token_type"] == "bearer"
    assert password_grant(auth, account, "roy@example.com", password)["error"] == "invalid_grant"


def test_an_explicit_username_stays_when_the_email_changes(client, auth, account, owner, register):
    customer, password = register(username="roybao")
    assert update(client, owner, customer["id"], email="ray@example.com").status_code == 200
    assert auth.login(account, "roybao", password)["token_type"] == "bearer"


@pytest.mark.parametrize("email", [None, ""])
def test_a_registered_customer_keeps_an_email(client, owner, register, session, email):
    customer, _ = register()
    response = update(client, owner, customer["id"], email=email)
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["source"] == {"pointer": "/data/attributes/email"}
    assert user_of(session, customer).email == "roy@example.com"


def test_a_data_id_other_than_the_url_is_409(client, owner, register):
    customer, _ = register()
    other = "00000000-0000-0000-0000-000000000000"
    body = {"data": {"type": "Customer", "id": other, "attributes": {"label": "x"}}}
    response = client.patch(f"/v1/customers/{customer['id']}", json=body, headers=owner)
    assert response.status_code == 409
    assert response.get_json()["errors"][0]["code"] == "id_mismatch"
    body["data"]["id"] = customer["id"]
    assert client.patch(f"/v1/customers/{customer['id']}", json=body, headers=owner).status_code == 200


def test_an_explicit_name_is_copied_to_the_user(client, owner, register, session):
    customer, _ = register()
    update(client, owner, customer["id"], name="R. Bao")
    assert user_of(session, customer).name == "R. Bao"
    assert read(client, owner, customer["id"]).get_json()["data"]["attributes"]["name"] == "R. Bao"


def test_customer_updates_its_own_profile_and_the_user_follows(client, auth, account, register, session):
    customer, password = register()
    headers = login(auth, account, password=password)
    response = update(
        client, headers, customer["id"], phone_number="555-0199", caption="hi", customData={"a": 1}
    )
    assert response.status_code == 200, response.get_json()
    attributes = response.get_json()["data"]["attributes"]
    assert (attributes["phoneNumber"], attributes["caption"], attributes["customData"]) == (
        "555-0199",
        "hi",
        {"a": 1},
    )
    assert user_of(session, customer).phone_number == "555-0199"


def test_a_partial_update_keeps_the_other_fields(client, owner, register, session):
    customer, _ = register(phoneNumber="555-0100", code="C-1")
    attributes = update(client, owner, customer["id"], label="vip").get_json()["data"]["attributes"]
    assert (attributes["email"], attributes["phoneNumber"], attributes["code"], attributes["status"]) == (
        "roy@example.com",
        "555-0100",
        "C-1",
        "registered",
    )
    assert user_of(session, customer).email == "roy@example.com"


def test_customer_may_send_its_unchanged_status(client, auth, account, register):
    customer, password = register()
    response = update(
        client, login(auth, account, password=password), customer["id"], status="registered", label="x"
    )
    assert response.status_code == 200
    assert response.get_json()["data"]["attributes"]["label"] == "x"


def test_customer_cannot_change_its_own_status(client, auth, account, owner, register, session):
    customer, password = register()
    response = update(client, login(auth, account, password=password), customer["id"], status="suspended")
    assert error_code(response, 403) == "access_denied"
    assert read(client, owner, customer["id"]).get_json()["data"]["attributes"]["status"] == "registered"
    assert user_of(session, customer).status == "active"


def test_customer_cannot_update_another_customer(client, auth, account, owner, guest, register):
    _, password = register()
    amy = create(client, guest, email="amy@example.com").get_json()["data"]
    response = update(client, login(auth, account, password=password), amy["id"], label="hacked")
    assert error_code(response, 404) == "not_found"
    assert read(client, owner, amy["id"]).get_json()["data"]["attributes"]["label"] is None


UPDATE_ERRORS = [
    pytest.param({"status": "gone"}, {("inclusion", "status")}, id="unknown status"),
    pytest.param({"status": "guest"}, {("invalid", "status")}, id="back to guest"),
    pytest.param({"email": "nope"}, {("format", "email")}, id="bad email"),
    pytest.param({"code": "x" * 65}, {("length", "code")}, id="long code"),
    pytest.param({"password": "new-password-1"}, {("invalid", "password")}, id="password not changed here"),
]


@pytest.mark.parametrize(("attributes", "expected"), UPDATE_ERRORS)
def test_update_validation(client, owner, register, session, attributes, expected):
    customer, _ = register()
    response = update(client, owner, customer["id"], **attributes)
    assert errors_of(response) == {(code, f"/data/attributes/{field}") for code, field in expected}
    after = read(client, owner, customer["id"]).get_json()["data"]["attributes"]
    assert (after["status"], after["email"], after["code"]) == ("registered", "roy@example.com", None)


# Status transitions


def test_a_guest_customer_becomes_registered(client, auth, account, guest, owner, session):
    created = create(client, guest, email="amy@example.com", firstName="Amy").get_json()["data"]
    response = update(client, owner, created["id"], status="registered", password="amy-password-1")
    assert response.status_code == 200, response.get_json()
    data = response.get_json()["data"]
    assert data["id"] == created["id"]
    assert data["attributes"]["status"] == "registered"
    user = user_of(session, data)
    assert (user.username, user.email, user.first_name, user.status) == (
        "amy@example.com",
        "amy@example.com",
        "Amy",
        "active",
    )
    token = auth.login(account, "amy@example.com", "amy-password-1")["access_token"]
    assert client.get("/v1/customer", headers=auth.headers(token)).get_json()["data"]["id"] == created["id"]


def test_registering_a_guest_needs_an_email(client, guest, owner, session):
    """Staff may leave out the password: the customer is invited to choose one (test_invitations.py)."""
    created = create(client, guest, firstName="Amy").get_json()["data"]
    response = update(client, owner, created["id"], status="registered")
    assert errors_of(response) == {("required", "/data/attributes/email")}
    after = read(client, owner, created["id"]).get_json()["data"]
    assert after["attributes"]["status"] == "guest"
    assert after["relationships"]["user"] == {"data": None}


def test_registering_a_guest_with_an_email_in_the_same_request(client, guest, owner, session):
    created = create(client, guest, firstName="Amy").get_json()["data"]
    response = update(
        client, owner, created["id"], status="registered", email="amy@example.com", password="amy-password-1"
    )
    assert response.status_code == 200, response.get_json()
    assert user_of(session, response.get_json()["data"]).username == "amy@example.com"


def test_suspension_locks_the_customer_out_at_once(client, auth, account, owner, register, session):
    customer, password = register()
    tokens = auth.login(account, "roy@example.com", password)
    headers = auth.headers(tokens["access_token"])
    assert client.get("/v1/customer", headers=headers).status_code == 200

    response = update(client, owner, customer["id"], status="suspended")
    assert response.status_code == 200
    assert response.get_json()["data"]["attributes"]["status"] == "suspended"

    user = user_of(session, customer)
    assert user.status == "suspended"
    live_tokens = select(RefreshToken).where(
        RefreshToken.user_id == user.id, RefreshToken.revoked_at.is_(None)
    )
    assert session.scalars(live_tokens).all() == []
    assert client.get("/v1/customer", headers=headers).status_code == 401
    assert password_grant(auth, account, password=password) == {
        "error": "invalid_grant",
        "error_description": GENERIC_FAILURE,
    }
    refresh = auth.token(expect=400, grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert refresh["error"] == "invalid_grant"


def test_reactivation_lets_the_customer_log_in_but_old_tokens_stay_dead(
    client, auth, account, owner, register, session
):
    customer, password = register()
    old = auth.login(account, "roy@example.com", password)
    update(client, owner, customer["id"], status="suspended")

    response = update(client, owner, customer["id"], status="registered")
    assert response.status_code == 200
    assert response.get_json()["data"]["attributes"]["status"] == "registered"
    assert user_of(session, customer).status == "active"

    assert client.get("/v1/customer", headers=auth.headers(old["access_token"])).status_code == 401
    refresh = auth.token(expect=400, grant_type="refresh_token", refresh_token=old["refresh_token"])
    assert refresh["error"] == "invalid_grant"
    new = auth.login(account, "roy@example.com", password)
    assert client.get("/v1/customer", headers=auth.headers(new["access_token"])).status_code == 200


@pytest.mark.parametrize("status", ["registered", "suspended"])
def test_a_customer_with_a_user_cannot_become_a_guest(client, owner, register, status):
    customer, _ = register()
    update(client, owner, customer["id"], status=status)
    response = update(client, owner, customer["id"], status="guest")
    assert errors_of(response) == {("invalid", "/data/attributes/status")}
    assert read(client, owner, customer["id"]).get_json()["data"]["attributes"]["status"] == status


def test_a_suspended_customers_username_cannot_be_registered_again(client, guest, owner, register):
    customer, _ = register()
    update(client, owner, customer["id"], status="suspended")
    # The username was not sent (it defaults to the email): the error points at the email.
    assert errors_of(create(client, guest, **REG)) == {("taken", "/data/attributes/email")}
    other_email = create(client, guest, **{**REG, "email": "ray@example.com", "username": "roy@example.com"})
    assert errors_of(other_email) == {("taken", "/data/attributes/username")}


def test_a_former_email_is_free_once_the_username_followed_it(client, guest, owner, register, session):
    customer, _ = register()
    update(client, owner, customer["id"], email="roy.bao@example.com")
    assert user_of(session, customer).username == "roy.bao@example.com"
    assert create(client, guest, **REG).status_code == 201


def test_a_username_taken_by_an_explicit_username_points_at_the_email(client, guest, owner, register):
    register(username="roy@example.com", email="roy.bao@example.com")
    assert errors_of(create(client, guest, **REG)) == {("taken", "/data/attributes/email")}


# Delete


def test_delete_removes_the_customer_and_its_user(client, auth, account, owner, register, session):
    customer, password = register()
    tokens = auth.login(account, "roy@example.com", password)
    user_id = user_of(session, customer).id

    response = client.delete(f"/v1/customers/{customer['id']}", headers=owner)
    assert response.status_code == 204
    assert response.get_data() == b""

    assert error_code(read(client, owner, customer["id"]), 404) == "not_found"
    session.expire_all()
    assert session.get(User, user_id) is None
    assert session.scalars(select(RefreshToken).where(RefreshToken.user_id == user_id)).all() == []
    assert client.get("/v1/customer", headers=auth.headers(tokens["access_token"])).status_code == 401
    assert password_grant(auth, account, password=password)["error"] == "invalid_grant"


def test_delete_frees_the_username_and_email(client, owner, register):
    customer, _ = register()
    assert client.delete(f"/v1/customers/{customer['id']}", headers=owner).status_code == 204
    again, _ = register()
    assert again["id"] != customer["id"]


def test_delete_a_guest_customer(client, guest, owner, session, account):
    created = create(client, guest, email="amy@example.com").get_json()["data"]
    assert client.delete(f"/v1/customers/{created['id']}", headers=owner).status_code == 204
    assert count_customers(session, account.live) == 0


def test_delete_an_unknown_customer_is_404(client, owner):
    response = client.delete(f"/v1/customers/{uuid.uuid4()}", headers=owner)
    assert error_code(response, 404) == "not_found"


# Uniqueness


def test_email_is_unique_among_guests_case_insensitively(client, guest, session, account):
    assert create(client, guest, email="amy@example.com").status_code == 201
    assert errors_of(create(client, guest, email="AMY@Example.COM")) == {("taken", "/data/attributes/email")}
    assert count_customers(session, account.live) == 1


def test_staff_registering_a_guest_customers_email_is_taken(client, guest, owner, session, account):
    """Staff convert the guest with a PATCH; a guest token's registration goes to a confirmation
    (tests/api/test_registration_confirmations.py)."""
    create(client, guest, email="roy@example.com")
    assert errors_of(create(client, owner, **REG)) == {("taken", "/data/attributes/email")}
    assert session.scalar(select(User).where(User.account_id == account.live.id)) is None


def test_updating_to_a_taken_email_is_422(client, guest, owner, register, session):
    customer, _ = register()
    create(client, guest, email="amy@example.com")
    response = update(client, owner, customer["id"], email="Amy@example.com")
    assert errors_of(response) == {("taken", "/data/attributes/email")}
    assert user_of(session, customer).email == "roy@example.com"


def test_updating_a_registered_customer_to_a_taken_code_is_422(client, guest, owner, register):
    customer, _ = register()
    create(client, guest, code="C-1")
    assert errors_of(update(client, owner, customer["id"], code="C-1")) == {
        ("taken", "/data/attributes/code")
    }


def test_code_is_unique_per_account(client, auth, guest, owner, other_account):
    amy = create(client, guest, code="C-1", email="amy@example.com").get_json()["data"]
    assert errors_of(create(client, guest, code="C-1")) == {("taken", "/data/attributes/code")}
    roy = create(client, guest, code="C-2").get_json()["data"]
    assert errors_of(update(client, owner, roy["id"], code="C-1")) == {("taken", "/data/attributes/code")}
    assert amy["attributes"]["code"] == "C-1"
    other_guest = auth.headers(auth.guest(other_account))
    assert create(client, other_guest, code="C-1").status_code == 201


def test_customers_without_email_or_code_do_not_collide(client, guest):
    for _ in range(3):
        assert create(client, guest, firstName="Anon").status_code == 201


def test_the_same_email_registers_in_another_account(client, auth, account, other_account, register):
    mine, _ = register()
    body = json.dumps(customer_document(**REG))
    other_guest = auth.headers(auth.guest(other_account))
    response = client.post("/v1/customers", data=body, content_type=MEDIA_TYPE, headers=other_guest)
    assert response.status_code == 201
    theirs = response.get_json()["data"]
    assert theirs["id"] != mine["id"]
    token = auth.login(other_account, "roy@example.com", "roy-password-1")["access_token"]
    assert client.get("/v1/customer", headers=auth.headers(token)).get_json()["data"]["id"] == theirs["id"]


# Look-alikes: emails and usernames are compared as people read them (freshcom_customers/identifiers.py)

SHARP_S = "stra\u00dfe@x.test"  # the address as typed; "strasse@x.test" is its canonical form


@pytest.mark.parametrize(("plain", "look_alike"), LOOK_ALIKES)
@pytest.mark.parametrize("look_alike_first", [False, True], ids=["plain-first", "look-alike-first"])
def test_a_look_alike_of_a_taken_email_is_taken(client, guest, register, plain, look_alike, look_alike_first):
    first, second = (look_alike, plain) if look_alike_first else (plain, look_alike)
    register(email=first)
    response = create(client, guest, **{**REG, "email": second})
    assert errors_of(response) == {("taken", "/data/attributes/email")}
    assert errors_of(create(client, guest, email=second)) == {("taken", "/data/attributes/email")}


@pytest.mark.parametrize(("plain", "look_alike"), LOOK_ALIKES)
def test_a_customer_logs_in_with_a_look_alike_of_its_email(auth, account, register, plain, look_alike):
    _, password = register(email=look_alike)
    assert auth.login(account, plain.upper(), password)["access_token"]
    assert auth.login(account, look_alike, password)["access_token"]


def test_the_email_is_shown_as_typed_and_the_username_is_canonical(client, owner, register, session):
    customer, _ = register(email="Stra\u00dfe@X.test")
    assert customer["attributes"]["email"] == SHARP_S
    assert read(client, owner, customer["id"]).get_json()["data"]["attributes"]["email"] == SHARP_S
    user = user_of(session, customer)
    assert (user.username, user.email, user.email_key) == ("strasse@x.test", SHARP_S, "strasse@x.test")
    assert session.get(Customer, uuid.UUID(customer["id"])).email_key == "strasse@x.test"


def test_filter_email_finds_a_look_alike(client, guest, owner):
    amy = create(client, guest, email=SHARP_S).get_json()["data"]
    create(client, guest, email="strasse@y.test")
    ids, meta = _newest_ids(client, owner, **{"filter[email]": " STRASSE@x.test"})
    assert ids == [amy["id"]]
    assert meta["totalCount"] == 1


def test_a_guest_is_found_by_a_look_alike_of_its_email(client, guest):
    amy = create(client, guest, code="A-1", email="\uff41\uff4d\uff59@x.test").get_json()["data"]
    found = client.get("/v1/customer", query_string={"code": "A-1", "email": "AMY@x.test"}, headers=guest)
    assert found.get_json()["data"]["id"] == amy["id"]


def test_updating_to_a_look_alike_of_another_customers_email_is_taken(client, guest, owner, register):
    customer, _ = register()
    create(client, guest, email="strasse@x.test")
    response = update(client, owner, customer["id"], email="STRA\u00dfE@x.test")
    assert errors_of(response) == {("taken", "/data/attributes/email")}


def test_a_username_that_was_a_look_alike_of_the_email_follows_it(client, guest, owner, register, session):
    customer, _ = register(email=SHARP_S)
    assert update(client, owner, customer["id"], email="ann@x.test").status_code == 200
    assert user_of(session, customer).username == "ann@x.test"
    assert create(client, guest, **{**REG, "email": "strasse@x.test"}).status_code == 201


def test_a_look_alike_of_the_own_email_is_a_new_address_for_the_same_login(client, owner, register, session):
    customer, _ = register(email="strasse@x.test")
    response = update(client, owner, customer["id"], email=SHARP_S)
    assert response.get_json()["data"]["attributes"]["email"] == SHARP_S
    assert response.get_json()["data"]["attributes"]["emailVerified"] is False
    assert user_of(session, customer).username == "strasse@x.test"


# Roles

ROUTES = ["create", "me", "list", "read", "update", "delete"]
# Expected status per role for each route in ROUTES, on a registered customer (Roy);
# "customer" is Roy himself. goods_specialist, like read_only, only reads customers.
# fmt: off
ROLE_MATRIX = {
    #                         new  me   list read edit del
    "anonymous":             (401, 401, 401, 401, 401, 401),
    "guest":                 (201, 404, 403, 403, 403, 403),
    "customer":              (403, 200, 403, 200, 200, 403),
    "read_only":             (403, 403, 200, 200, 403, 403),
    "goods_specialist":      (403, 403, 200, 200, 403, 403),
    "support_specialist":    (201, 403, 200, 200, 200, 204),
    "marketing_specialist":  (201, 403, 200, 200, 200, 204),
    "manager":               (201, 403, 200, 200, 200, 204),
    "developer":             (201, 403, 200, 200, 200, 204),
    "administrator":         (201, 403, 200, 200, 200, 204),
    "owner":                 (201, 403, 200, 200, 200, 204),
}
# fmt: on
# API.md 4: with a guest token GET /v1/customer is a lookup by code, 404 without a match.


def _role_cases():
    for role, statuses in ROLE_MATRIX.items():
        for route, status in zip(ROUTES, statuses, strict=True):
            yield pytest.param(role, route, status, id=f"{role}-{route}-{status}")


@pytest.mark.parametrize(("role", "route", "expected"), list(_role_cases()))
def test_role_matrix(client, register, owner, headers_as, role, route, expected):
    roy, _ = register()
    headers = headers_as(role)
    path = f"/v1/customers/{roy['id']}"
    response = {
        "create": lambda: create(client, headers, email="amy@example.com"),
        "me": lambda: client.get("/v1/customer", headers=headers),
        "list": lambda: client.get("/v1/customers", headers=headers),
        "read": lambda: client.get(path, headers=headers),
        "update": lambda: update(client, headers, roy["id"], label="vip"),
        "delete": lambda: client.delete(path, headers=headers),
    }[route]()
    assert response.status_code == expected, response.get_data(as_text=True)

    after = read(client, owner, roy["id"])
    if expected == 401:
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="freshcom"'
    elif expected == 403:
        assert response.get_json()["errors"][0]["code"] == "access_denied"
    elif expected == 404:
        assert response.get_json()["errors"][0]["code"] == "not_found"
    elif route in ("me", "read"):
        assert response.get_json()["data"]["id"] == roy["id"]
    elif route == "list":
        assert [c["id"] for c in response.get_json()["data"]] == [roy["id"]]
    elif route == "create":
        assert response.get_json()["data"]["attributes"]["email"] == "amy@example.com"
    elif route == "update":
        assert after.get_json()["data"]["attributes"]["label"] == "vip"
    if route == "delete":
        assert after.status_code == (404 if expected == 204 else 200)
    elif route == "update" and expected != 200:
        assert after.get_json()["data"]["attributes"]["label"] is None


def test_managed_staff_users_get_tokens_with_their_role(auth, account, session):
    from freshcom_customers.services import access_tokens

    users.create_managed_user(account.live, username="reader", password="reader-password", role="read_only")
    session.commit()
    token = auth.login(account, "reader", "reader-password")
    principal = access_tokens.authenticate(token["access_token"])
    assert (principal.role, principal.customer_id) == ("read_only", None)
    assert principal.account.id == account.live.id


# Tenancy


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
def test_another_accounts_customer_is_404_never_403(client, auth, owner, other_account, register, method):
    roy, _ = register()
    theirs = auth.headers(auth.owner(other_account))
    response = {
        "GET": lambda: read(client, theirs, roy["id"]),
        "PATCH": lambda: update(client, theirs, roy["id"], label="theirs"),
        "DELETE": lambda: client.delete(f"/v1/customers/{roy['id']}", headers=theirs),
    }[method]()
    assert error_code(response, 404) == "not_found"
    mine = read(client, owner, roy["id"])
    assert mine.status_code == 200
    assert mine.get_json()["data"]["attributes"]["label"] is None


def test_a_customer_of_another_account_cannot_see_ours(client, auth, account, other_account, register):
    roy, _ = register()
    other_guest = auth.headers(auth.guest(other_account))
    create(client, other_guest, **REG)
    theirs = auth.headers(auth.login(other_account, "roy@example.com", "roy-password-1")["access_token"])
    assert error_code(read(client, theirs, roy["id"]), 404) == "not_found"
    assert error_code(update(client, theirs, roy["id"], label="x"), 404) == "not_found"


def _test_mode_owner(auth, account) -> dict:
    """The owner's test-mode headers: their live URT refreshed with the twin's scope."""
    live = auth.token(grant_type="password", username=account.owner.username, password=account.owner_password)
    test = auth.token(
        grant_type="refresh_token", refresh_token=live["refresh_token"], scope=f"aid:{account.test.id}"
    )
    assert test["refresh_token"].startswith("urt-test-")
    return auth.headers(test["access_token"])


def test_test_twin_data_is_separate_from_live(client, auth, account, owner, register):
    live_roy, _ = register()
    test_guest = auth.headers(
        auth.token(grant_type="refresh_token", refresh_token=account.test_prt)["access_token"]
    )
    # The same email is free in the twin: it is another account.
    response = create(client, test_guest, **REG)
    assert response.status_code == 201
    test_roy = response.get_json()["data"]

    assert error_code(read(client, owner, test_roy["id"]), 404) == "not_found"
    assert _newest_ids(client, owner)[0] == [live_roy["id"]]

    test_owner = _test_mode_owner(auth, account)
    assert read(client, test_owner, test_roy["id"]).status_code == 200
    assert error_code(read(client, test_owner, live_roy["id"]), 404) == "not_found"
    only_roy = {"totalCount": 1, "allCount": 1, "totalCountExact": True}
    assert _newest_ids(client, test_owner) == ([test_roy["id"]], only_roy)


def test_a_test_mode_customer_logs_in_with_the_twins_scope(client, auth, account):
    test_guest = auth.headers(
        auth.token(grant_type="refresh_token", refresh_token=account.test_prt)["access_token"]
    )
    test_roy = create(client, test_guest, **REG).get_json()["data"]
    token = auth.token(
        grant_type="password",
        username="roy@example.com",
        password="roy-password-1",
        scope=f"aid:{account.test.id}",
    )
    assert token["refresh_token"].startswith("urt-test-")
    me = client.get("/v1/customer", headers=auth.headers(token["access_token"]))
    assert me.get_json()["data"]["id"] == test_roy["id"]
    # Not registered in live: the live scope knows no such user.
    assert password_grant(auth, account)["error"] == "invalid_grant"


def test_a_callers_document_is_rendered_once_for_each_script_root_and_a_large_one_each_time(app, monkeypatch):
    account = factories.account()
    alice = factories.customer(account, status="registered")
    rendered = []
    render = customers_api._document
    monkeypatch.setattr(customers_api, "_document", lambda c, keys: rendered.append(c) or render(c, keys))
    memo = {}
    principal = Principal(account, "customer", alice.user, customer=alice, memo=memo)
    for root in ("", "", "/shop", "/shop"):
        with app.test_request_context("/v1/customer", base_url=f"http://localhost{root}/"):
            answer = customers_api._kept_document(principal)
            assert answer.get_data() == render(alice, set()).get_data()
            assert answer.mimetype == "application/vnd.api+json"
    assert len(rendered) == 2 and len(memo) == 2  # once for each script root
    monkeypatch.setattr(customers_api, "MOST_KEPT_BYTES", 100)
    memo.clear()
    for _ in range(2):
        with app.test_request_context("/v1/customer"):
            customers_api._kept_document(principal)
    assert len(rendered) == 4 and memo == {}  # too large to keep: rendered each time
    with app.test_request_context("/v1/customer?include=user"):
        assert customers_api._kept_document(principal) is None  # a query: the view renders it
