"""Refresh token rotation: the reuse grace window, reuse as a security event, and no-rotation clients.

Rotation itself, reuse revoking the family and the binding to the client are in
test_refresh_user.py; 20 concurrent refreshes on PostgreSQL in tests/e2e/test_concurrent_refresh.py.
"""

import logging
import uuid
from datetime import timedelta

import pytest

from freshcom_customers.models.base import utcnow
from freshcom_customers.services import access_tokens, accounts
from tests.conftest import create_client
from tests.oauth2.conftest import (
    PASSWORD,
    USERNAME,
    assert_invalid_grant,
    refresh,
    rotated_long_ago,
    stored,
)
from tests.statements import beginnings, statements


def reuse_events(caplog) -> list:
    return [r for r in caplog.records if getattr(r, "security_event", None) == "refresh_token_reuse"]


def me(client, access_token: str):
    return client.get("/v1/user", headers={"Authorization": f"Bearer {access_token}"})


# The grace window (RFC 9700 4.14.2's concurrent refreshes)


def test_a_replay_within_the_grace_window_is_refused_but_keeps_the_family(client, session, urt, caplog):
    successor = refresh(client, urt).get_json()
    with caplog.at_level(logging.WARNING, logger="freshcom_customers.security"):
        assert_invalid_grant(refresh(client, urt))
    assert reuse_events(caplog) == []
    assert stored(session, successor["refresh_token"]).revoked_at is None
    assert me(client, successor["access_token"]).status_code == 200
    assert refresh(client, successor["refresh_token"]).status_code == 200


def test_a_replay_after_the_grace_window_revokes_the_family(app, client, session, urt):
    successor = refresh(client, urt).get_json()
    rotated_long_ago(app, session, urt)
    assert_invalid_grant(refresh(client, urt))
    assert_invalid_grant(refresh(client, successor["refresh_token"]))
    # The access tokens of the family die at once too: the thief's and the holder's.
    assert me(client, successor["access_token"]).status_code == 401


def test_the_grace_window_comes_from_configuration(app, client, monkeypatch, urt):
    successor = refresh(client, urt).get_json()["refresh_token"]
    monkeypatch.setitem(app.config, "REFRESH_TOKEN_REUSE_GRACE", 0)
    assert_invalid_grant(refresh(client, urt))
    assert_invalid_grant(refresh(client, successor))


def test_the_grace_window_is_a_few_seconds_by_default(app):
    assert 0 < app.config["REFRESH_TOKEN_REUSE_GRACE"] <= 10


def test_reuse_is_a_security_event_naming_the_family_not_the_token(app, client, session, urt, caplog):
    successor = refresh(client, urt).get_json()
    rotated_long_ago(app, session, urt)
    row = stored(session, urt)
    with caplog.at_level(logging.WARNING, logger="freshcom_customers.security"):
        assert_invalid_grant(refresh(client, urt))
    (event,) = reuse_events(caplog)
    assert event.levelno == logging.WARNING
    assert event.fields == {
        "family_id": str(row.family_id),
        "user_id": str(row.user_id),
        "account_id": str(row.account_id),
        "client_id": str(row.client_id),
    }
    logged = repr(event.__dict__)
    for secret in (urt, successor["refresh_token"], successor["access_token"], PASSWORD):
        assert secret not in logged


def test_a_revoked_family_replayed_again_is_no_new_event(app, client, session, urt, caplog):
    refresh(client, urt)
    rotated_long_ago(app, session, urt)
    with caplog.at_level(logging.WARNING, logger="freshcom_customers.security"):
        assert_invalid_grant(refresh(client, urt))
        assert len(reuse_events(caplog)) == 1
        caplog.clear()
        assert_invalid_grant(refresh(client, urt))
    assert reuse_events(caplog) == []


# Access tokens name their session


def test_access_tokens_name_their_client_and_refresh_token_family(client, session, account, urt):
    successor = refresh(client, urt).get_json()
    claims = access_tokens.decode(successor["access_token"])
    row = stored(session, successor["refresh_token"])
    assert claims["fid"] == str(row.family_id) == str(stored(session, urt).family_id)
    assert claims["client_id"] == str(row.client_id)


def test_a_guest_token_names_its_client_and_no_family(auth, account, runner):
    storefront = create_client(runner, account, "Storefront")["clientId"]
    token = auth.token(grant_type="refresh_token", refresh_token=account.prt, client_id=storefront)
    claims = access_tokens.decode(token["access_token"])
    assert claims["client_id"] == storefront
    assert "fid" not in claims


