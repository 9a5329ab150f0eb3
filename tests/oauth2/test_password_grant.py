"""The password grant: managed users with an aid: scope, standard users without."""

import pytest

from freshcom_customers.oauth2.scopes import GENERIC_FAILURE
from freshcom_customers.services import access_tokens
from tests.conftest import create_client
from tests.statements import beginnings, statements


def test_customer_logs_in_with_account_scope(client, auth, account, register):
    customer, password = register()
    token = auth.login(account, "roy@example.com", password)
    assert token["token_type"] == "bearer"
    assert token["expires_in"] == 3600
    assert token["refresh_token"].startswith("urt-live-")
    assert token["scope"] == f"aid:{account.live.id}"
    principal = access_tokens.authenticate(token["access_token"])
    assert principal.role == "customer"
    assert str(principal.customer_id) == customer["id"]


def test_a_customers_login_is_two_statements_on_postgresql(auth, account, register, session):
    """PostgreSQL: the account, the user, its customer and the default client in one statement,
    the refresh token, the session and the history line in another; SQLite: the general way,
    which reads the customer once for the history and the access token too (issue 18)."""
    customer, password = register()
    live_id = account.live.id
    with statements(session.get_bind()) as seen:
        token = auth.token(
            grant_type="password", username="roy@example.com", password=password, scope=f"aid:{live_id}"
        )
    assert access_tokens.decode(token["access_token"])["cid"] == customer["id"]
    run = beginnings(seen, 2)
    if session.get_bind().dialect.name == "postgresql":
        assert run == ["SELECT accounts.id,", "WITH token"]
    else:
        assert run.count("SELECT customers.account_id,") == 1


@pytest.mark.parametrize(
    "scope",
    ["aid:{id}", "account_id:{id}", "aid:acme", "aid:aid-live-{id}", "aid:{id},locale:en", "aid:{ID}"],
)
def test_every_scope_spelling_names_the_account(auth, account, register, scope):
    register()
    live_id = str(account.live.id)
    scope = scope.format(id=live_id, ID=live_id.upper())
    token = auth.token(
        grant_type="password", username="roy@example.com", password="roy-password-1", scope=scope
    )
    assert token["scope"] == f"aid:{live_id}"


@pytest.mark.parametrize("spelling", ["aid:aid-test-{id}", "aid:{id}", "account_id:{id}"])
def test_test_twin_scope_in_freshcom_docs_spelling(auth, account, session, spelling):
    from freshcom_customers.services import users

    users.create_managed_user(account.test, username="tester", password="tester-password", role="manager")
    session.commit()
    token = auth.token(
        grant_type="password",
        username="tester",
        password="tester-password",
        scope=spelling.format(id=account.test.id),
    )
    assert token["scope"] == f"aid:{account.test.id}"
    assert token["refresh_token"].startswith("urt-test-")
    assert access_tokens.authenticate(token["access_token"]).role == "manager"


def test_standard_user_logs_in_without_scope(auth, account):
    token = auth.token(grant_type="password", username="Owner@Acme.test", password=account.owner_password)
    principal = access_tokens.authenticate(token["access_token"])
    assert principal.role == "owner"
    assert principal.account.id == account.live.id
    assert token["scope"] == f"aid:{account.live.id}"


def test_customer_cannot_log_in_without_scope(auth, account, register):
    register()
    token = auth.token(
        expect=400, grant_type="password", username="roy@example.com", password="roy-password-1"
    )
    assert token == {"error": "invalid_grant", "error_description": GENERIC_FAILURE}


def test_json_body_and_stale_bearer_header_are_accepted(client, account, register):
    register()
    response = client.post(
        "/v1/token?locale=en",
        json={
            "grant_type": "password",
            "username": "roy@example.com",
            "password": "roy-password-1",
            "scope": f"aid:{account.live.id}",
        },
        headers={"Authorization": "Bearer expired.stale.token"},
    )
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"


def test_form_with_charset_is_accepted(client, account):
    response = client.post(
        "/v1/token",
        data=f"grant_type=password&username={account.owner.username}&password={account.owner_password}",
        content_type="application/x-www-form-urlencoded; charset=UTF-8",
    )
    assert response.status_code == 200


BAD_CREDENTIALS = [
    pytest.param({"password": "wrong-password"}, id="wrong password"),
    pytest.param({"username": "nobody@example.com"}, id="unknown user"),
    pytest.param({"scope": "aid:00000000-0000-0000-0000-000000000000"}, id="unknown account"),
    pytest.param({"scope": "aid:no-such-handle"}, id="unknown handle"),
    pytest.param({"scope": "aid:"}, id="empty account"),
    pytest.param({"scope": "locale:en"}, id="scope without account"),
    pytest.param({"scope": "aid:not a uuid"}, id="malformed account"),
    pytest.param({"scope": "aid:aid-test-zzz"}, id="malformed prefixed id"),
    pytest.param({"scope": "aid:{other}"}, id="another account"),
    pytest.param({"scope": "aid:{test}"}, id="test twin of a live user"),
    pytest.param(
        {"username": "ROY@example.com ", "password": "ROY-PASSWORD-1"}, id="password is case-sensitive"
    ),
    # Too long to hash: a wrong password, not a 500 that would say the user exists.
    pytest.param({"password": "x" * 4097}, id="password of 4097 characters"),
    pytest.param({"password": "é" * 2049}, id="password of 4098 bytes"),
    pytest.param({"password": "x" * 1_000_000}, id="password of a million characters"),
    pytest.param({"username": "nobody@example.com", "password": "x" * 4097}, id="unknown, too long"),
]


