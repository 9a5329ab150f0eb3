"""POST /v1/token/introspect (RFC 7662): confidential clients ask about their account's tokens."""

from datetime import timedelta

import pytest

from freshcom_customers.models.base import utcnow
from freshcom_customers.services import access_tokens, accounts
from tests.conftest import create_client
from tests.oauth2.conftest import (
    PASSWORD,
    USERNAME,
    assert_no_store,
    basic,
    refresh,
    rotated_long_ago,
    stored,
)

INTROSPECT = "/v1/token/introspect"
INACTIVE = {"active": False}


@pytest.fixture
def backend(runner, account) -> dict:
    """Basic credentials of a confidential client of the account."""
    created = create_client(runner, account, "Backend", "--confidential")
    return basic(created["clientId"], created["clientSecret"])


@pytest.fixture
def tokens(auth, account, customer) -> dict:
    """A customer's session through the default public client."""
    return auth.login(account, USERNAME, PASSWORD)


def introspect(client, token: str, headers: dict, **params) -> dict:
    response = client.post(INTROSPECT, data={"token": token, **params}, headers=headers)
    assert response.status_code == 200, response.get_json()
    assert_no_store(response)
    return response.get_json()


def test_a_valid_access_token_is_active_with_its_claims(client, app, account, customer, tokens, backend):
    claims = access_tokens.decode(tokens["access_token"])
    answer = introspect(client, tokens["access_token"], backend)
    assert answer == {
        "active": True,
        "token_type": "bearer",
        "scope": f"aid:{account.live.id}",
        "client_id": claims["client_id"],
        "username": USERNAME,
        "sub": customer["relationships"]["user"]["data"]["id"],
        "iss": app.config["JWT_ISSUER"],
        "iat": claims["iat"],
        "exp": claims["exp"],
        "aid": str(account.live.id),
        "role": "customer",
        "cid": customer["id"],
        "jti": claims["jti"],
    }


def test_a_valid_urt_is_active_until_its_earlier_expiry(client, session, account, customer, tokens, backend):
    row = stored(session, tokens["refresh_token"])
    answer = introspect(client, tokens["refresh_token"], backend, token_type_hint="refresh_token")
    idle_end = row.last_used_at + timedelta(days=14)
    assert answer == {
        "active": True,
        "token_type": "refresh_token",
        "scope": f"aid:{account.live.id}",
        "client_id": str(row.client_id),
        "username": USERNAME,
        "sub": customer["relationships"]["user"]["data"]["id"],
        "iss": "freshcom_customers",
        "iat": int(row.inserted_at.timestamp()),
        "exp": int(min(row.expires_at, idle_end).timestamp()),
        "aid": str(account.live.id),
    }


def test_a_guest_token_and_the_publishable_key_are_active_without_a_user(client, auth, account, backend):
    guest = introspect(client, auth.guest(account), backend)
    assert (guest["active"], guest["role"], guest["token_type"]) == (True, "guest", "bearer")
    assert "sub" not in guest and "username" not in guest
    prt = introspect(client, account.prt, backend)
    assert (prt["active"], prt["token_type"], prt["scope"]) == (
        True,
        "refresh_token",
        f"aid:{account.live.id}",
    )
    assert "sub" not in prt and "exp" not in prt


def test_a_rotated_out_publishable_key_is_active_until_it_stops(client, session, account, backend):
    old = account.prt
    _, retired = accounts.rotate_publishable_key(account.live, timedelta(hours=1))
    session.commit()
    assert introspect(client, old, backend)["exp"] == int(retired.expires_at.timestamp())
    retired.expires_at = utcnow() - timedelta(seconds=1)
    session.commit()
    assert introspect(client, old, backend) == INACTIVE


# Inactive: {"active": false} and nothing else (RFC 7662 2.2)


def test_revoked_tokens_are_inactive(client, tokens, backend):
    assert introspect(client, tokens["access_token"], backend)["active"] is True
    response = client.post("/v1/token/revoke", data={"token": tokens["refresh_token"]})
    assert response.status_code == 200
    assert introspect(client, tokens["access_token"], backend) == INACTIVE
    assert introspect(client, tokens["refresh_token"], backend) == INACTIVE


