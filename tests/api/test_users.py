"""Users on /v1: create, the caller's own user, managed users by id, sync with customers, roles."""

import uuid

import pytest
from sqlalchemy import func, select

from freshcom_customers.models import STAFF_ROLES, Customer, Order, RefreshToken, User
from freshcom_customers.oauth2.scopes import GENERIC_FAILURE
from freshcom_customers.services import users
from tests.conftest import error_code, errors_of

MEDIA_TYPE = "application/vnd.api+json"
ATTRIBUTES = {
    "status",
    "username",
    "email",
    "name",
    "firstName",
    "lastName",
    "phoneNumber",
    "role",
    "emailVerified",
    "emailVerifiedAt",
    "authMethod",
    "pendingEmail",
    "insertedAt",
    "updatedAt",
}
ROLES = ("anonymous", "guest", "customer", *STAFF_ROLES)
MANAGERS = {"developer", "administrator", "owner"}
ROY, ROY_PASSWORD = "roy@example.com", "roy-password-1"
STAFF_USER = {"username": "Ann", "email": "ann@acme.test", "password": "ann-password-1", "role": "manager"}


def password_for(role: str) -> str:
    return f"{role}-password"


@pytest.fixture
def as_role(auth, account, register, session):
    """Headers for a caller of the account with the given role ({} for anonymous)."""

    def as_role(role):
        if role == "anonymous":
            return {}
        if role == "guest":
            return auth.headers(auth.guest(account))
        if role == "owner":
            return auth.headers(auth.owner(account))
        if role == "customer":
            register()
            return login(auth, account)
        users.create_managed_user(account.live, username=role, password=password_for(role), role=role)
        session.commit()
        return login(auth, account, role, password_for(role))

    return as_role


@pytest.fixture
def owner(as_role):
    return as_role("owner")


@pytest.fixture
def guest(as_role):
    return as_role("guest")


@pytest.fixture
def ann(client, owner) -> dict:
    """A managed staff user (manager) of the account, as the API returns it."""
    response = create(client, owner, **STAFF_USER)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["data"]


@pytest.fixture
def roy(client, guest) -> dict:
    """A customer user, created with a guest token."""
    response = create(client, guest, email=ROY, password=ROY_PASSWORD, firstName="Roy", lastName="Bao")
    assert response.status_code == 201, response.get_json()
    return response.get_json()["data"]


def login(auth, account, username=ROY, password=ROY_PASSWORD) -> dict:
    return auth.headers(auth.login(account, username, password)["access_token"])


def user_document(**attributes) -> dict:
    return {"data": {"type": "User", "attributes": attributes}}


def create(client, headers, **attributes):
    return client.post("/v1/users", json=user_document(**attributes), headers=headers)


def read(client, headers, user_id):
    return client.get(f"/v1/users/{user_id}", headers=headers)


def update(client, headers, user_id, **attributes):
    return client.patch(f"/v1/users/{user_id}", json=user_document(**attributes), headers=headers)


def update_me(client, headers, **attributes):
    return client.patch("/v1/user", json=user_document(**attributes), headers=headers)


def customer_of(session, user_id) -> Customer | None:
    return session.scalar(
        select(Customer)
        .where(Customer.user_id == uuid.UUID(str(user_id)))
        .execution_options(populate_existing=True)
    )


def count_users(session, account) -> int:
    return session.scalar(select(func.count()).select_from(User).where(User.account_id == account.id))


def refresh(auth, refresh_token, expect=200):
    return auth.token(expect=expect, grant_type="refresh_token", refresh_token=refresh_token)


def password_grant_fails(auth, account, username, password):
    response = auth.token(
        expect=400,
        grant_type="password",
        username=username,
        password=password,
        scope=f"aid:{account.live.id}",
    )
    return response == {"error": "invalid_grant", "error_description": GENERIC_FAILURE}


# Create


def test_staff_create_a_managed_staff_user(client, auth, account, owner, session):
    response = create(client, owner, **STAFF_USER, firstName="Ann", lastName="Lee", phoneNumber="555-0100")
    assert response.status_code == 201, response.get_json()
    assert response.mimetype == MEDIA_TYPE
    data = response.get_json()["data"]
    assert response.headers["Location"].endswith(f"/v1/users/{data['id']}")
    assert data["type"] == "User"
    assert set(data["attributes"]) == ATTRIBUTES
    assert data["attributes"] | {"insertedAt": None, "updatedAt": None} == {
        "status": "active",
        "username": "ann",
        "email": "ann@acme.test",
        "name": "Ann Lee",
        "firstName": "Ann",
        "lastName": "Lee",
        "phoneNumber": "555-0100",
        "role": "manager",
        "emailVerified": False,
        "emailVerifiedAt": None,
        "authMethod": "simple",
        "pendingEmail": None,
        "insertedAt": None,
        "updatedAt": None,
    }
    assert data["relationships"] == {"account": {"data": {"type": "Account", "id": str(account.live.id)}}}
    user = session.get(User, uuid.UUID(data["id"]))
    assert user.password_hash.startswith("$argon2id$")
    me = client.get("/v1/user", headers=login(auth, account, "ANN", "ann-password-1")).get_json()["data"]
    assert (me["id"], me["attributes"]["role"]) == (data["id"], "manager")


