"""Off-the-shelf OAuth2 clients log a customer in, refresh and read, against real gunicorn."""

import uuid
from dataclasses import dataclass

import pytest
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session as AuthlibSession
from oauthlib.oauth2 import LegacyApplicationClient, OAuth2Error
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
