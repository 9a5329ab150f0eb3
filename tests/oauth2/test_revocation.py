"""POST /v1/token/revoke (RFC 7009): logout ends the refresh token family and its access tokens."""

import logging

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from freshcom_customers.services import access_tokens
from tests.conftest import create_client
from tests.oauth2.conftest import (
    PASSWORD,
    USERNAME,
    assert_invalid_grant,
    assert_no_store,
    basic,
    refresh,
    stored,
)

REVOKE = "/v1/token/revoke"


def revoke(client, token: str, headers=None, **params):
    return client.post(REVOKE, data={"token": token, **params}, headers=headers or {})


def assert_revoked(response):
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {}
    assert_no_store(response)


def assert_error(response, status: int, error: str):
    assert response.status_code == status, response.get_json()
    assert response.get_json()["error"] == error
    assert_no_store(response)


def me(client, access_token: str):
    return client.get("/v1/user", headers={"Authorization": f"Bearer {access_token}"})


@pytest.fixture
def login(auth, account, customer):
    """Log the customer in, through a named client or the default one; return the token response."""

    def login(client_id: str | None = None, headers=None):
        params = {"client_id": client_id} if client_id else {}
        response = auth.client.post(
            "/v1/token",
            data={
                "grant_type": "password",
                "username": USERNAME,
                "password": PASSWORD,
                "scope": f"aid:{account.live.id}",
                **params,
            },
            headers=headers or {},
        )
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    return login


# Logout by a public client


@pytest.mark.parametrize("named", [False, True], ids=["no client_id (default client)", "client_id"])
def test_revoking_a_urt_ends_the_session(client, account, login, named):
    session = login()
    default_client_id = access_tokens.decode(session["access_token"])["client_id"]
    params = {"client_id": default_client_id} if named else {}
    assert me(client, session["access_token"]).status_code == 200

    assert_revoked(revoke(client, session["refresh_token"], **params))
    assert_invalid_grant(refresh(client, session["refresh_token"]))
    # The access tokens of the session die at once, not when they expire.
    response = me(client, session["access_token"])
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_revoking_ends_only_that_session(client, login):
    phone, laptop = login(), login()
    assert_revoked(revoke(client, phone["refresh_token"]))
    assert refresh(client, laptop["refresh_token"]).status_code == 200
    assert me(client, laptop["access_token"]).status_code == 200


def test_revoking_a_rotated_urt_revokes_the_newest_token_of_its_family(client, session, login):
    first = login()["refresh_token"]
    newest = refresh(client, first).get_json()
    assert_revoked(revoke(client, first))
    assert_invalid_grant(refresh(client, newest["refresh_token"]))
    assert me(client, newest["access_token"]).status_code == 401
    assert stored(session, newest["refresh_token"]).revoked_at is not None


def test_revoking_an_access_token_revokes_its_refresh_token_family(client, login):
    session = login()
    assert_revoked(revoke(client, session["access_token"], token_type_hint="access_token"))
    assert me(client, session["access_token"]).status_code == 401
    assert_invalid_grant(refresh(client, session["refresh_token"]))


@pytest.mark.parametrize("hint", ["access_token", "refresh_token", "bogus"])
def test_the_type_hint_is_ignored(client, login, hint):
    session = login()
    assert_revoked(revoke(client, session["refresh_token"], token_type_hint=hint))
    assert_invalid_grant(refresh(client, session["refresh_token"]))


def test_a_json_body_is_accepted(client, login):
    session = login()
    response = client.post(REVOKE, json={"token": session["refresh_token"]})
    assert_revoked(response)
    assert_invalid_grant(refresh(client, session["refresh_token"]))


@pytest.mark.parametrize(
    ("body", "content_type"),
    [("token=x", "text/plain"), ("[1]", "application/json"), ('{"token": 1}', "application/json")],
)
def test_a_body_that_is_not_a_form_or_a_json_object_of_strings_is_invalid_request(client, body, content_type):
    response = client.post(REVOKE, data=body, content_type=content_type)
    assert_error(response, 400, "invalid_request")


def test_a_revocation_is_a_security_event_without_the_token(client, login, caplog):
    session = login()
    family_id = access_tokens.decode(session["access_token"])["fid"]
    with caplog.at_level(logging.WARNING, logger="freshcom_customers.security"):
        assert_revoked(revoke(client, session["refresh_token"]))
    (event,) = [r for r in caplog.records if getattr(r, "security_event", None) == "token_revoked"]
    assert event.fields["family_id"] == family_id
    assert event.fields["kind"] == "refresh_token"
    assert session["refresh_token"] not in repr(event.__dict__)


# Tokens that are not there to revoke: 200, as RFC 7009 2.2 says


@pytest.mark.parametrize(
    "token",
    [
        "urt-live-unknown",
        "prt-live-00000000-0000-0000-0000-000000000000",
        "not-a-token",
        "eyJhbGciOiJub25lIn0.e30.",
    ],
)
def test_an_unknown_token_is_200(client, token):
    assert_revoked(revoke(client, token))