def test_the_username_defaults_to_the_email(client, auth, account, owner):
    response = create(client, owner, email="Bo@Acme.test", password="bo-password-1", role="read_only")
    assert response.get_json()["data"]["attributes"]["username"] == "bo@acme.test"
    assert login(auth, account, "bo@acme.test", "bo-password-1")


@pytest.mark.parametrize(
    ("sent", "stored"), [("supportSpecialist", "support_specialist"), ("read_only", "read_only")]
)
def test_roles_are_accepted_camel_or_snake_cased(client, owner, sent, stored):
    response = create(client, owner, **{**STAFF_USER, "role": sent})
    assert response.get_json()["data"]["attributes"]["role"] == stored


def test_a_guest_creates_a_customer_user_and_its_customer(client, auth, account, guest, session):
    response = create(
        client,
        guest,
        email="Roy@Example.com",
        password=ROY_PASSWORD,
        firstName="Roy",
        lastName="Bao",
        phoneNumber="1",
    )
    assert response.status_code == 201, response.get_json()
    data = response.get_json()["data"]
    assert (data["attributes"]["role"], data["attributes"]["username"]) == ("customer", ROY)
    customer = customer_of(session, data["id"])
    assert customer.account_id == account.live.id
    assert (customer.status, customer.email, customer.name, customer.phone_number) == (
        "registered",
        ROY,
        "Roy Bao",
        "1",
    )
    headers = login(auth, account)
    assert client.get("/v1/customer", headers=headers).get_json()["data"]["id"] == str(customer.id)
    assert client.get("/v1/user", headers=headers).get_json()["data"]["id"] == data["id"]


def test_a_guest_may_name_the_customer_role(client, guest):
    response = create(client, guest, email=ROY, password=ROY_PASSWORD, role="customer", status="active")
    assert response.status_code == 201


@pytest.mark.parametrize(
    "attributes", [{"role": "administrator"}, {"role": "owner"}, {"status": "suspended"}]
)
def test_a_guest_creates_nothing_but_active_customer_users(client, guest, session, account, attributes):
    response = create(client, guest, email=ROY, password=ROY_PASSWORD, **attributes)
    assert error_code(response, 403) == "access_denied"
    assert count_users(session, account.live) == 0


@pytest.mark.parametrize("role", ["customer", "owner"])
def test_staff_grant_only_staff_roles_below_owner(client, owner, session, account, role):
    response = create(client, owner, **{**STAFF_USER, "role": role})
    assert errors_of(response) == {("inclusion", "/data/attributes/role")}
    assert count_users(session, account.live) == 0


@pytest.mark.parametrize(
    ("creator", "role", "status"),
    [
        ("developer", "developer", 201),
        ("developer", "administrator", 403),
        ("administrator", "administrator", 201),
        ("owner", "administrator", 201),
    ],
)
def test_no_one_grants_a_role_above_their_own(client, as_role, creator, role, status):
    response = create(client, as_role(creator), **{**STAFF_USER, "role": role})
    assert response.status_code == status, response.get_json()


def test_anonymous_cannot_create_users(client, session, account):
    # Freshcom let anyone sign up a standard user; accounts are made by the CLI here.
    response = client.post("/v1/users", json=user_document(**STAFF_USER))
    assert error_code(response, 401) == "unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("role", ROLES)
def test_create_role_matrix(client, as_role, role):
    headers = as_role(role)
    attributes = {"email": "amy@example.com", "password": "amy-password-1"}
    if role != "guest":
        attributes["role"] = "read_only"
    response = create(client, headers, **attributes)
    expected = 401 if role == "anonymous" else 201 if role in MANAGERS | {"guest"} else 403
    assert response.status_code == expected, response.get_json()


