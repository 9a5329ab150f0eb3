"""The refresh_token grant with an account's publishable refresh token (PRT): guest tokens."""

from datetime import timedelta

import pytest

from freshcom_customers.models.base import utcnow
from freshcom_customers.oauth2.scopes import GENERIC_FAILURE
from freshcom_customers.services import access_tokens, accounts
from tests.statements import beginnings, statements


def test_prt_gives_a_guest_token_for_its_account(auth, account):
    token = auth.token(grant_type="refresh_token", refresh_token=account.prt)
    assert token["token_type"] == "bearer"
    assert token["expires_in"] == 3600
    assert token["refresh_token"] == account.prt
    assert token["scope"] == f"aid:{account.live.id}"
    principal = access_tokens.authenticate(token["access_token"])
    assert principal.account.id == account.live.id
    assert principal.role == "guest"
    assert principal.user is None
    assert principal.customer_id is None


def test_test_prt_gives_a_guest_token_for_the_test_account(auth, account):
    assert account.test_prt.startswith("prt-test-")
    token = auth.token(grant_type="refresh_token", refresh_token=account.test_prt)
    assert token["refresh_token"] == account.test_prt
    assert token["scope"] == f"aid:{account.test.id}"
    principal = access_tokens.authenticate(token["access_token"])
    assert principal.account.id == account.test.id
    assert principal.role == "guest"


def test_success_is_not_cached(client, account):
    response = client.post("/v1/token", data={"grant_type": "refresh_token", "refresh_token": account.prt})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"grant_type": "refresh_token", "fresh_token": "{prt}"}, id="parameter alias"),
        pytest.param({"grant_type": "fresh_token", "refresh_token": "{prt}"}, id="grant_type alias"),
        pytest.param({"grant_type": "fresh_token", "fresh_token": "{prt}"}, id="both aliases"),
    ],
)
def test_fresh_token_is_an_alias_of_refresh_token(auth, account, params):
    params = {key: value.format(prt=account.prt) for key, value in params.items()}
    token = auth.token(**params)
    assert token["refresh_token"] == account.prt
    assert access_tokens.authenticate(token["access_token"]).account.id == account.live.id


def test_json_body_is_accepted(client, account):
    response = client.post(
        "/v1/token",
        json={"grant_type": "refresh_token", "refresh_token": account.prt},
        headers={"Authorization": "Bearer expired.stale.token"},
    )
    assert response.status_code == 200, response.get_json()
    principal = access_tokens.authenticate(response.get_json()["access_token"])
    assert (principal.account.id, principal.role) == (account.live.id, "guest")


@pytest.mark.parametrize(
    "scope",
    ["aid:{id}", "account_id:{id}", "aid:acme", "aid:ACME", "aid:aid-live-{id}", "aid:{id},locale:en"],
)
def test_scope_naming_the_prts_own_account_is_accepted(auth, account, scope):
    token = auth.token(
        grant_type="refresh_token", refresh_token=account.prt, scope=scope.format(id=account.live.id)
    )
    assert token["scope"] == f"aid:{account.live.id}"
    assert access_tokens.authenticate(token["access_token"]).account.id == account.live.id


def test_test_prt_with_its_own_scope_is_accepted(auth, account):
    token = auth.token(
        grant_type="refresh_token", refresh_token=account.test_prt, scope=f"aid:{account.test.id}"
    )
    assert access_tokens.authenticate(token["access_token"]).account.id == account.test.id


def _prt_uuid(prt: str) -> str:
    return prt.split("-", 2)[2]


INVALID = [
    pytest.param({"refresh_token": "prt-live-00000000-0000-0000-0000-000000000000"}, id="unknown prt"),
    pytest.param({"refresh_token": "prt-live-{uuid4}"}, id="random prt uuid"),
    pytest.param({"refresh_token": "prt-test-{live_uuid}"}, id="live prt with test mode"),
    pytest.param({"refresh_token": "prt-live-{test_uuid}"}, id="test prt with live mode"),
    pytest.param({"refresh_token": "prt-live-zzz"}, id="malformed uuid"),
    pytest.param({"refresh_token": "prt-"}, id="empty prt"),
    pytest.param({"refresh_token": "prt"}, id="bare prefix"),
    pytest.param({"refresh_token": "xrt-live-{live_uuid}"}, id="unknown prefix"),
    pytest.param({"refresh_token": "urt-live-{live_uuid}"}, id="prt uuid as a urt"),
    pytest.param({"refresh_token": "{live_uuid}"}, id="bare uuid"),
    pytest.param({"scope": "aid:{other}"}, id="another account's scope"),
    pytest.param({"scope": "aid:globex"}, id="another account's handle"),
    pytest.param({"scope": "aid:{test}"}, id="test twin's scope with the live prt"),
    pytest.param({"refresh_token": "{test_prt}", "scope": "aid:{live}"}, id="live scope with the test prt"),
    pytest.param({"scope": "aid:00000000-0000-0000-0000-000000000000"}, id="unknown account"),
    pytest.param({"scope": "aid:no-such-handle"}, id="unknown handle"),
    pytest.param({"scope": "aid:"}, id="empty account"),
    pytest.param({"scope": "locale:en"}, id="scope without account"),
    pytest.param({"scope": "aid:not a uuid"}, id="malformed account"),
    pytest.param({"scope": "aid:aid-test-zzz"}, id="malformed prefixed id"),
    pytest.param({"scope": "aid:{live} aid:{other}"}, id="two accounts"),
]


