"""The refresh_token grant with a user refresh token (URT): rotation, reuse, binding, expiry."""

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import text

from freshcom_customers.models.base import utcnow
from freshcom_customers.services import access_tokens
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


@pytest.fixture
def legacy(runner, account) -> str:
    return create_client(runner, account, "Legacy", "--no-rotation")["clientId"]


def login(auth, account, client_id: str | None = None) -> str:
    """A customer's URT from the password grant, through client_id or the default client."""
    params = {"client_id": client_id} if client_id else {}
    scope = f"aid:{account.live.id}"
    return auth.token(grant_type="password", username=USERNAME, password=PASSWORD, scope=scope, **params)[
        "refresh_token"
    ]


@pytest.fixture
def owner_urt(auth, account) -> str:
    return auth.token(
        grant_type="password", username=account.owner.username, password=account.owner_password
    )["refresh_token"]


# Rotation (the default client rotates)


def test_refresh_rotates_and_gives_a_customer_token(client, account, customer, urt):
    response = refresh(client, urt)
    assert response.status_code == 200, response.get_json()
    assert response.headers["Cache-Control"] == "no-store"
    token = response.get_json()
    assert token["refresh_token"].startswith("urt-live-")
    assert token["refresh_token"] != urt
    assert token["token_type"] == "bearer"
    assert token["expires_in"] == 3600
    assert token["scope"] == f"aid:{account.live.id}"
    principal = access_tokens.authenticate(token["access_token"])
    assert principal.account.id == account.live.id
    assert principal.role == "customer"
    assert principal.user is not None
    assert str(principal.customer_id) == customer["id"]


def test_a_rotation_is_one_statement_on_postgresql_and_three_on_sqlite(client, session, customer, urt):
    """PostgreSQL: the token's checks, its rotation, the successor and the session's use in one
    statement; SQLite: the token read with its account, user, client, customer and session's
    last use, the rotation and the successor (issue 18)."""
    with statements(session.get_bind()) as seen:
        response = refresh(client, urt)
    assert response.status_code == 200
    assert access_tokens.decode(response.get_json()["access_token"])["cid"] == customer["id"]
    run = beginnings(seen, 3)
    if session.get_bind().dialect.name == "postgresql":
        assert run == ["WITH spent AS"]
    else:
        assert run == [
            "SELECT refresh_tokens.id, refresh_tokens.account_id,",
            "UPDATE refresh_tokens SET",
            "INSERT INTO refresh_tokens",
        ]


def test_each_successor_refreshes_in_turn(client, customer, urt):
    seen = [urt]
    for _ in range(3):
        response = refresh(client, seen[-1])
        assert response.status_code == 200, response.get_json()
        seen.append(response.get_json()["refresh_token"])
    assert len(set(seen)) == len(seen)


def test_fresh_token_parameter_and_json_body_refresh_a_urt(client, customer, urt):
    response = client.post("/v1/token", json={"grant_type": "fresh_token", "fresh_token": urt})
    assert response.status_code == 200, response.get_json()
    assert access_tokens.authenticate(response.get_json()["access_token"]).role == "customer"


def test_rotation_keeps_the_family_and_its_absolute_expiry(client, session, customer, urt):
    old = stored(session, urt)
    successor = refresh(client, urt).get_json()["refresh_token"]
    old, new = stored(session, urt), stored(session, successor)
    assert old.rotated_at is not None
    assert new.rotated_at is None
    assert new.family_id == old.family_id
    # Rotation must not extend the session beyond the login's absolute lifetime.
    assert new.expires_at == old.expires_at


@pytest.mark.parametrize("replayed", [0, 1], ids=["login token", "first successor"])
def test_reuse_of_a_rotated_token_revokes_its_family(app, client, session, customer, urt, replayed):
    chain = [urt]
    for _ in range(2):
        chain.append(refresh(client, chain[-1]).get_json()["refresh_token"])
    rotated_long_ago(app, session, chain[replayed])
    assert_invalid_grant(refresh(client, chain[replayed]))
    # The legitimate holder's newest token dies too: the family is revoked.
    assert_invalid_grant(refresh(client, chain[-1]))
    assert all(stored(session, value).revoked_at is not None for value in chain)


def test_reuse_revokes_only_that_family(app, auth, client, session, account, customer, urt):
    other_session = auth.login(account, USERNAME, PASSWORD)["refresh_token"]
    refresh(client, urt)
    rotated_long_ago(app, session, urt)
    assert_invalid_grant(refresh(client, urt))
    assert refresh(client, other_session).status_code == 200


