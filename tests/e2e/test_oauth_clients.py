"""Off-the-shelf OAuth2 clients log a customer in, refresh and read, against real gunicorn; and,
as a back office's machine client (API.md 12), get client_credentials tokens and read with them."""

import uuid
from dataclasses import dataclass
from urllib.parse import parse_qs

import pytest
import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session as AuthlibSession
from oauthlib.oauth2 import BackendApplicationClient, LegacyApplicationClient, OAuth2Error
from requests_oauthlib import OAuth2Session

pytestmark = pytest.mark.e2e

PASSWORD = "shopper-password-1"


@dataclass
class Storefront:
    account_id: str
    publishable_key: str
    client_id: str

    @property
    def scope(self) -> str:
        return f"aid:{self.account_id}"


@pytest.fixture(scope="module")
def storefront(server) -> Storefront:
    """A fresh account from the CLI, with a public client of its own."""
    account = server.create_account()["account"]
    return Storefront(account["id"], account["publishableKey"], server.create_client(account["id"]))


@pytest.fixture
def customer(server, storefront) -> dict:
    """A customer registered over HTTP with a guest token; its JSON:API resource."""
    response = server.register_customer(
        server.guest_token(storefront.publishable_key),
        status="registered",
        firstName="Roy",
        lastName="Bao",
        email=f"roy-{uuid.uuid4().hex[:12]}@example.com",
        password=PASSWORD,
    )
    assert response.status_code == 201, response.text
    return response.json()["data"]


def test_requests_oauthlib_legacy_application_client(server, storefront, customer, monkeypatch):
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # plain http to 127.0.0.1
    # Not OAUTHLIB_RELAX_TOKEN_SCOPE: oauthlib raises a Warning when the granted scope differs
    # from the session's, so these calls also check that the server echoes aid:<id> unchanged.
    scope = [storefront.scope]
    token_url = server.url("/v1/token")
    email = customer["attributes"]["email"]
    client = LegacyApplicationClient(client_id=storefront.client_id)
    with OAuth2Session(client=client, scope=scope) as session:
        # A public client: client_id in the body, else the library sends Basic "client_id:".
        token = session.fetch_token(
            token_url, username=email, password=PASSWORD, include_client_id=True, scope=scope
        )
        assert token["refresh_token"].startswith("urt-live-")
        assert token["scope"] == scope

        # refresh_token sends the session scope itself, and no client auth unless asked to.
        refreshed = session.refresh_token(token_url, client_id=storefront.client_id)
        assert refreshed["refresh_token"].startswith("urt-live-")
        assert refreshed["refresh_token"] != token["refresh_token"]
        assert refreshed["access_token"] != token["access_token"]

        response = session.get(server.url("/v1/customer"))
        assert response.status_code == 200, response.text
        assert response.json()["data"]["id"] == customer["id"]
        assert response.json()["data"]["attributes"]["email"] == email

        # The rotated token is spent: presented again, it is refused.
        spent = token["refresh_token"]
        assert refresh_error(session, token_url, spent, client_id=storefront.client_id) == "invalid_grant"


def test_authlib_oauth2_session(server, storefront, customer):
    token_url = server.url("/v1/token")
    email = customer["attributes"]["email"]
    with AuthlibSession(client_id=storefront.client_id, scope=storefront.scope) as session:
        token = session.fetch_token(token_url, username=email, password=PASSWORD)
        assert token["refresh_token"].startswith("urt-live-")
        assert token["scope"] == storefront.scope

        refreshed = session.refresh_token(token_url, refresh_token=token["refresh_token"])
        assert refreshed["refresh_token"].startswith("urt-live-")
        assert refreshed["refresh_token"] != token["refresh_token"]
        assert session.token["access_token"] == refreshed["access_token"] != token["access_token"]

        response = session.get(server.url("/v1/customer"))
        assert response.status_code == 200, response.text
        assert response.json()["data"]["id"] == customer["id"]
        assert response.json()["data"]["attributes"]["email"] == email

        # The rotated token is spent. Presented again a moment later, as a client's concurrent
        # refresh would, it is refused without ending the session (the reuse grace window).
        assert refresh_error(session, token_url, token["refresh_token"]) == "invalid_grant"
        assert refresh_error(session, token_url, refreshed["refresh_token"]) is None