def test_an_expired_access_token_is_inactive(client, account, tokens, backend):
    claims = access_tokens.decode(tokens["access_token"])
    user = access_tokens.authenticate(tokens["access_token"]).user
    expired, _ = access_tokens.issue(
        account.live,
        "customer",
        user=user,
        lifetime=-1,
        client_id=claims["client_id"],
        family_id=claims["fid"],
    )
    assert introspect(client, expired, backend) == INACTIVE


@pytest.mark.parametrize(
    ("column", "age"),
    [
        pytest.param("expires_at", timedelta(seconds=1), id="absolute lifetime over"),
        pytest.param("last_used_at", timedelta(days=14, seconds=1), id="idle lifetime over"),
    ],
)
def test_an_expired_urt_is_inactive(client, session, tokens, backend, column, age):
    row = stored(session, tokens["refresh_token"])
    setattr(row, column, utcnow() - age)
    session.commit()
    assert introspect(client, tokens["refresh_token"], backend) == INACTIVE


def test_a_rotated_urt_is_inactive_and_introspecting_it_is_not_reuse(app, client, session, tokens, backend):
    # Even after the grace window, introspection is a look, not a use: the family lives.
    successor = refresh(client, tokens["refresh_token"]).get_json()["refresh_token"]
    rotated_long_ago(app, session, tokens["refresh_token"])
    assert introspect(client, tokens["refresh_token"], backend) == INACTIVE
    assert introspect(client, successor, backend)["active"] is True
    assert refresh(client, successor).status_code == 200


def test_a_suspended_users_tokens_are_inactive(client, session, tokens, backend):
    user = stored(session, tokens["refresh_token"]).user
    user.status = "suspended"  # without the revocation suspension does too: the state alone counts
    session.commit()
    assert introspect(client, tokens["access_token"], backend) == INACTIVE
    assert introspect(client, tokens["refresh_token"], backend) == INACTIVE


def test_another_accounts_tokens_are_inactive(client, runner, auth, other_account, tokens):
    created = create_client(runner, other_account, "Their backend", "--confidential")
    theirs = basic(created["clientId"], created["clientSecret"])
    assert introspect(client, tokens["access_token"], theirs) == INACTIVE
    assert introspect(client, tokens["refresh_token"], theirs) == INACTIVE
    assert introspect(client, auth.guest(other_account), theirs)["active"] is True


@pytest.mark.parametrize("token", ["urt-live-unknown", "prt-test-nope", "garbage", "a.b.c"])
def test_unknown_tokens_are_inactive(client, backend, token):
    assert introspect(client, token, backend) == INACTIVE


def test_a_test_twin_token_is_active_for_the_live_accounts_client(client, auth, account, backend):
    owner_urt = auth.token(
        grant_type="password", username=account.owner.username, password=account.owner_password
    )["refresh_token"]
    test = refresh(client, owner_urt, scope=f"aid:{account.test.id}").get_json()
    answer = introspect(client, test["access_token"], backend)
    assert (answer["active"], answer["aid"]) == (True, str(account.test.id))


# Who may introspect


def test_client_secret_post_works_too(client, runner, account, tokens):
    created = create_client(runner, account, "Backend", "--confidential")
    response = client.post(
        INTROSPECT,
        data={
            "token": tokens["access_token"],
            "client_id": created["clientId"],
            "client_secret": created["clientSecret"],
        },
    )
    assert response.get_json()["active"] is True


@pytest.mark.parametrize("caller", ["no client", "public client", "default client", "wrong secret"])
def test_only_confidential_clients_may_introspect(client, runner, account, tokens, caller):
    public = create_client(runner, account, "Storefront")["clientId"]
    confidential = create_client(runner, account, "Backend", "--confidential")
    default_id = access_tokens.decode(tokens["access_token"])["client_id"]
    params, headers = {
        "no client": ({}, {}),
        "public client": ({"client_id": public}, {}),
        "default client": ({"client_id": default_id}, {}),
        "wrong secret": ({}, basic(confidential["clientId"], "wrong")),
    }[caller]
    response = client.post(INTROSPECT, data={"token": tokens["access_token"], **params}, headers=headers)
    assert response.status_code == 401, response.get_json()
    assert response.get_json()["error"] == "invalid_client"
    assert response.headers["WWW-Authenticate"].startswith("Basic ")
    assert_no_store(response)


def test_a_missing_token_is_invalid_request(client, backend):
    response = client.post(INTROSPECT, data={}, headers=backend)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"
    assert_no_store(response)