@pytest.mark.parametrize("change", BAD_CREDENTIALS)
def test_bad_credentials_all_give_one_generic_invalid_grant(auth, account, other_account, register, change):
    register()
    params = {
        "grant_type": "password",
        "username": "roy@example.com",
        "password": "roy-password-1",
        "scope": f"aid:{account.live.id}",
        **change,
    }
    params["scope"] = params["scope"].format(other=other_account.live.id, test=account.test.id)
    response = auth.client.post("/v1/token", data=params)
    assert response.status_code == 400
    assert response.get_json() == {"error": "invalid_grant", "error_description": GENERIC_FAILURE}
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"


def test_suspended_user_gets_the_same_invalid_grant(client, auth, account, register):
    customer, password = register()
    client.patch(
        f"/v1/customers/{customer['id']}",
        json={"data": {"type": "Customer", "attributes": {"status": "suspended"}}},
        headers=auth.headers(auth.owner(account)),
    )
    response = client.post(
        "/v1/token",
        data={
            "grant_type": "password",
            "username": "roy@example.com",
            "password": password,
            "scope": f"aid:{account.live.id}",
        },
    )
    assert response.get_json() == {"error": "invalid_grant", "error_description": GENERIC_FAILURE}


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"grant_type": "password", "password": "x"}, "invalid_request"),
        ({"grant_type": "password", "username": "x"}, "invalid_request"),
        ({"grant_type": "password", "username": "", "password": "x"}, "invalid_request"),
        ({"grant_type": "client_credentials"}, "invalid_client"),  # it names no client
        ({"grant_type": "authorization_code", "code": "x"}, "unsupported_grant_type"),
        ({}, "invalid_request"),
        ({"username": "x", "password": "y"}, "invalid_request"),
        ({"grant_type": "password", "username": "x", "password": "y", "client_id": "nope"}, "invalid_client"),
        (
            {
                "grant_type": "password",
                "username": "x",
                "password": "y",
                "client_id": "00000000-0000-0000-0000-000000000000",
            },
            "invalid_client",
        ),
    ],
)
def test_malformed_requests(client, params, error):
    response = client.post("/v1/token", data=params)
    assert response.status_code in (400, 401)
    assert response.get_json()["error"] == error
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("grant_type=password", "text/plain"),
        ('["grant_type", "password"]', "application/json"),
        ('{"grant_type": "password", "username": 5}', "application/json"),
        ("{not json", "application/json"),
        ("grant_type=password&grant_type=refresh_token", "application/x-www-form-urlencoded"),
    ],
)
def test_unreadable_bodies_are_invalid_request(client, body, content_type):
    response = client.post("/v1/token", data=body, content_type=content_type)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"
    assert response.headers["Pragma"] == "no-cache"


def test_unknown_user_costs_a_hash_verify_like_a_wrong_password(auth, account, monkeypatch):
    from freshcom_customers.services import passwords

    calls = []
    monkeypatch.setattr(passwords, "dummy_verify", lambda: calls.append("dummy"))
    auth.token(expect=400, grant_type="password", username="nobody@acme.test", password="whatever-1")
    auth.token(expect=400, grant_type="password", username="x", password="y", scope="aid:no-such-handle")
    assert calls == ["dummy", "dummy"]


def test_an_over_long_password_costs_one_verify_like_an_unknown_user(auth, account, register, monkeypatch):
    from freshcom_customers.services import passwords

    register()
    calls = []
    monkeypatch.setattr(passwords, "dummy_verify", lambda: calls.append("dummy"))
    scope = f"aid:{account.live.id}"
    for username in ("roy@example.com", "nobody@example.com"):
        auth.token(expect=400, grant_type="password", username=username, password="x" * 5000, scope=scope)
    assert calls == ["dummy", "dummy"]


def test_basic_auth_with_a_wrong_secret_is_401_invalid_client(client, runner, account):
    import base64

    client_id = create_client(runner, account, "Back office", "--confidential")["clientId"]
    basic = base64.b64encode(f"{client_id}:wrong".encode()).decode()
    response = client.post(
        "/v1/token",
        data={
            "grant_type": "password",
            "username": account.owner.username,
            "password": account.owner_password,
        },
        headers={"Authorization": f"Basic {basic}"},
    )
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_confidential_client_authenticates_with_basic_and_post(client, runner, account):
    import base64

    created = create_client(runner, account, "Back office", "--confidential")
    login = {"grant_type": "password", "username": account.owner.username, "password": account.owner_password}
    basic = base64.b64encode(f"{created['clientId']}:{created['clientSecret']}".encode()).decode()
    assert (
        client.post("/v1/token", data=login, headers={"Authorization": f"Basic {basic}"}).status_code == 200
    )
    post = {**login, "client_id": created["clientId"], "client_secret": created["clientSecret"]}
    assert client.post("/v1/token", data=post).status_code == 200
    # A confidential client may not pass itself off as public.
    public = {**login, "client_id": created["clientId"]}
    assert client.post("/v1/token", data=public).get_json()["error"] == "invalid_client"