# Clients without rotation, and the binding of a URT to its client


def test_client_without_rotation_keeps_its_refresh_token(auth, client, session, account, customer, legacy):
    legacy_urt = login(auth, account, legacy)
    for _ in range(3):
        response = refresh(client, legacy_urt, client_id=legacy)
        assert response.status_code == 200, response.get_json()
        token = response.get_json()
        assert token["refresh_token"] == legacy_urt
        assert str(access_tokens.authenticate(token["access_token"]).customer_id) == customer["id"]
    assert stored(session, legacy_urt).rotated_at is None


def test_client_without_rotation_slides_the_idle_window(auth, client, session, account, customer, legacy):
    legacy_urt = login(auth, account, legacy)
    row = stored(session, legacy_urt)
    row.last_used_at = utcnow() - timedelta(days=13)
    session.commit()
    assert refresh(client, legacy_urt, client_id=legacy).status_code == 200
    assert stored(session, legacy_urt).last_used_at > utcnow() - timedelta(minutes=1)


@pytest.mark.parametrize(
    ("login_with", "refresh_with"),
    [
        pytest.param(None, "legacy", id="default client's urt named as legacy"),
        pytest.param("legacy", None, id="legacy urt without client_id"),
        pytest.param("legacy", "other legacy", id="legacy urt with another client of the account"),
        pytest.param(None, "foreign", id="default client's urt with another account's client"),
    ],
)
def test_urt_is_bound_to_its_client(
    auth, client, runner, account, other_account, customer, login_with, refresh_with
):
    clients = {
        None: None,
        "legacy": create_client(runner, account, "Legacy", "--no-rotation")["clientId"],
        "other legacy": create_client(runner, account, "Other legacy", "--no-rotation")["clientId"],
        "foreign": create_client(runner, other_account, "Foreign")["clientId"],
    }
    urt = login(auth, account, clients[login_with])
    params = {"client_id": clients[refresh_with]} if refresh_with else {}
    assert_invalid_grant(refresh(client, urt, **params))
    # The token itself is fine with the client that obtained it.
    own = {"client_id": clients[login_with]} if login_with else {}
    assert refresh(client, urt, **own).status_code == 200


# Live and test


@pytest.mark.parametrize("scope", ["aid:{test}", "account_id:{test}", "aid:aid-test-{test}"])
def test_live_owner_urt_with_test_scope_gives_a_test_token(client, account, owner_urt, scope):
    assert owner_urt.startswith("urt-live-")
    response = refresh(client, owner_urt, scope=scope.format(test=account.test.id))
    assert response.status_code == 200, response.get_json()
    token = response.get_json()
    assert token["scope"] == f"aid:{account.test.id}"
    assert token["refresh_token"].startswith("urt-test-")
    principal = access_tokens.authenticate(token["access_token"])
    assert principal.account.id == account.test.id
    assert principal.role == "owner"
    assert principal.user.id == account.owner.id


@pytest.mark.parametrize("scope", [None, "aid:{test}"], ids=["no scope", "test scope"])
def test_test_urt_refreshes_within_the_test_account(client, account, owner_urt, scope):
    test_urt = refresh(client, owner_urt, scope=f"aid:{account.test.id}").get_json()["refresh_token"]
    params = {"scope": scope.format(test=account.test.id)} if scope else {}
    response = refresh(client, test_urt, **params)
    assert response.status_code == 200, response.get_json()
    token = response.get_json()
    assert token["scope"] == f"aid:{account.test.id}"
    assert token["refresh_token"].startswith("urt-test-")
    assert token["refresh_token"] != test_urt
    assert access_tokens.authenticate(token["access_token"]).account.id == account.test.id


def test_test_twin_family_lives_no_longer_than_the_live_family(client, session, account, owner_urt):
    live = stored(session, owner_urt)
    live.expires_at = utcnow() + timedelta(days=2)
    session.commit()
    test_urt = refresh(client, owner_urt, scope=f"aid:{account.test.id}").get_json()["refresh_token"]
    assert stored(session, test_urt).expires_at == stored(session, owner_urt).expires_at
    assert stored(session, owner_urt).rotated_at is None  # the live token stays usable


def test_owner_urt_without_scope_stays_live(client, account, owner_urt):
    token = refresh(client, owner_urt).get_json()
    assert token["refresh_token"].startswith("urt-live-")
    assert access_tokens.authenticate(token["access_token"]).account.id == account.live.id


