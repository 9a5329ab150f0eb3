"""The token's account on /v1/account and its publishable key on /v1/refresh_token."""

import pytest

from freshcom_customers.models import STAFF_ROLES
from freshcom_customers.services import users

ROLES = ("anonymous", "guest", "customer", *STAFF_ROLES)
KEY_READERS = {"developer", "administrator", "owner"}


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
            _, password = register()
            return auth.headers(auth.login(account, "roy@example.com", password)["access_token"])
        users.create_managed_user(account.live, username=role, password=f"{role}-password", role=role)
        session.commit()
        return auth.headers(auth.login(account, role, f"{role}-password")["access_token"])

    return as_role


def test_anyone_with_a_token_reads_the_account(client, account, as_role):
    response = client.get("/v1/account", headers=as_role("guest"))
    assert response.status_code == 200
    assert response.mimetype == "application/vnd.api+json"
    data = response.get_json()["data"]
    assert (data["id"], data["type"]) == (str(account.live.id), "Account")
    attributes = data["attributes"]
    assert set(attributes) == {"name", "handle", "mode", "testAccountId", "defaultLocale", "insertedAt"}
    assert (attributes["name"], attributes["handle"], attributes["mode"]) == ("Acme", "acme", "live")
    assert attributes["testAccountId"] == str(account.test.id)
    assert attributes["defaultLocale"] == "en"
    assert attributes["insertedAt"].endswith("Z")


def test_a_test_token_reads_the_test_twin(client, auth, account):
    token = auth.token(grant_type="refresh_token", refresh_token=account.test_prt)["access_token"]
    data = client.get("/v1/account", headers=auth.headers(token)).get_json()["data"]
    assert data["id"] == str(account.test.id)
    assert (data["attributes"]["mode"], data["attributes"]["testAccountId"]) == ("test", None)


def test_each_token_reads_its_own_account(client, auth, account, other_account):
    data = client.get("/v1/account", headers=auth.headers(auth.guest(other_account))).get_json()["data"]
    assert (data["id"], data["attributes"]["handle"]) == (str(other_account.live.id), "globex")


@pytest.mark.parametrize("role", ROLES)
def test_account_role_matrix(client, as_role, role):
    response = client.get("/v1/account", headers=as_role(role))
    assert response.status_code == (401 if role == "anonymous" else 200), response.get_json()


def test_anonymous_gets_a_bearer_challenge(client):
    response = client.get("/v1/account")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.get_json()["errors"][0]["code"] == "unauthorized"


def test_an_invalid_token_is_401(client, auth):
    response = client.get("/v1/account", headers=auth.headers("not-a-jwt"))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_developer_reads_the_publishable_key(client, account, as_role):
    response = client.get("/v1/refresh_token", headers=as_role("developer"))
    assert response.status_code == 200
    data = response.get_json()["data"]
    assert data["type"] == "RefreshToken"
    assert data["attributes"] == {"prefixedId": account.prt}
    assert data["id"] == account.prt.removeprefix("prt-live-")
    assert data["relationships"]["account"] == {"data": {"type": "Account", "id": str(account.live.id)}}


def test_the_publishable_key_exchanges_for_a_guest_token(client, auth, as_role):
    prt = client.get("/v1/refresh_token", headers=as_role("owner")).get_json()["data"]["attributes"]
    assert auth.token(grant_type="refresh_token", refresh_token=prt["prefixedId"])["access_token"]


def test_a_test_token_reads_the_test_key(client, auth, account):
    owner = auth.token(
        grant_type="password", username=account.owner.username, password=account.owner_password
    )
    test = auth.token(
        grant_type="refresh_token", refresh_token=owner["refresh_token"], scope=f"aid:{account.test.id}"
    )
    response = client.get("/v1/refresh_token", headers=auth.headers(test["access_token"]))
    assert response.get_json()["data"]["attributes"]["prefixedId"] == account.test_prt
    assert account.test_prt.startswith("prt-test-")


@pytest.mark.parametrize("role", ROLES)
def test_refresh_token_role_matrix(client, as_role, role):
    response = client.get("/v1/refresh_token", headers=as_role(role))
    expected = 401 if role == "anonymous" else 200 if role in KEY_READERS else 403
    assert response.status_code == expected, response.get_json()
    if expected == 403:
        assert response.get_json()["errors"][0]["code"] == "access_denied"