def test_authlib_oauth2_session_logs_out_with_revoke_token(server, storefront, customer):
    email = customer["attributes"]["email"]
    with AuthlibSession(client_id=storefront.client_id, scope=storefront.scope) as session:
        token = session.fetch_token(server.url("/v1/token"), username=email, password=PASSWORD)
        assert session.get(server.url("/v1/customer")).status_code == 200

        # A public client: the library sends client_id in the body (auth method none).
        response = session.revoke_token(
            server.url("/v1/token/revoke"), token=token["refresh_token"], token_type_hint="refresh_token"
        )
        assert response.status_code == 200, response.text
        assert response.headers["Cache-Control"] == "no-store"

        # Logged out: the refresh token and the access token of the session both stop at once.
        response = session.get(server.url("/v1/customer"))
        assert response.status_code == 401, response.text
        assert refresh_error(session, server.url("/v1/token"), token["refresh_token"]) == "invalid_grant"


def test_authlib_oauth2_session_introspects_as_a_confidential_client(server, storefront, customer):
    backend = server.flask(
        "clients", "create", "--account", storefront.account_id, "--name", "Backend", "--confidential"
    )
    email = customer["attributes"]["email"]
    with AuthlibSession(client_id=storefront.client_id, scope=storefront.scope) as shopper:
        token = shopper.fetch_token(server.url("/v1/token"), username=email, password=PASSWORD)
    with AuthlibSession(client_id=backend["clientId"], client_secret=backend["clientSecret"]) as session:
        url = server.url("/v1/token/introspect")
        answer = session.introspect_token(url, token=token["access_token"]).json()
        assert answer["active"] is True
        assert (answer["username"], answer["client_id"]) == (email, storefront.client_id)
        # A confidential client may revoke only its own tokens: the storefront's stays.
        response = session.revoke_token(server.url("/v1/token/revoke"), token=token["refresh_token"])
        assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")
        assert session.introspect_token(url, token=token["refresh_token"]).json()["active"] is True


@dataclass
class Shop:
    """An account and its test twin, each with a customer of its own."""

    account_id: str
    test_account_id: str
    customer_id: str
    test_customer_id: str


@pytest.fixture(scope="module")
def shop(server) -> Shop:
    created = server.create_account()
    customer_ids = []
    for twin in (created["account"], created["testAccount"]):
        response = server.register_customer(
            server.guest_token(twin["publishableKey"]),
            status="registered",
            firstName="Ada",
            lastName="Okafor",
            email=f"ada-{uuid.uuid4().hex[:12]}@example.com",
            password=PASSWORD,
        )
        assert response.status_code == 201, response.text
        customer_ids.append(response.json()["data"]["id"])
    return Shop(created["account"]["id"], created["testAccount"]["id"], *customer_ids)


@pytest.fixture
def reader(server, shop) -> dict:
    """A new machine client of the shop's account with the read_only role: the CLI's JSON."""
    return server.create_machine_client(shop.account_id, "read_only", name="Reporting")


class Exchanges(list):
    """The requests a session sent and the answers it got, as (request, response) pairs."""

    def __init__(self, session):
        super().__init__()
        session.hooks["response"].append(self.record)

    def record(self, response, *args, **kwargs):
        self.append((response.request, response))

    @property
    def last(self):
        return self[-1]


@pytest.mark.parametrize("auth_method", ["client_secret_basic", "client_secret_post"])
def test_authlib_client_credentials(server, shop, reader, auth_method):
    client_id, secret = reader["clientId"], reader["clientSecret"]
    with AuthlibSession(client_id, secret, token_endpoint_auth_method=auth_method) as session:
        exchanges = Exchanges(session)
        token = session.fetch_token(server.url("/v1/token"), grant_type="client_credentials")
        request, _ = exchanges.last
        form = parse_qs(request.body)
        if auth_method == "client_secret_basic":
            assert request.headers["Authorization"].startswith("Basic ")
            assert "client_secret" not in form
        else:
            assert "Authorization" not in request.headers
            assert (form["client_id"], form["client_secret"]) == ([client_id], [secret])
        assert form["grant_type"] == ["client_credentials"]

        assert token["token_type"] == "bearer"
        assert token["scope"] == f"aid:{shop.account_id}"
        assert token["expires_in"] > 0
        assert "refresh_token" not in token

        # A staff route takes it by its role: the live account's customers, not the test twin's.
        listed = ids_listed(session.get(server.url("/v1/customers")))
        assert shop.customer_id in listed
        assert shop.test_customer_id not in listed

        # read_only reads, but may not create a customer; and a machine is no user.
        response = session.post(
            server.url("/v1/customers"),
            json={"data": {"type": "Customer", "attributes": {"status": "guest", "firstName": "No"}}},
            headers={"Content-Type": "application/vnd.api+json"},
        )
        assert response.status_code == 403, response.text
        assert session.get(server.url("/v1/user")).status_code == 403