def test_an_expired_access_token_is_200_and_changes_nothing(client, account, login):
    session = login()
    claims = access_tokens.decode(session["access_token"])
    expired = _resigned(claims | {"exp": claims["iat"] - 1})
    assert_revoked(revoke(client, expired))
    assert refresh(client, session["refresh_token"]).status_code == 200


def test_a_token_signed_by_another_key_is_200_and_changes_nothing(client, login):
    session = login()
    forged = _resigned(access_tokens.decode(session["access_token"]), RSAKey.generate_key(2048))
    assert_revoked(revoke(client, forged))
    assert refresh(client, session["refresh_token"]).status_code == 200


def test_revoking_twice_is_200_both_times(client, login):
    session = login()
    assert_revoked(revoke(client, session["refresh_token"]))
    assert_revoked(revoke(client, session["refresh_token"]))


# Another client's token (RFC 7009 2.1: the server verifies the token was issued to the client)


@pytest.mark.parametrize(
    ("login_with", "revoke_with"),
    [
        pytest.param(None, "other", id="default client's token, other client named"),
        pytest.param("other", None, id="other client's token, no client named"),
        pytest.param(None, "foreign", id="another account's client"),
    ],
)
def test_another_clients_token_is_invalid_grant_and_stays(
    client, runner, account, other_account, login, login_with, revoke_with
):
    clients = {
        None: None,
        "other": create_client(runner, account, "Other")["clientId"],
        "foreign": create_client(runner, other_account, "Foreign")["clientId"],
    }
    session = login(clients[login_with])
    params = {"client_id": clients[revoke_with]} if revoke_with else {}
    assert_error(revoke(client, session["refresh_token"], **params), 400, "invalid_grant")
    assert_error(revoke(client, session["access_token"], **params), 400, "invalid_grant")
    own = {"client_id": clients[login_with]} if login_with else {}
    assert refresh(client, session["refresh_token"], **own).status_code == 200


def test_an_unknown_client_is_invalid_client(client, login):
    session = login()
    response = revoke(client, session["refresh_token"], client_id="00000000-0000-0000-0000-000000000000")
    assert_error(response, 400, "invalid_client")
    assert refresh(client, session["refresh_token"]).status_code == 200


# Confidential clients authenticate


@pytest.fixture
def confidential(runner, account) -> dict:
    return create_client(runner, account, "Backend", "--confidential")


def test_a_confidential_client_revokes_with_basic_or_post(client, login, confidential):
    client_id, secret = confidential["clientId"], confidential["clientSecret"]
    with_basic = login(headers=basic(client_id, secret))
    assert_revoked(revoke(client, with_basic["refresh_token"], headers=basic(client_id, secret)))
    assert_invalid_grant(
        refresh(client, with_basic["refresh_token"], client_id=client_id, client_secret=secret)
    )

    with_post = login(headers=basic(client_id, secret))
    assert_revoked(revoke(client, with_post["refresh_token"], client_id=client_id, client_secret=secret))
    assert me(client, with_post["access_token"]).status_code == 401


@pytest.mark.parametrize("credentials", ["no secret", "wrong secret in body", "wrong secret in basic"])
def test_a_confidential_client_that_does_not_authenticate_is_invalid_client(
    client, login, confidential, credentials
):
    client_id, secret = confidential["clientId"], confidential["clientSecret"]
    session = login(headers=basic(client_id, secret))
    params, headers = {
        "no secret": ({"client_id": client_id}, None),
        "wrong secret in body": ({"client_id": client_id, "client_secret": "wrong"}, None),
        "wrong secret in basic": ({}, basic(client_id, "wrong")),
    }[credentials]
    response = revoke(client, session["refresh_token"], headers=headers, **params)
    assert_error(response, 401, "invalid_client")
    assert response.headers["WWW-Authenticate"].startswith("Basic ")
    assert me(client, session["access_token"]).status_code == 200


# What cannot be revoked, and malformed requests


def test_a_publishable_key_cannot_be_revoked(client, auth, account):
    assert_error(revoke(client, account.prt), 400, "unsupported_token_type")
    assert_error(revoke(client, auth.guest(account)), 400, "unsupported_token_type")
    assert auth.guest(account)


@pytest.mark.parametrize("data", [{}, {"token": ""}, {"token_type_hint": "refresh_token"}])
def test_a_missing_token_is_invalid_request(client, data):
    assert_error(client.post(REVOKE, data=data), 400, "invalid_request")


def test_a_repeated_token_is_invalid_request(client, login):
    session = login()
    response = client.post(REVOKE, data={"token": [session["refresh_token"], "urt-live-x"]})
    assert_error(response, 400, "invalid_request")
    assert refresh(client, session["refresh_token"]).status_code == 200


def test_get_is_405_in_rfc_6749_form(client):
    response = client.get(REVOKE)
    assert_error(response, 405, "invalid_request")


def _resigned(claims: dict, key=None) -> str:
    """The claims signed again: by another key, or with our key after changing them."""
    signer_key = key or _signer().key
    kid = signer_key.thumbprint()
    return jwt.encode({"alg": "RS256", "kid": kid, "typ": "at+jwt"}, claims, signer_key)


def _signer():
    from flask import current_app

    return current_app.extensions["freshcom_signer"]