@pytest.mark.parametrize("change", INVALID)
def test_invalid_prt_or_scope_gives_one_generic_invalid_grant(client, account, other_account, change):
    values = {
        "live_uuid": _prt_uuid(account.prt),
        "test_uuid": _prt_uuid(account.test_prt),
        "uuid4": "5f0c7a52-3c4e-4d53-9d0e-3f1f1b7a2c11",
        "test_prt": account.test_prt,
        "live": account.live.id,
        "test": account.test.id,
        "other": other_account.live.id,
    }
    params = {"grant_type": "refresh_token", "refresh_token": account.prt, **change}
    params = {key: value.format(**values) for key, value in params.items()}
    response = client.post("/v1/token", data=params)
    assert response.status_code == 400
    assert response.get_json() == {"error": "invalid_grant", "error_description": GENERIC_FAILURE}
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"


def test_another_accounts_prt_gives_that_account_not_ours(auth, account, other_account):
    token = auth.token(grant_type="refresh_token", refresh_token=other_account.prt)
    assert access_tokens.authenticate(token["access_token"]).account.id == other_account.live.id


def test_user_refresh_token_row_id_is_not_a_prt(client, auth, account, register, session):
    from sqlalchemy import select

    from freshcom_customers.models import RefreshToken, hash_secret

    register()
    urt = auth.login(account, "roy@example.com", "roy-password-1")["refresh_token"]
    row = session.scalar(select(RefreshToken).where(RefreshToken.token_hash == hash_secret(urt)))
    response = client.post(
        "/v1/token", data={"grant_type": "refresh_token", "refresh_token": f"prt-live-{row.id}"}
    )
    assert response.status_code == 400
    assert response.get_json() == {"error": "invalid_grant", "error_description": GENERIC_FAILURE}


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"grant_type": "refresh_token"}, id="missing"),
        pytest.param({"grant_type": "refresh_token", "refresh_token": ""}, id="empty"),
        pytest.param({"grant_type": "fresh_token"}, id="missing with grant_type alias"),
    ],
)
def test_missing_refresh_token_is_invalid_request(client, params):
    response = client.post("/v1/token", data=params)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"


def test_a_rotated_out_prt_gives_guest_tokens_until_its_grace_period_ends(auth, account, session):
    old = account.prt
    new, retired = accounts.rotate_publishable_key(account.live, timedelta(hours=24))
    session.commit()

    for prt in (old, new.prefixed_id):
        token = auth.token(grant_type="refresh_token", refresh_token=prt)
        assert token["refresh_token"] == prt  # the old key is not swapped for the new one
        assert access_tokens.authenticate(token["access_token"]).account.id == account.live.id

    retired.expires_at = utcnow() - timedelta(seconds=1)
    session.commit()
    refused = auth.token(expect=400, grant_type="refresh_token", refresh_token=old)
    assert refused == {"error": "invalid_grant", "error_description": GENERIC_FAILURE}
    assert auth.token(grant_type="refresh_token", refresh_token=new.prefixed_id)["access_token"]


def test_a_guest_token_is_one_statement_on_postgresql(client, session, account):
    """PostgreSQL: the key, its account and the default client checked in one query;
    SQLite: the key, its account and the client read as rows (issue 18)."""
    form = {"grant_type": "refresh_token", "refresh_token": account.prt}
    with statements(session.get_bind()) as seen:
        response = client.post("/v1/token", data=form)
    assert response.status_code == 200
    principal = access_tokens.authenticate(response.get_json()["access_token"])
    assert (principal.account.id, principal.role, principal.user) == (account.live.id, "guest", None)
    assert access_tokens.decode(response.get_json()["access_token"])["client_id"] == str(
        accounts.default_client(account.live).id
    )
    run = beginnings(seen, 2)
    if session.get_bind().dialect.name == "postgresql":
        assert run == ["SELECT refresh_tokens.account_id,"]
    else:
        assert len(run) > 1
