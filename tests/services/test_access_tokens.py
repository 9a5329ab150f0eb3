"""Access tokens: whether a user's token is still live is decided in one query, and at once."""

import time
import uuid

import pytest
from joserfc import jwt
from joserfc.jwk import OKPKey, RSAKey

from freshcom_customers.errors import InvalidToken
from freshcom_customers.models import RefreshToken
from freshcom_customers.services import access_tokens, accounts, customers, refresh_tokens, users
from tests.statements import statements


@pytest.fixture
def login(session, account):
    """An access token of the owner from a new refresh token family; returns (token, family id)."""

    def login(family_id=None):
        live = account.live
        if family_id is None:
            family_id = refresh_tokens.issue(account.owner, live, accounts.default_client(live)).family_id
            session.flush()
        role = users.role_in(account.owner, live)
        token, _ = access_tokens.issue(live, role, user=account.owner, family_id=family_id)
        return token, family_id

    return login


def test_a_user_token_is_checked_in_one_query(session, account, login):
    token, family_id = login()
    session.expire_all()  # every row must come from the database
    with statements(session.get_bind()) as seen:
        principal = access_tokens.authenticate(token)
    assert len(seen) == 1
    assert (principal.account.id, principal.user.id, principal.family_id) == (
        account.live.id,
        account.owner.id,
        family_id,
    )


def test_a_revoked_family_ends_its_token_even_while_the_session_holds_the_family(session, login):
    token, family_id = login()
    assert session.get(RefreshToken, family_id).revoked_at is None  # now in the identity map
    refresh_tokens.revoke_family(family_id)  # an UPDATE that leaves that object stale
    with pytest.raises(InvalidToken):
        access_tokens.authenticate(token)


def test_a_bumped_token_generation_ends_the_token(session, account, login):
    token, _ = login()
    account.owner.token_generation += 1
    session.flush()
    with pytest.raises(InvalidToken):
        access_tokens.authenticate(token)


def test_a_family_without_a_first_token_is_checked_by_its_tokens(session, login):
    _, family_id = login()
    legacy = uuid.uuid4()  # as families were made before: the family id is no row's id
    session.get(RefreshToken, family_id).family_id = legacy
    session.flush()
    token, _ = login(family_id=legacy)
    assert access_tokens.authenticate(token).family_id == legacy
    refresh_tokens.revoke_family(legacy)
    with pytest.raises(InvalidToken):
        access_tokens.authenticate(token)


@pytest.mark.parametrize("unknown", ["aid", "sub"])
def test_a_token_of_an_unknown_account_or_user_is_invalid(account, login, unknown):
    claims = access_tokens.decode(login()[0])
    claims[unknown] = str(uuid.uuid4())
    with pytest.raises(InvalidToken):
        access_tokens.principal_of(claims)


def test_a_customers_principal_carries_its_customer_from_the_same_query(session, account):
    attrs = {"status": "registered", "email": "gia@example.com", "password": "gia-long-password-1"}
    customer = customers.create_customer(account.live, attrs)
    token, _ = access_tokens.issue(account.live, "customer", user=customer.user, customer_id=customer.id)
    session.expire_all()
    with statements(session.get_bind()) as seen:
        principal = access_tokens.authenticate(token)
    assert len(seen) == 1
    assert principal.customer.id == principal.customer_id == customer.id


def test_a_staff_principal_has_no_customer(login):
    assert access_tokens.authenticate(login()[0]).customer is None


def test_a_signed_token_naming_an_account_its_user_is_not_in_is_refused(session, app, account, other_account):
    """Defence in depth: our own signature does not make a user a member of another account."""
    roy = users.create_managed_user(account.live, username="roy", password="roy-password-1", role="customer")
    session.flush()
    forged = [
        (other_account.live, account.owner, "owner"),  # a standard user, not a member
        (other_account.test, account.owner, "owner"),
        (other_account.live, roy, "customer"),  # a managed user of another account
        (other_account.test, roy, "customer"),
    ]
    for target, user, role in forged:
        token, _ = access_tokens.issue(target, role, user=user)
        with pytest.raises(InvalidToken):
            access_tokens.authenticate(token)


def test_a_token_for_the_test_twin_of_the_users_account_is_accepted(session, account):
    roy = users.create_managed_user(account.live, username="roy", password="roy-password-1", role="customer")
    session.flush()
    for user, role in ((account.owner, "owner"), (roy, "customer")):
        token, _ = access_tokens.issue(account.test, role, user=user)
        assert access_tokens.authenticate(token).account.id == account.test.id


def test_a_foreign_account_token_is_401_on_the_wire(client, app, session, account, other_account):
    token, _ = access_tokens.issue(other_account.live, "owner", user=account.owner)
    response = client.get("/v1/account", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_a_token_verified_once_is_not_verified_again(monkeypatch, login):
    token, _ = login()
    verifies = []
    real_decode = access_tokens.jwt.decode
    monkeypatch.setattr(
        access_tokens.jwt, "decode", lambda *a, **k: verifies.append(1) or real_decode(*a, **k)
    )
    first = access_tokens.decode(token)
    first["role"] = "changed by its caller"
    assert access_tokens.decode(token)["role"] == "owner"
    assert len(verifies) == 1


def test_a_verified_token_still_expires(monkeypatch, login):
    token, _ = login()
    exp = access_tokens.decode(token)["exp"]
    monkeypatch.setattr(time, "time", lambda: exp + 1)
    with pytest.raises(InvalidToken):
        access_tokens.decode(token)


@pytest.mark.parametrize("key", [OKPKey.generate_key("Ed25519"), RSAKey.generate_key(2048)])
def test_a_token_signed_is_the_one_joserfc_signs_and_verifies(key):
    """An Ed25519 key signs in Signer.sign itself, not through joserfc's encode: the same
    bytes (Ed25519 is deterministic), which joserfc verifies; an RSA key goes through joserfc."""
    signer = access_tokens.Signer(key, "https://id.shop.test")
    claims = {"iss": signer.issuer, "aid": str(uuid.uuid4()), "role": "customer", "gen": 3, "exp": 2**31}
    token = signer.sign(claims)
    if key.key_type == "OKP":
        assert token == jwt.encode(signer.header, claims, key, registry=access_tokens.REGISTRY)
    verified = jwt.decode(token, signer.verifying_key, registry=access_tokens.REGISTRY)
    assert verified.header == signer.header
    assert verified.claims == claims
    assert signer.verified(token) == claims