@pytest.mark.parametrize("include_client_id", [None, True], ids=["basic", "post"])
def test_requests_oauthlib_backend_application_client(server, shop, monkeypatch, include_client_id):
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # plain http to 127.0.0.1
    manager = server.create_machine_client(shop.account_id, "support_specialist", name="CRM sync")
    client_id, secret = manager["clientId"], manager["clientSecret"]
    with OAuth2Session(client=BackendApplicationClient(client_id=client_id)) as session:
        exchanges = Exchanges(session)
        # As the library's documentation shows it. By default it sends HTTP Basic with the id
        # and secret (client_secret_basic); include_client_id=True puts both in the body instead
        # (client_secret_post).
        token = session.fetch_token(
            server.url("/v1/token"),
            client_id=client_id,
            client_secret=secret,
            include_client_id=include_client_id,
        )
        request, _ = exchanges.last
        form = parse_qs(request.body)
        if include_client_id:
            assert "Authorization" not in request.headers
            assert (form["client_id"], form["client_secret"]) == ([client_id], [secret])
        else:
            assert request.headers["Authorization"].startswith("Basic ")
            assert "client_secret" not in form and "client_id" not in form
        assert form["grant_type"] == ["client_credentials"]
        assert token["scope"] == [f"aid:{shop.account_id}"]
        assert "refresh_token" not in token

        assert shop.customer_id in ids_listed(session.get(server.url("/v1/customers")))

        # A customer manager's role writes too.
        email = f"crm-{uuid.uuid4().hex[:12]}@example.com"
        attributes = {"status": "guest", "firstName": "Imported", "lastName": "Lead", "email": email}
        response = session.post(
            server.url("/v1/customers"),
            json={"data": {"type": "Customer", "attributes": attributes}},
            headers={"Content-Type": "application/vnd.api+json"},
        )
        assert response.status_code == 201, response.text
        created = response.json()["data"]["id"]
        assert created in ids_listed(session.get(server.url("/v1/customers"), params={"page[size]": 100}))


def test_authlib_client_credentials_for_the_test_twin(server, shop, reader):
    scope = f"aid:{shop.test_account_id}"
    client_id, secret = reader["clientId"], reader["clientSecret"]
    with AuthlibSession(client_id, secret, scope=scope) as session:
        token = session.fetch_token(server.url("/v1/token"), grant_type="client_credentials")
        assert token["scope"] == scope

        response = session.get(server.url("/v1/account"))
        assert response.status_code == 200, response.text
        account = response.json()["data"]
        assert (account["id"], account["attributes"]["mode"]) == (shop.test_account_id, "test")

        listed = ids_listed(session.get(server.url("/v1/customers")))
        assert shop.test_customer_id in listed
        assert shop.customer_id not in listed

    # An account that is neither the client's nor its test twin: no token.
    with AuthlibSession(client_id, secret, scope=f"aid:{uuid.uuid4()}") as session:
        error = token_error(
            lambda: session.fetch_token(server.url("/v1/token"), grant_type="client_credentials")
        )
        assert error == "invalid_grant"