@pytest.mark.parametrize(
    ("which", "scope"),
    [
        pytest.param("test", "aid:{live}", id="test urt with live scope"),
        pytest.param("test", "aid:acme", id="test urt with live handle"),
        pytest.param("live", "aid:{other}", id="live urt with another account"),
        pytest.param("live", "aid:{other_test}", id="live urt with another account's test twin"),
        pytest.param("live", "aid:no-such-handle", id="unknown handle"),
        pytest.param("live", "aid:", id="empty account"),
        pytest.param("live", "locale:en", id="scope without account"),
    ],
)
def test_owner_urt_with_a_foreign_scope_is_invalid_grant(
    client, account, other_account, owner_urt, which, scope
):
    urt = owner_urt
    if which == "test":
        urt = refresh(client, owner_urt, scope=f"aid:{account.test.id}").get_json()["refresh_token"]
    ids = {"live": account.live.id, "other": other_account.live.id, "other_test": other_account.test.id}
    assert_invalid_grant(refresh(client, urt, scope=scope.format(**ids)))


# Suspension and expiry


def suspend(client, auth, account, customer: dict, status: str = "suspended"):
    response = client.patch(
        f"/v1/customers/{customer['id']}",
        json={"data": {"type": "Customer", "attributes": {"status": status}}},
        headers=auth.headers(auth.owner(account)),
    )
    assert response.status_code == 200, response.get_json()


def test_suspended_customers_urt_is_invalid_grant(auth, client, account, customer, urt):
    suspend(client, auth, account, customer)
    assert_invalid_grant(refresh(client, urt))


def test_suspended_user_cannot_refresh_even_with_an_unrevoked_urt(client, session, customer, urt):
    # The grant checks the user's status itself, not only that suspension revoked the rows.
    user = stored(session, urt).user
    user.status = "suspended"
    session.commit()
    assert stored(session, urt).revoked_at is None
    assert_invalid_grant(refresh(client, urt))


def test_reactivation_does_not_revive_old_urts(auth, client, account, customer, urt):
    suspend(client, auth, account, customer)
    suspend(client, auth, account, customer, status="registered")
    assert_invalid_grant(refresh(client, urt))
    fresh = auth.login(account, USERNAME, PASSWORD)["refresh_token"]
    assert refresh(client, fresh).status_code == 200


@pytest.mark.parametrize(
    ("column", "age"),
    [
        pytest.param("expires_at", timedelta(seconds=1), id="absolute lifetime over"),
        pytest.param("last_used_at", timedelta(days=14, seconds=1), id="idle lifetime over"),
    ],
)
def test_expired_urt_is_invalid_grant(client, session, customer, urt, column, age):
    row = stored(session, urt)
    setattr(row, column, utcnow() - age)
    session.commit()
    assert_invalid_grant(refresh(client, urt))


def test_urt_idle_for_less_than_the_idle_lifetime_still_works(client, session, customer, urt):
    row = stored(session, urt)
    row.last_used_at = utcnow() - timedelta(days=13)
    session.commit()
    assert refresh(client, urt).status_code == 200


def test_idle_lifetime_comes_from_configuration(app, client, session, monkeypatch, customer, urt):
    row = stored(session, urt)
    row.last_used_at = utcnow() - timedelta(minutes=2)
    session.commit()
    monkeypatch.setitem(app.config, "REFRESH_TOKEN_IDLE_LIFETIME", 60)
    assert_invalid_grant(refresh(client, urt))


def test_absolute_lifetime_comes_from_configuration(
    app, auth, client, session, monkeypatch, account, customer
):
    monkeypatch.setitem(app.config, "REFRESH_TOKEN_LIFETIME", 3600)
    urt = auth.login(account, USERNAME, PASSWORD)["refresh_token"]
    expires_at = stored(session, urt).expires_at
    assert timedelta(minutes=59) < expires_at - utcnow() <= timedelta(hours=1)


# Storage


def test_urts_are_stored_only_as_sha256_hashes(client, session, customer, urt):
    successor = refresh(client, urt).get_json()["refresh_token"]
    for value in (urt, successor):
        assert stored(session, value).token_hash == hashlib.sha256(value.encode()).hexdigest()
    rows = session.execute(text("SELECT * FROM refresh_tokens")).all()
    dump = repr([tuple(row) for row in rows])
    for value in (urt, successor):
        secret = value.removeprefix("urt-live-")
        assert secret not in dump