STAFF_ERRORS = [
    pytest.param({"role": None}, {("required", "role")}, id="null role"),
    pytest.param({"role": "janitor"}, {("inclusion", "role")}, id="unknown role"),
    pytest.param({"password": None}, {("required", "password")}, id="null password"),
    pytest.param({"password": "seven77"}, {("length", "password")}, id="password of 7"),
    pytest.param({"password": "x" * 129}, {("length", "password")}, id="password of 129"),
    pytest.param({"password": "password"}, {("invalid", "password")}, id="common password"),
    pytest.param({"username": "ab"}, {("length", "username")}, id="short username"),
    pytest.param({"username": None}, {("required", "username")}, id="null username"),
    pytest.param({"email": "ann@"}, {("format", "email")}, id="bad email"),
    pytest.param({"status": "deleted"}, {("inclusion", "status")}, id="unknown status"),
    pytest.param({"first_name": "x" * 256}, {("length", "firstName")}, id="long snake_case first name"),
    pytest.param({"phoneNumber": "1" * 33}, {("length", "phoneNumber")}, id="long phone number"),
    pytest.param({"name": 5}, {("invalid", "name")}, id="name not a string"),
]


@pytest.mark.parametrize(("attributes", "expected"), STAFF_ERRORS)
def test_create_staff_validation(client, owner, session, account, attributes, expected):
    response = create(client, owner, **{**STAFF_USER, **attributes})
    assert errors_of(response) == {(code, f"/data/attributes/{field}") for code, field in expected}
    assert count_users(session, account.live) == 0


def test_a_staff_user_needs_role_password_and_a_username_or_email(client, owner):
    assert errors_of(create(client, owner, name="Ann")) == {
        ("required", "/data/attributes/role"),
        ("required", "/data/attributes/password"),
        ("required", "/data/attributes/username"),
    }


CUSTOMER_ERRORS = [
    pytest.param({}, {("required", "email"), ("required", "password")}, id="nothing"),
    pytest.param({"email": ROY}, {("required", "password")}, id="no password"),
    pytest.param({"password": ROY_PASSWORD, "username": "roy"}, {("required", "email")}, id="no email"),
    pytest.param({"email": ROY, "password": "short"}, {("length", "password")}, id="short password"),
    pytest.param({"email": ROY, "password": "qwertyuiop"}, {("invalid", "password")}, id="common password"),
]


@pytest.mark.parametrize(("attributes", "expected"), CUSTOMER_ERRORS)
def test_create_customer_user_validation(client, guest, session, account, attributes, expected):
    response = create(client, guest, **attributes)
    assert errors_of(response) == {(code, f"/data/attributes/{field}") for code, field in expected}
    assert count_users(session, account.live) == 0
    assert session.scalar(select(func.count()).select_from(Customer)) == 0


def test_a_failed_customer_user_writes_neither_row(client, guest, roy, session, account):
    response = create(client, guest, email="ray@example.com", username=ROY, password=ROY_PASSWORD)
    assert errors_of(response) == {("taken", "/data/attributes/username")}
    assert count_users(session, account.live) == 1
    assert session.scalar(select(Customer).where(Customer.email == "ray@example.com")) is None


@pytest.mark.parametrize(
    ("attributes", "field"),
    [
        ({"username": "ANN", "email": "ann2@acme.test"}, "username"),
        ({"username": "ann2", "email": "ANN@acme.test"}, "email"),
        ({"username": None, "email": "ann"}, "email"),
        # Compared as people read them: a fullwidth letter is the plain one.
        ({"username": "\uff41nn", "email": "ann2@acme.test"}, "username"),
        ({"username": "ann2", "email": "ANN@\uff41cme.test"}, "email"),
    ],
)
def test_usernames_and_emails_are_unique_in_the_account(
    client, owner, ann, session, account, attributes, field
):
    attributes = {**STAFF_USER, **attributes}
    if attributes["username"] is None:
        del attributes["username"]
        attributes["email"] = "ann@example.com"
        create(client, owner, **{**STAFF_USER, "username": "ann@example.com", "email": "other@acme.test"})
    response = create(client, owner, **attributes)
    assert errors_of(response) == {("taken", f"/data/attributes/{field}")}


def test_staff_and_customer_users_share_the_accounts_emails(client, owner, roy):
    assert errors_of(create(client, owner, **{**STAFF_USER, "email": ROY})) == {
        ("taken", "/data/attributes/email")
    }


def test_the_same_username_in_another_account_is_fine(client, auth, ann, other_account):
    response = create(client, auth.headers(auth.owner(other_account)), **STAFF_USER)
    assert response.status_code == 201


# The caller's own user