# Clients without rotation: the absolute and idle expiry are the guard


@pytest.fixture
def legacy_urt(auth, runner, account, customer) -> tuple[str, str]:
    legacy = create_client(runner, account, "Legacy", "--no-rotation")["clientId"]
    urt = auth.token(
        grant_type="password",
        username=USERNAME,
        password=PASSWORD,
        scope=f"aid:{account.live.id}",
        client_id=legacy,
    )["refresh_token"]
    return legacy, urt


def test_a_no_rotation_token_in_steady_use_still_ends_at_its_absolute_expiry(client, session, legacy_urt):
    legacy, urt = legacy_urt
    assert refresh(client, urt, client_id=legacy).get_json()["refresh_token"] == urt
    row = stored(session, urt)
    row.expires_at = utcnow() - timedelta(seconds=1)
    session.commit()
    assert_invalid_grant(refresh(client, urt, client_id=legacy))


def test_a_no_rotation_token_ends_when_idle(app, client, session, monkeypatch, legacy_urt):
    legacy, urt = legacy_urt
    monkeypatch.setitem(app.config, "REFRESH_TOKEN_IDLE_LIFETIME", 60)
    row = stored(session, urt)
    row.last_used_at = utcnow() - timedelta(seconds=61)
    session.commit()
    assert_invalid_grant(refresh(client, urt, client_id=legacy))


def test_a_no_rotation_token_is_never_reuse(client, session, legacy_urt, caplog):
    legacy, urt = legacy_urt
    with caplog.at_level(logging.WARNING, logger="freshcom_customers.security"):
        for _ in range(3):
            assert refresh(client, urt, client_id=legacy).status_code == 200
    assert reuse_events(caplog) == []
    assert stored(session, urt).rotated_at is None


def test_a_no_rotation_token_can_be_revoked(client, legacy_urt):
    legacy, urt = legacy_urt
    response = client.post("/v1/token/revoke", data={"token": urt, "client_id": legacy})
    assert response.status_code == 200
    assert_invalid_grant(refresh(client, urt, client_id=legacy))


def test_a_no_rotation_refresh_from_a_public_client_is_one_statement_on_postgresql(
    client, session, customer, legacy_urt
):
    """PostgreSQL: the token's and the named client's checks and the uses noted in one
    statement (refresh_tokens.keep_at_once); SQLite: the client read, then the token (issue 18)."""
    legacy, urt = legacy_urt
    family_id = stored(session, urt).family_id
    with statements(session.get_bind()) as seen:
        response = refresh(client, urt, client_id=legacy)
    assert response.status_code == 200, response.get_json()
    token = response.get_json()
    assert token["refresh_token"] == urt
    claims = access_tokens.decode(token["access_token"])
    assert (claims["client_id"], claims["cid"], claims["fid"]) == (legacy, customer["id"], str(family_id))
    run = beginnings(seen, 3)
    if session.get_bind().dialect.name == "postgresql":
        assert run == ["WITH found AS"]
    else:
        assert run[:2] == [
            "SELECT clients.id, clients.account_id,",
            "SELECT refresh_tokens.id, refresh_tokens.account_id,",
        ]


@pytest.mark.parametrize(
    ("named", "status", "error"),
    [
        ("default", 400, "invalid_grant"),  # the token is another client's
        ("confidential", 401, "invalid_client"),  # named without its secret
        ("unknown", 400, "invalid_client"),
        ("not an id", 400, "invalid_client"),
    ],
)
def test_a_no_rotation_token_named_with_another_client_gets_the_general_ways_answer(
    client, session, runner, account, legacy_urt, named, status, error
):
    """Where the one statement declines, the general way authenticates the client and answers;
    the same on both databases, and the token is not used."""
    _, urt = legacy_urt
    client_ids = {
        "default": str(accounts.default_client(account.live).id),
        "confidential": create_client(runner, account, "Backend", "--confidential")["clientId"],
        "unknown": str(uuid.uuid4()),
        "not an id": "legacy",
    }
    last_used = stored(session, urt).last_used_at
    response = refresh(client, urt, client_id=client_ids[named])
    assert (response.status_code, response.get_json()["error"]) == (status, error)
    assert stored(session, urt).last_used_at == last_used