def test_authlib_revoke_token_ends_the_clients_tokens(server, shop, reader):
    client_id, secret = reader["clientId"], reader["clientSecret"]
    token_url, revoke_url = server.url("/v1/token"), server.url("/v1/token/revoke")
    customers_url = server.url("/v1/customers")
    with AuthlibSession(client_id, secret) as session, AuthlibSession(client_id, secret) as other:
        token = session.fetch_token(token_url, grant_type="client_credentials")
        other.fetch_token(token_url, grant_type="client_credentials")
        assert session.get(customers_url).status_code == other.get(customers_url).status_code == 200

        # No one else may revoke them: not a request that names no client, not another client.
        response = requests.post(revoke_url, data={"token": token["access_token"]}, timeout=10)
        assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")
        stranger = server.create_machine_client(shop.account_id, "read_only", name="Stranger")
        response = requests.post(
            revoke_url,
            data={"token": token["access_token"]},
            auth=(stranger["clientId"], stranger["clientSecret"]),
            timeout=10,
        )
        assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")
        assert session.get(customers_url).status_code == 200

        # Its own client revokes it (client_secret_basic, the library's default with a secret).
        response = session.revoke_token(
            revoke_url, token=token["access_token"], token_type_hint="access_token"
        )
        assert response.status_code == 200, response.text
        assert response.headers["Cache-Control"] == "no-store"

        # Every token of the client stops at once, not only the one named.
        for revoked in (session, other):
            response = revoked.get(customers_url)
            assert response.status_code == 401, response.text
            assert response.headers["WWW-Authenticate"].startswith("Bearer")

        # The client itself stays: its secret gets a new token, which reads.
        session.fetch_token(token_url, grant_type="client_credentials")
        assert session.get(customers_url).status_code == 200


def test_a_wrong_secret_is_invalid_client(server, shop, reader, monkeypatch):
    token_url = server.url("/v1/token")
    client_id, wrong = reader["clientId"], reader["clientSecret"][::-1]

    for auth_method in ("client_secret_basic", "client_secret_post"):
        with AuthlibSession(client_id, wrong, token_endpoint_auth_method=auth_method) as session:
            exchanges = Exchanges(session)
            error = token_error(lambda: session.fetch_token(token_url, grant_type="client_credentials"))
            _, response = exchanges.last
            assert (error, response.status_code) == ("invalid_client", 401), auth_method
            assert response.headers["Cache-Control"] == "no-store"
            if auth_method == "client_secret_basic":
                assert response.headers["WWW-Authenticate"].startswith("Basic")

    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    with OAuth2Session(client=BackendApplicationClient(client_id=client_id)) as session:
        exchanges = Exchanges(session)
        error = token_error(lambda: session.fetch_token(token_url, client_id=client_id, client_secret=wrong))
        _, response = exchanges.last
        assert (error, response.status_code) == ("invalid_client", 401)


def test_only_a_confidential_client_with_a_role_gets_client_credentials(server, shop, storefront):
    token_url = server.url("/v1/token")
    # A public client has no secret to prove: invalid_client, as a wrong secret.
    with AuthlibSession(storefront.client_id, token_endpoint_auth_method="none") as session:
        exchanges = Exchanges(session)
        error = token_error(lambda: session.fetch_token(token_url, grant_type="client_credentials"))
        assert (error, exchanges.last[1].status_code) == ("invalid_client", 401)

    # A confidential client without a role (an introspecting backend) may not use the grant.
    backend = server.flask(
        "clients", "create", "--account", shop.account_id, "--name", "Backend", "--confidential"
    )
    with AuthlibSession(backend["clientId"], backend["clientSecret"]) as session:
        exchanges = Exchanges(session)
        error = token_error(lambda: session.fetch_token(token_url, grant_type="client_credentials"))
        assert (error, exchanges.last[1].status_code) == ("unauthorized_client", 400)


def ids_listed(response) -> set[str]:
    """The ids of a JSON:API collection answered 200."""
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/vnd.api+json")
    data = response.json()["data"]
    assert all(resource["type"] == "Customer" for resource in data)
    return {resource["id"] for resource in data}


def token_error(fetch) -> str | None:
    """Call fetch (a client library's token request); return the OAuth2 error code it raised, or
    None. Not pytest.raises, for the reason refresh_error gives."""
    try:
        fetch()
    except (OAuth2Error, OAuthError) as error:
        return error.error
    return None


def refresh_error(session, token_url, refresh_token, **params) -> str | None:
    """Refresh with the client library; return the OAuth2 error code it raised, or None.

    Not pytest.raises: its traceback would keep the library's response, and so its
    keep-alive connection, open until a garbage collection, and gunicorn's graceful
    shutdown waits for that connection.
    """
    try:
        session.refresh_token(token_url, refresh_token=refresh_token, **params)
    except (OAuth2Error, OAuthError) as error:
        return error.error
    return None