def test_a_customer_reads_its_user(client, auth, account, roy):
    response = client.get("/v1/user", headers=login(auth, account))
    assert response.status_code == 200
    data = response.get_json()["data"]
    assert data == {**roy, "attributes": {**roy["attributes"]}}
    assert set(data["attributes"]) == ATTRIBUTES


def test_a_standard_user_reads_itself_with_its_role_in_the_account(client, account, owner):
    data = client.get("/v1/user", headers=owner).get_json()["data"]
    assert data["id"] == str(account.owner.id)
    assert (data["attributes"]["username"], data["attributes"]["role"]) == ("owner@acme.test", "owner")
    assert data["relationships"]["account"] == {"data": None}


@pytest.mark.parametrize("role", ROLES)
def test_read_own_user_role_matrix(client, as_role, role):
    response = client.get("/v1/user", headers=as_role(role))
    expected = {"anonymous": 401, "guest": 403}.get(role, 200)
    assert response.status_code == expected, response.get_json()
    if expected == 200:
        assert response.get_json()["data"]["attributes"]["role"] == role


@pytest.mark.parametrize("role", ROLES)
def test_update_own_user_role_matrix(client, as_role, role):
    response = update_me(client, as_role(role), phoneNumber="555-0199")
    expected = {"anonymous": 401, "guest": 403}.get(role, 200)
    assert response.status_code == expected, response.get_json()
    if expected == 200:
        assert response.get_json()["data"]["attributes"]["phoneNumber"] == "555-0199"


def test_a_customer_updates_its_user_and_the_customer_follows(client, auth, account, roy, session, mailbox):
    headers = login(auth, account)
    response = update_me(
        client,
        headers,
        email="Ray@Example.com",
        currentPassword=ROY_PASSWORD,
        firstName="Ray",
        phoneNumber="555-0100",
    )
    assert response.status_code == 200, response.get_json()
    attributes = response.get_json()["data"]["attributes"]
    # The new email waits for its link (tests/api/test_email_changes.py); the rest is done.
    assert (attributes["email"], attributes["pendingEmail"], attributes["username"], attributes["name"]) == (
        ROY,
        "ray@example.com",
        ROY,
        "Ray Bao",
    )
    customer = customer_of(session, roy["id"])
    assert (customer.email, customer.first_name, customer.name, customer.phone_number) == (
        ROY,
        "Ray",
        "Ray Bao",
        "555-0100",
    )


def test_a_staff_users_username_follows_its_email(client, auth, account, owner):
    bo = create(client, owner, email="bo@acme.test", password="bo-password-1", role="manager").get_json()[
        "data"
    ]
    response = update(client, owner, bo["id"], email="bob@acme.test")
    assert response.get_json()["data"]["attributes"]["username"] == "bob@acme.test"
    assert login(auth, account, "bob@acme.test", "bo-password-1")


def test_the_sdk_may_send_its_whole_user_back(client, auth, account, roy):
    headers = login(auth, account)
    me = client.get("/v1/user", headers=headers).get_json()["data"]
    response = client.patch(
        "/v1/user", json={"data": {**me, "attributes": {**me["attributes"], "name": "R"}}}, headers=headers
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["data"]["attributes"]["name"] == "R"


@pytest.mark.parametrize(
    ("role", "attributes"),
    [
        ("customer", {"status": "suspended"}),
        ("customer", {"role": "manager"}),
        ("manager", {"role": "administrator"}),
    ],
)
def test_no_one_changes_their_own_role_or_status(client, as_role, role, attributes):
    headers = as_role(role)
    assert error_code(update_me(client, headers, **attributes), 403) == "access_denied"
    assert client.get("/v1/user", headers=headers).get_json()["data"]["attributes"]["role"] == role


def test_a_taken_email_on_the_own_user_is_422(client, auth, account, guest, roy):
    create(client, guest, email="amy@example.com", password="amy-password-1")
    response = update_me(client, login(auth, account), email="amy@example.com", currentPassword=ROY_PASSWORD)
    assert errors_of(response) == {("taken", "/data/attributes/email")}


# Changing the own password


PASSWORD_ERRORS = [
    pytest.param({"password": "new-password-1"}, {("invalid", "currentPassword")}, id="no current password"),
    pytest.param(
        {"password": "new-password-1", "currentPassword": None},
        {("invalid", "currentPassword")},
        id="null current",
    ),
    pytest.param(
        {"password": "new-password-1", "currentPassword": "wrong-password"},
        {("invalid", "currentPassword")},
        id="wrong current password",
    ),
    pytest.param(
        {"password": "new-password-1", "current_password": ROY_PASSWORD.upper()},
        {("invalid", "currentPassword")},
        id="current password is case-sensitive",
    ),
    pytest.param(
        {"password": "short", "currentPassword": ROY_PASSWORD}, {("length", "password")}, id="too short"
    ),
    pytest.param(
        {"password": "password1", "currentPassword": ROY_PASSWORD}, {("invalid", "password")}, id="common"
    ),
    pytest.param({"password": None, "currentPassword": ROY_PASSWORD}, {("required", "password")}, id="null"),
]


@pytest.mark.parametrize(("attributes", "expected"), PASSWORD_ERRORS)
def test_password_change_validation(client, auth, account, roy, attributes, expected):
    tokens = auth.login(account, ROY, ROY_PASSWORD)
    response = update_me(client, auth.headers(tokens["access_token"]), **attributes, phoneNumber="555-0100")
    assert errors_of(response) == {(code, f"/data/attributes/{field}") for code, field in expected}
    # Nothing changed: the old password, the refresh token and the profile are as they were.
    assert refresh(auth, tokens["refresh_token"])["access_token"]
    assert (
        client.get("/v1/customer", headers=login(auth, account)).get_json()["data"]["attributes"][
            "phoneNumber"
        ]
        is None
    )


def test_a_password_change_ends_the_other_sessions_and_keeps_this_one(client, auth, account, roy, session):
    this = auth.login(account, ROY, ROY_PASSWORD)
    other = auth.login(account, ROY, ROY_PASSWORD)
    headers = auth.headers(this["access_token"])
    response = update_me(client, headers, password="new-password-1", currentPassword=ROY_PASSWORD)
    assert response.status_code == 200, response.get_json()
    assert set(response.get_json()["data"]["attributes"]) == ATTRIBUTES

    # The other session ends at once, its access token included.
    assert refresh(auth, other["refresh_token"], expect=400)["error"] == "invalid_grant"
    assert client.get("/v1/user", headers=auth.headers(other["access_token"])).status_code == 401
    # The caller's session, named by its access token, goes on.
    assert client.get("/v1/user", headers=headers).status_code == 200
    assert refresh(auth, this["refresh_token"])["access_token"]
    assert password_grant_fails(auth, account, ROY, ROY_PASSWORD)
    assert login(auth, account, ROY, "new-password-1")
    live = select(RefreshToken.family_id).where(
        RefreshToken.user_id == uuid.UUID(roy["id"]), RefreshToken.revoked_at.is_(None)
    )
    # This session's family (its rotated and newest tokens) and the new login's.
    assert len(set(session.scalars(live).all())) == 2


def test_a_standard_user_changes_its_password(client, auth, account, owner):
    response = update_me(client, owner, password="new-owner-password", currentPassword=account.owner_password)
    assert response.status_code == 200, response.get_json()
    token = auth.token(grant_type="password", username="owner@acme.test", password="new-owner-password")
    assert token["access_token"]


def test_a_password_change_with_a_taken_email_changes_nothing(client, auth, account, guest, roy):
    create(client, guest, email="amy@example.com", password="amy-password-1")
    headers = login(auth, account)
    response = update_me(
        client, headers, password="new-password-1", currentPassword=ROY_PASSWORD, email="amy@example.com"
    )
    assert errors_of(response) == {("taken", "/data/attributes/email")}
    assert login(auth, account, ROY, ROY_PASSWORD)


# Managed users by id


@pytest.mark.parametrize("role", ROLES)
def test_read_user_role_matrix(client, as_role, ann, role):
    response = read(client, as_role(role), ann["id"])
    expected = 401 if role == "anonymous" else 200 if role in MANAGERS else 403
    assert response.status_code == expected, response.get_json()
    if expected == 200:
        assert response.get_json()["data"] == ann | {"attributes": response.get_json()["data"]["attributes"]}


@pytest.mark.parametrize("role", ROLES)
def test_update_user_role_matrix(client, as_role, ann, role):
    response = update(client, as_role(role), ann["id"], phoneNumber="555-0101")
    expected = 401 if role == "anonymous" else 200 if role in MANAGERS else 403
    assert response.status_code == expected, response.get_json()


@pytest.mark.parametrize("role", ROLES)
def test_delete_user_role_matrix(client, as_role, ann, owner, role):
    response = client.delete(f"/v1/users/{ann['id']}", headers=as_role(role))
    expected = 401 if role == "anonymous" else 204 if role in MANAGERS else 403
    assert response.status_code == expected, response.get_json()
    assert read(client, owner, ann["id"]).status_code == (404 if expected == 204 else 200)


@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_another_accounts_staff_get_404(client, auth, other_account, ann, method):
    headers = auth.headers(auth.owner(other_account))
    response = getattr(client, method)(
        f"/v1/users/{ann['id']}", json=user_document(name="x"), headers=headers
    )
    assert error_code(response, 404) == "not_found"


@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_a_test_token_does_not_reach_live_users(client, auth, account, ann, method):
    owner = auth.token(
        grant_type="password", username=account.owner.username, password=account.owner_password
    )
    test = auth.token(
        grant_type="refresh_token", refresh_token=owner["refresh_token"], scope=f"aid:{account.test.id}"
    )
    assert test["scope"] == f"aid:{account.test.id}"
    response = getattr(client, method)(
        f"/v1/users/{ann['id']}", json=user_document(name="x"), headers=auth.headers(test["access_token"])
    )
    assert error_code(response, 404) == "not_found"


@pytest.mark.parametrize("user_id", ["owner", str(uuid.uuid4()), "not-a-uuid"])
@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_standard_and_unknown_users_are_404(client, account, owner, user_id, method):
    user_id = str(account.owner.id) if user_id == "owner" else user_id
    response = getattr(client, method)(f"/v1/users/{user_id}", json=user_document(name="x"), headers=owner)
    assert error_code(response, 404) == "not_found"


def test_staff_read_a_customer_user(client, owner, roy):
    data = read(client, owner, roy["id"]).get_json()["data"]
    assert (data["attributes"]["role"], data["attributes"]["email"]) == ("customer", ROY)


def test_staff_update_a_staff_users_profile(client, owner, ann):
    response = update(client, owner, ann["id"], firstName="Ann", lastName="Lee", username="ann.lee")
    assert response.status_code == 200, response.get_json()
    attributes = response.get_json()["data"]["attributes"]
    assert (attributes["name"], attributes["username"], attributes["email"]) == (
        "Ann Lee",
        "ann.lee",
        "ann@acme.test",
    )


def test_a_role_change_ends_the_users_access_tokens(client, auth, account, owner, ann):
    tokens = auth.login(account, "ann", "ann-password-1")
    response = update(client, owner, ann["id"], role="support_specialist")
    assert response.get_json()["data"]["attributes"]["role"] == "support_specialist"
    assert client.get("/v1/user", headers=auth.headers(tokens["access_token"])).status_code == 401
    # The refresh token lives on and gives a token with the new role.
    renewed = refresh(auth, tokens["refresh_token"])
    me = client.get("/v1/user", headers=auth.headers(renewed["access_token"])).get_json()["data"]
    assert me["attributes"]["role"] == "support_specialist"


def test_an_unchanged_role_keeps_the_access_tokens(client, auth, account, owner, ann):
    tokens = auth.login(account, "ann", "ann-password-1")
    assert update(client, owner, ann["id"], role="manager", name="Ann").status_code == 200
    assert client.get("/v1/user", headers=auth.headers(tokens["access_token"])).status_code == 200


def test_suspending_a_staff_user_locks_it_out(client, auth, account, owner, ann, session):
    tokens = auth.login(account, "ann", "ann-password-1")
    response = update(client, owner, ann["id"], status="suspended")
    assert response.get_json()["data"]["attributes"]["status"] == "suspended"
    assert client.get("/v1/user", headers=auth.headers(tokens["access_token"])).status_code == 401
    assert refresh(auth, tokens["refresh_token"], expect=400)["error"] == "invalid_grant"
    assert password_grant_fails(auth, account, "ann", "ann-password-1")

    assert (
        update(client, owner, ann["id"], status="active").get_json()["data"]["attributes"]["status"]
        == "active"
    )
    assert client.get("/v1/user", headers=auth.headers(tokens["access_token"])).status_code == 401
    assert client.get("/v1/user", headers=login(auth, account, "ann", "ann-password-1")).status_code == 200


UPDATE_ERRORS = [
    pytest.param({"role": "customer"}, {("inclusion", "role")}, id="staff to customer"),
    pytest.param({"role": "owner"}, {("inclusion", "role")}, id="to owner"),
    pytest.param({"role": "boss"}, {("inclusion", "role")}, id="unknown role"),
    pytest.param({"status": "gone"}, {("inclusion", "status")}, id="unknown status"),
    pytest.param({"status": None}, {("required", "status")}, id="null status"),
    pytest.param({"password": "new-password-1"}, {("invalid", "password")}, id="password not set by staff"),
    pytest.param({"username": "ab"}, {("length", "username")}, id="short username"),
    pytest.param({"email": "nope"}, {("format", "email")}, id="bad email"),
]


@pytest.mark.parametrize(("attributes", "expected"), UPDATE_ERRORS)
def test_update_validation(client, auth, account, owner, ann, attributes, expected):
    response = update(client, owner, ann["id"], **attributes, name="Changed")
    assert errors_of(response) == {(code, f"/data/attributes/{field}") for code, field in expected}
    after = read(client, owner, ann["id"]).get_json()["data"]["attributes"]
    assert (after["role"], after["status"], after["name"]) == ("manager", "active", None)
    assert login(auth, account, "ann", "ann-password-1")


def test_a_taken_username_on_update_is_422(client, owner, ann, roy):
    assert errors_of(update(client, owner, ann["id"], username=ROY)) == {
        ("taken", "/data/attributes/username")
    }


def test_a_taken_email_with_a_suspension_is_422_and_changes_nothing(client, auth, account, owner, ann, roy):
    response = update(client, owner, ann["id"], email=ROY, status="suspended")
    assert errors_of(response) == {("taken", "/data/attributes/email")}
    assert read(client, owner, ann["id"]).get_json()["data"]["attributes"]["status"] == "active"
    assert login(auth, account, "ann", "ann-password-1")


@pytest.mark.parametrize(
    ("role", "target_role", "attributes", "expected"),
    [
        ("developer", "administrator", {"name": "x"}, 403),
        ("developer", "manager", {"role": "administrator"}, 403),
        ("developer", "manager", {"role": "developer"}, 200),
        ("administrator", "developer", {"role": "administrator"}, 200),
        ("administrator", "administrator", {"status": "suspended"}, 200),
    ],
)
def test_no_one_manages_or_grants_above_their_role(
    client, as_role, owner, role, target_role, attributes, expected
):
    target = create(client, owner, **{**STAFF_USER, "role": target_role}).get_json()["data"]
    response = update(client, as_role(role), target["id"], **attributes)
    assert response.status_code == expected, response.get_json()


def test_a_developer_cannot_delete_an_administrator(client, as_role, owner):
    target = create(client, owner, **{**STAFF_USER, "role": "administrator"}).get_json()["data"]
    response = client.delete(f"/v1/users/{target['id']}", headers=as_role("developer"))
    assert error_code(response, 403) == "access_denied"


def test_a_data_id_other_than_the_url_is_409(client, owner, ann):
    body = {"data": {"type": "User", "id": str(uuid.uuid4()), "attributes": {"name": "x"}}}
    response = client.patch(f"/v1/users/{ann['id']}", json=body, headers=owner)
    assert error_code(response, 409) == "id_mismatch"


def test_a_wrong_type_is_409(client, owner, ann):
    body = {"data": {"type": "Customer", "attributes": {"name": "x"}}}
    assert (
        error_code(client.patch(f"/v1/users/{ann['id']}", json=body, headers=owner), 409) == "type_mismatch"
    )


def test_deleting_a_staff_user_ends_its_sessions_and_frees_its_username(
    client, auth, account, owner, ann, session
):
    tokens = auth.login(account, "ann", "ann-password-1")
    response = client.delete(f"/v1/users/{ann['id']}", headers=owner)
    assert response.status_code == 204
    assert response.get_data() == b""
    assert client.get("/v1/user", headers=auth.headers(tokens["access_token"])).status_code == 401
    assert refresh(auth, tokens["refresh_token"], expect=400)["error"] == "invalid_grant"
    session.expire_all()
    assert session.get(User, uuid.UUID(ann["id"])) is None
    assert create(client, owner, **STAFF_USER).status_code == 201


# Sync with the customer, both ways


def test_suspending_a_customer_user_suspends_its_customer(client, auth, account, owner, roy, session):
    tokens = auth.login(account, ROY, ROY_PASSWORD)
    response = update(client, owner, roy["id"], status="suspended")
    assert response.status_code == 200, response.get_json()
    assert customer_of(session, roy["id"]).status == "suspended"
    assert client.get("/v1/customer", headers=auth.headers(tokens["access_token"])).status_code == 401
    assert refresh(auth, tokens["refresh_token"], expect=400)["error"] == "invalid_grant"
    assert password_grant_fails(auth, account, ROY, ROY_PASSWORD)

    assert update(client, owner, roy["id"], status="active").status_code == 200
    assert customer_of(session, roy["id"]).status == "registered"
    assert client.get("/v1/customer", headers=login(auth, account)).status_code == 200


def test_suspending_a_customer_suspends_its_user(client, owner, roy, session):
    customer = customer_of(session, roy["id"])
    body = {"data": {"type": "Customer", "attributes": {"status": "suspended"}}}
    assert client.patch(f"/v1/customers/{customer.id}", json=body, headers=owner).status_code == 200
    assert read(client, owner, roy["id"]).get_json()["data"]["attributes"]["status"] == "suspended"


def test_a_customer_users_profile_is_copied_to_its_customer(client, auth, account, owner, roy, session):
    response = update(
        client, owner, roy["id"], email="Ray@example.com", phoneNumber="555", name="Ray B.", lastName="B."
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["data"]["attributes"]["username"] == "ray@example.com"
    customer = customer_of(session, roy["id"])
    assert (
        customer.email,
        customer.phone_number,
        customer.name,
        customer.first_name,
        customer.last_name,
    ) == (
        "ray@example.com",
        "555",
        "Ray B.",
        "Roy",
        "B.",
    )
    assert login(auth, account, "ray@example.com", ROY_PASSWORD)


def test_a_customers_profile_is_copied_to_its_user(client, owner, roy, session):
    customer = customer_of(session, roy["id"])
    body = {"data": {"type": "Customer", "attributes": {"firstName": "Ray", "phoneNumber": "555"}}}
    assert client.patch(f"/v1/customers/{customer.id}", json=body, headers=owner).status_code == 200
    attributes = read(client, owner, roy["id"]).get_json()["data"]["attributes"]
    assert (attributes["firstName"], attributes["name"], attributes["phoneNumber"]) == (
        "Ray",
        "Ray Bao",
        "555",
    )


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"role": "manager"}, {("invalid", "role")}),
        ({"email": None}, {("required", "email")}),
        ({"email": "amy@example.com"}, {("taken", "email")}),
        ({"email": "amy@example.com", "status": "suspended"}, {("taken", "email")}),
    ],
)
def test_customer_user_update_validation(client, guest, owner, roy, session, attributes, expected):
    create(client, guest, email="amy@example.com", password="amy-password-1")
    response = update(client, owner, roy["id"], **attributes)
    assert errors_of(response) == {(code, f"/data/attributes/{field}") for code, field in expected}
    customer = customer_of(session, roy["id"])
    assert (customer.email, customer.status, customer.user.role) == (ROY, "registered", "customer")


def test_deleting_a_customer_user_deletes_its_customer_and_keeps_its_orders(
    client, owner, roy, session, account
):
    customer = customer_of(session, roy["id"])
    order = Order(account_id=account.live.id, customer_id=customer.id, currency="CAD")
    session.add(order)
    session.commit()
    customer_id, order_id = customer.id, order.id

    assert client.delete(f"/v1/users/{roy['id']}", headers=owner).status_code == 204
    session.expire_all()
    assert session.get(Customer, customer_id) is None
    assert session.get(User, uuid.UUID(roy["id"])) is None
    kept = session.get(Order, order_id)
    assert (kept.customer_id, kept.email) == (None, ROY)


def test_deleting_a_customer_deletes_its_user(client, owner, roy, session):
    customer = customer_of(session, roy["id"])
    assert client.delete(f"/v1/customers/{customer.id}", headers=owner).status_code == 204
    assert error_code(read(client, owner, roy["id"]), 404) == "not_found"


def test_a_test_guest_creates_a_customer_user_of_the_test_twin(client, auth, account, session):
    guest = auth.headers(
        auth.token(grant_type="refresh_token", refresh_token=account.test_prt)["access_token"]
    )
    response = create(client, guest, email=ROY, password=ROY_PASSWORD)
    assert response.status_code == 201, response.get_json()
    data = response.get_json()["data"]
    assert data["relationships"]["account"]["data"]["id"] == str(account.test.id)
    assert customer_of(session, data["id"]).account_id == account.test.id
    assert count_users(session, account.live) == 0


LONG_EMAIL = "x" * 64 + "@" + ".".join(["y" * 60, "y" * 60, "y" * 59]) + ".example"  # 254 characters


@pytest.mark.parametrize(("creator", "role"), [("guest", "customer"), ("owner", "manager")])
def test_the_longest_email_can_be_the_username(client, auth, as_role, session, account, creator, role):
    attributes = {"email": LONG_EMAIL, "password": "amy-password-1", "role": role}
    assert create(client, as_role(creator), **attributes).status_code == 201
    token = auth.login(account, LONG_EMAIL, "amy-password-1")
    assert token["token_type"] == "bearer"


def test_the_username_follows_the_longest_email(client, auth, account, owner, roy):
    assert update(client, owner, roy["id"], email=LONG_EMAIL).status_code == 200
    assert auth.login(account, LONG_EMAIL, ROY_PASSWORD)["token_type"] == "bearer"
