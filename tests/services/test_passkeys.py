"""Passkeys (API.md 11): recorded WebAuthn ceremonies replayed through the service, each refusal once.

The ceremonies in fixtures/webauthn/ (written by make_fixtures.py) were made for the relying
party shop.example.com and a user whose id they name in their user handle. A test configures
that relying party, gives its user that id, and plants a case's challenge as the live one-time
token that the options would have issued, 5 minutes and single use as theirs are.
"""

import copy
import json
import uuid
from datetime import timedelta
from functools import cache

import pytest
from sqlalchemy import event, insert, select, update

from freshcom_customers.errors import InvalidCredentials, NotFound, ValidationFailed
from freshcom_customers.models import OneTimeToken, Passkey, hash_secret
from freshcom_customers.models.base import utcnow
from freshcom_customers.services import one_time_tokens, passkeys
from tests import factories
from tests.services.fixtures.webauthn import make_fixtures
from tests.webauthn_helpers import Authenticator, b64url, from_b64url

FIXTURES = make_fixtures.HERE


@cache
def recorded(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


RP_ID = recorded("authenticators")["relyingParty"]["id"]
(ORIGIN,) = recorded("authenticators")["relyingParty"]["origins"]
AUTHENTICATORS = recorded("authenticators")["authenticators"]
USER_ID = uuid.UUID(recorded("authenticators")["userId"])
OTHER_USER_ID = uuid.UUID(recorded("authenticators")["otherUserId"])


def registration(case: str) -> dict:
    """The recorded toJSON() of a new credential (a copy: a test may spoil it)."""
    return copy.deepcopy(recorded("registrations")["cases"][case]["credential"])


def assertion(case: str) -> dict:
    return copy.deepcopy(recorded("assertions")["cases"][case]["credential"])


def challenge_of(ceremony: str, case: str) -> str:
    return recorded(ceremony)["cases"][case]["challenge"]


def plant_registration(user, case: str) -> str:
    """Make the case's challenge the user's waiting registration, as registration_options would."""
    value = challenge_of("registrations", case)
    one_time_tokens.issue(
        "passkey_registration", user=user, email=None, lifetime=passkeys.CHALLENGE_LIFETIME, value=value
    )
    return value


def plant_login(account, case: str) -> str:
    """Make the case's challenge a live login challenge for account, as login_options would."""
    value = challenge_of("assertions", case)
    one_time_tokens.issue(
        "passkey_challenge",
        email=None,
        lifetime=passkeys.CHALLENGE_LIFETIME,
        value=value,
        payload={"account_id": str(account.id)},
    )
    return value


def token_of(session, value: str) -> OneTimeToken:
    return session.scalar(select(OneTimeToken).where(OneTimeToken.token_hash == hash_secret(value)))


def register(user, case: str, name: str | None = None) -> Passkey:
    plant_registration(user, case)
    return passkeys.register(user, registration(case), name)


def log_in(account, case: str):
    plant_login(account, case)
    return passkeys.authenticate(account, json.dumps(assertion(case)))


def field_errors(error: ValidationFailed) -> list[tuple[str, str]]:
    return [(e.field, e.code) for e in error.errors]


@pytest.fixture(autouse=True)
def relying_party(app, monkeypatch):
    """The relying party the ceremonies were recorded for."""
    monkeypatch.setitem(app.config, "WEBAUTHN_RP_ID", RP_ID)
    monkeypatch.setitem(app.config, "WEBAUTHN_ORIGINS", ORIGIN)


@pytest.fixture
def acme(session):
    return factories.account("Acme")


@pytest.fixture
def globex(session):
    return factories.account("Globex")


@pytest.fixture
def pia(acme):
    """The user the ceremonies were recorded for: her id is their user handle."""
    return factories.staff_user(acme, id=USER_ID, username="pia")


@pytest.fixture
def other(acme):
    """Another user of the account, the one the spoiled user handle names."""
    return factories.staff_user(acme, id=OTHER_USER_ID, username="otto")


@pytest.fixture
def kept(session):
    """Keep a recorded authenticator's credential as the user's passkey, as registration would."""

    def kept(user, device: str, sign_count: int = 0) -> Passkey:
        recorded_device = AUTHENTICATORS[device]
        passkey = Passkey(
            user_id=user.id,
            credential_id=from_b64url(recorded_device["credentialId"]),
            public_key=from_b64url(recorded_device["publicKey"]),
            sign_count=sign_count,
            aaguid=recorded_device["aaguid"],
            backup_eligible=recorded_device["backupEligible"],
            backed_up=recorded_device["backedUp"],
        )
        session.add(passkey)
        session.flush()
        return passkey

    return kept


def test_the_fixtures_are_what_make_fixtures_writes():
    written = {path.name: path.read_text() for path in FIXTURES.glob("*.json")}
    assert make_fixtures.build() == written


# Registration


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        (
            "packed",
            {
                "sign_count": 1,
                "aaguid": AUTHENTICATORS["laptop"]["aaguid"],
                "transports": {"transports": ["internal"]},
                "backup_eligible": False,
                "backed_up": False,
            },
        ),
        (
            "none",
            {
                "sign_count": 0,
                "aaguid": "00000000-0000-0000-0000-000000000000",
                "transports": {"transports": ["hybrid", "internal"]},
                "backup_eligible": True,
                "backed_up": True,
            },
        ),
    ],
)
def test_a_verified_credential_is_kept_as_the_users_passkey(session, pia, case, expected):
    challenge = plant_registration(pia, case)
    passkey = passkeys.register(pia, registration(case), "Mine")

    device = AUTHENTICATORS[recorded("registrations")["cases"][case]["authenticator"]]
    assert (passkey.user_id, passkey.name, passkey.last_used_at) == (pia.id, "Mine", None)
    assert passkey.credential_id == from_b64url(device["credentialId"])
    assert passkey.public_key == from_b64url(device["publicKey"])  # the COSE key, as attested
    assert {column: getattr(passkey, column) for column in expected} == expected
    assert passkeys.list_for(pia) == [passkey]
    assert token_of(session, challenge).used_at is not None


@pytest.mark.parametrize(
    ("name", "kept_name"),
    [
        (None, passkeys.DEFAULT_NAME),
        ("", passkeys.DEFAULT_NAME),
        ("   ", passkeys.DEFAULT_NAME),
        (" Phone ", "Phone"),
        ("x" * 100, "x" * 64),
    ],
)
def test_a_passkeys_name_is_trimmed_optional_and_at_most_64_characters(pia, name, kept_name):
    assert register(pia, "none", name).name == kept_name


@pytest.mark.parametrize(
    "case",
    [
        "wrong_origin",
        "wrong_rp_id",
        "no_uv",
        "no_up",
        "not_a_creation",  # an assertion's clientDataJSON
        "forged_attestation",  # packed, signed by a key that is not the credential's
        "backed_up_not_eligible",  # BS without BE
    ],
)
def test_a_credential_that_fails_verification_is_refused_and_spends_its_challenge(session, pia, case):
    challenge = plant_registration(pia, case)

    with pytest.raises(ValidationFailed) as refused:
        passkeys.register(pia, registration(case), None)

    assert field_errors(refused.value) == [("credential", "invalid")]
    assert passkeys.list_for(pia) == []
    assert token_of(session, challenge).used_at is not None  # no second try with it


@pytest.mark.parametrize(
    "config",
    [
        {"WEBAUTHN_RP_ID": "shop.example.org"},
        {"WEBAUTHN_ORIGINS": "https://shop.example.org"},
        {"WEBAUTHN_ORIGINS": "http://shop.example.com"},
        {"WEBAUTHN_ORIGINS": "https://shop.example.com:8443"},
    ],
)
def test_a_credential_for_another_relying_party_is_refused(app, monkeypatch, pia, config):
    for key, value in config.items():
        monkeypatch.setitem(app.config, key, value)

    with pytest.raises(ValidationFailed) as refused:
        register(pia, "packed")

    assert field_errors(refused.value) == [("credential", "invalid")]


def test_any_of_the_configured_origins_is_accepted(app, monkeypatch, pia):
    monkeypatch.setitem(app.config, "WEBAUTHN_ORIGINS", f"https://www.example.com, {ORIGIN}/")

    assert register(pia, "packed").sign_count == 1


def _unknown(session, pia, other, acme):
    pass  # nothing waits: the options were never asked for


def _used(session, pia, other, acme):
    one_time_tokens.consume("passkey_registration", plant_registration(pia, "packed"))


def _expired(session, pia, other, acme):
    token = token_of(session, plant_registration(pia, "packed"))
    token.expires_at = utcnow() - timedelta(seconds=1)
    session.flush()


def _another_users(session, pia, other, acme):
    plant_registration(other, "packed")


def _a_login_challenge(session, pia, other, acme):
    one_time_tokens.issue(
        "passkey_challenge",
        email=None,
        lifetime=passkeys.CHALLENGE_LIFETIME,
        value=challenge_of("registrations", "packed"),
        payload={"account_id": str(acme.id)},
    )


def _replaced_by_newer_options(session, pia, other, acme):
    plant_registration(pia, "packed")
    passkeys.registration_options(pia, acme)  # issues the user's new challenge, the old one goes


@pytest.mark.parametrize(
    "spoil", [_unknown, _used, _expired, _another_users, _a_login_challenge, _replaced_by_newer_options]
)
def test_a_credential_without_the_users_waiting_challenge_is_refused(session, pia, other, acme, spoil):
    spoil(session, pia, other, acme)

    with pytest.raises(ValidationFailed) as refused:
        passkeys.register(pia, registration("packed"), None)

    assert field_errors(refused.value) == [("credential", "expired")]
    assert passkeys.list_for(pia) == []


@pytest.mark.parametrize("by", ["the same user", "another user"])
def test_a_credential_registered_already_is_taken(pia, other, by):
    register(pia, "packed")
    user = pia if by == "the same user" else other

    with pytest.raises(ValidationFailed) as refused:
        register(user, "packed_again")  # the laptop's credential again, for a new challenge

    assert field_errors(refused.value) == [("credential", "taken")]
    assert len(passkeys.list_for(pia)) == 1
    assert passkeys.list_for(other) == []


def test_a_credential_registered_meanwhile_is_taken_on_credential(pia, other):
    """Another request registers the same credential between the service's look-up and its insert."""

    def register_it_first(mapper, connection, target):
        connection.execute(
            insert(Passkey.__table__).values(
                user_id=other.id, credential_id=target.credential_id, public_key=b"key"
            )
        )

    event.listen(Passkey, "before_insert", register_it_first)
    try:
        with pytest.raises(ValidationFailed) as refused:
            register(pia, "packed")
    finally:
        event.remove(Passkey, "before_insert", register_it_first)

    assert field_errors(refused.value) == [("credential", "taken")]


def _client_data(**changes):
    """Spoil the recorded clientDataJSON; its challenge stays the planted one unless changed."""

    def spoil(credential):
        data = json.loads(from_b64url(credential["response"]["clientDataJSON"]))
        credential["response"]["clientDataJSON"] = b64url(json.dumps({**data, **changes}).encode())
        return credential

    return pytest.param(spoil, id=f"clientDataJSON-{'-'.join(changes)}")


def _response(**changes):
    def spoil(credential):
        credential["response"].update(changes)
        return credential

    return pytest.param(spoil, id=f"response-{'-'.join(changes)}")


def _credential(**changes):
    def spoil(credential):
        return {**credential, **changes}

    return pytest.param(spoil, id=f"credential-{'-'.join(changes)}")


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda credential: None, id="null"),
        pytest.param(lambda credential: "not json", id="text"),
        pytest.param(lambda credential: [credential], id="array"),
        pytest.param(lambda credential: {}, id="empty-object"),
        pytest.param(lambda credential: json.dumps({}), id="empty-object-text"),
        pytest.param(lambda credential: {"id": credential["id"]}, id="no-response"),
        _credential(type="password"),
        _credential(id="AAAA"),  # not rawId's base64url
        _credential(rawId=7),
        _credential(response="yes"),
        _response(clientDataJSON="!!!"),
        _response(clientDataJSON=b64url(b"\xff\xfe not json")),
        _response(clientDataJSON=b64url(b"[1, 2]")),
        _response(clientDataJSON=None),
        _response(attestationObject=b64url(b"\xa1garbage")),
        _response(attestationObject=""),
        _response(attestationObject=None),
        _client_data(challenge=None),
        _client_data(challenge=12),
        _client_data(challenge="x" * 129),
        _client_data(challenge="abcde"),  # no base64url has 4n + 1 characters
    ],
)
def test_a_malformed_credential_is_a_422_on_credential(pia, spoil):
    plant_registration(pia, "packed")  # waiting: a refusal is the malformed credential's

    with pytest.raises(ValidationFailed) as refused:
        passkeys.register(pia, spoil(registration("packed")), None)

    assert field_errors(refused.value) == [("credential", "invalid")]
    assert passkeys.list_for(pia) == []


def test_a_user_has_at_most_20_passkeys(session, pia):
    session.add_all(Passkey(user_id=pia.id, credential_id=bytes([n]), public_key=b"key") for n in range(20))
    session.flush()

    with pytest.raises(ValidationFailed) as refused:
        register(pia, "packed")

    assert field_errors(refused.value) == [("credential", "too_many")]


# Login


def test_the_registered_passkey_logs_its_user_in_and_its_counter_goes_up(session, acme, pia):
    passkey = register(pia, "packed")  # the laptop, its counter at 1

    assert log_in(acme, "laptop_2") is pia
    assert passkey.sign_count == 2
    assert utcnow() - passkey.last_used_at < timedelta(minutes=1)
    assert log_in(acme, "laptop_3") is pia
    assert passkey.sign_count == 3
    session.flush()
    assert session.scalar(select(Passkey.sign_count).where(Passkey.id == passkey.id)) == 3


@pytest.mark.parametrize(
    ("stored", "accepted"), [(0, True), (1, True), (2, False), (3, False), (10**9, False)]
)
def test_a_counter_that_did_not_go_up_is_refused(acme, pia, kept, stored, accepted):
    passkey = kept(pia, "laptop", sign_count=stored)  # laptop_2 says 2

    if accepted:
        assert log_in(acme, "laptop_2") is pia
    else:
        with pytest.raises(InvalidCredentials):
            log_in(acme, "laptop_2")
    assert passkey.sign_count == (2 if accepted else stored)


def test_a_replayed_assertion_is_refused(acme, pia, kept):
    kept(pia, "laptop", sign_count=1)
    log_in(acme, "laptop_2")

    with pytest.raises(InvalidCredentials):
        passkeys.authenticate(acme, json.dumps(assertion("laptop_2")))


def test_an_authenticator_that_keeps_no_counter_logs_in_at_zero_each_time(acme, pia, kept):
    passkey = kept(pia, "phone", sign_count=0)

    assert log_in(acme, "phone_0") is pia
    assert (passkey.sign_count, passkey.backed_up) == (0, True)
    assert log_in(acme, "phone_0_again") is pia
    assert (passkey.sign_count, passkey.backed_up) == (0, False)  # BS as the authenticator last said


def test_a_counter_back_at_zero_is_refused(acme, pia, kept):
    passkey = kept(pia, "phone", sign_count=5)

    with pytest.raises(InvalidCredentials):
        log_in(acme, "phone_0")
    assert passkey.sign_count == 5


@pytest.mark.parametrize(
    "case",
    [
        "laptop_wrong_origin",
        "laptop_wrong_rp_id",
        "laptop_no_uv",
        "laptop_not_a_get",  # a registration's clientDataJSON
        "laptop_forged",  # signed by another key
        "laptop_other_user_handle",  # signed, but for another user (who exists)
    ],
)
def test_an_assertion_that_fails_verification_is_refused(session, acme, pia, other, kept, case):
    passkey = kept(pia, "laptop", sign_count=1)
    challenge = plant_login(acme, case)

    with pytest.raises(InvalidCredentials):
        passkeys.authenticate(acme, json.dumps(assertion(case)))

    assert (passkey.sign_count, passkey.last_used_at) == (1, None)
    assert token_of(session, challenge).used_at is not None


def test_an_assertion_without_a_user_handle_is_refused(acme, pia, kept):
    kept(pia, "laptop", sign_count=1)

    with pytest.raises(InvalidCredentials):
        log_in(acme, "laptop_no_user_handle")


@pytest.mark.parametrize(
    "config",
    [{"WEBAUTHN_RP_ID": "shop.example.org"}, {"WEBAUTHN_ORIGINS": "https://shop.example.org"}],
)
def test_an_assertion_for_another_relying_party_is_refused(app, monkeypatch, acme, pia, kept, config):
    kept(pia, "laptop", sign_count=1)
    for key, value in config.items():
        monkeypatch.setitem(app.config, key, value)

    with pytest.raises(InvalidCredentials):
        log_in(acme, "laptop_2")


def test_an_unknown_credential_is_refused(acme, pia, kept):
    kept(pia, "phone")  # the user has a passkey, but not the laptop's

    with pytest.raises(InvalidCredentials):
        log_in(acme, "laptop_2")


def _no_login_challenge(session, acme, globex, pia):
    pass


def _used_login_challenge(session, acme, globex, pia):
    one_time_tokens.consume("passkey_challenge", plant_login(acme, "laptop_2"))


def _expired_login_challenge(session, acme, globex, pia):
    token = token_of(session, plant_login(acme, "laptop_2"))
    token.expires_at = utcnow() - timedelta(seconds=1)
    session.flush()


def _another_accounts_challenge(session, acme, globex, pia):
    plant_login(globex, "laptop_2")


def _a_registration_challenge(session, acme, globex, pia):
    one_time_tokens.issue(
        "passkey_registration",
        user=pia,
        email=None,
        lifetime=passkeys.CHALLENGE_LIFETIME,
        value=challenge_of("assertions", "laptop_2"),
    )


@pytest.mark.parametrize(
    "spoil",
    [
        _no_login_challenge,
        _used_login_challenge,
        _expired_login_challenge,
        _another_accounts_challenge,
        _a_registration_challenge,
    ],
)
def test_an_assertion_without_a_live_challenge_of_the_account_is_refused(
    session, acme, globex, pia, kept, spoil
):
    passkey = kept(pia, "laptop", sign_count=1)
    spoil(session, acme, globex, pia)

    with pytest.raises(InvalidCredentials):
        passkeys.authenticate(acme, json.dumps(assertion("laptop_2")))
    assert passkey.sign_count == 1


def test_a_passkey_does_not_log_in_to_an_account_its_user_is_not_of(globex, pia, kept):
    kept(pia, "laptop", sign_count=1)

    with pytest.raises(InvalidCredentials):
        log_in(globex, "laptop_2")  # a challenge of globex, a user of acme


def test_a_suspended_user_cannot_log_in_with_a_passkey(session, acme, pia, kept):
    passkey = kept(pia, "laptop", sign_count=1)
    pia.status = "suspended"
    session.flush()

    with pytest.raises(InvalidCredentials):
        log_in(acme, "laptop_2")
    assert (passkey.sign_count, passkey.last_used_at) == (1, None)


@pytest.mark.parametrize(
    "text",
    ["", "null", "[]", "{}", "not json", '{"id": "x"', json.dumps(assertion("laptop_2"))[:-1], "\x00"],
)
def test_a_malformed_assertion_is_refused(acme, pia, kept, text):
    kept(pia, "laptop", sign_count=1)
    plant_login(acme, "laptop_2")

    with pytest.raises(InvalidCredentials):
        passkeys.authenticate(acme, text)


# Options, the relying party, the passkeys kept


def test_the_relying_party_is_the_storefronts_by_default(app, monkeypatch):
    monkeypatch.setitem(app.config, "WEBAUTHN_RP_ID", None)
    monkeypatch.setitem(app.config, "WEBAUTHN_ORIGINS", None)

    assert passkeys.relying_party() == passkeys.RelyingParty(
        "localhost", "localhost", ["http://localhost:3000"]
    )


def test_the_relying_party_refuses_any_origin(app, monkeypatch):
    monkeypatch.setitem(app.config, "WEBAUTHN_ORIGINS", "*")

    with pytest.raises(ValueError, match="FRESHCOM_WEBAUTHN_ORIGINS"):
        passkeys.relying_party()


def test_a_live_authenticator_answers_the_options_the_service_issues(app, monkeypatch, session, acme, pia):
    """Options out and answers in, with random challenges (tests/webauthn_helpers.py's authenticator)."""
    monkeypatch.setitem(app.config, "WEBAUTHN_RP_ID", None)
    monkeypatch.setitem(app.config, "WEBAUTHN_ORIGINS", None)
    authenticator = Authenticator()

    creation = passkeys.registration_options(pia, acme)
    passkey = passkeys.register(pia, authenticator.create(creation), "Software")
    request = passkeys.login_options(acme)
    user = passkeys.authenticate(acme, json.dumps(authenticator.get(request)))

    assert creation["rp"]["id"] == "localhost"
    assert creation["user"]["id"] == b64url(pia.id.bytes)
    assert creation["authenticatorSelection"]["residentKey"] == "required"
    assert creation["authenticatorSelection"]["userVerification"] == "required"
    assert (request["rpId"], request["allowCredentials"], request["userVerification"]) == (
        "localhost",
        [],
        "required",
    )
    assert (user, passkey.sign_count) == (pia, 1)
    token = token_of(session, request["challenge"])
    assert (token.payload, token.user_id, token.used_at is not None) == (
        {"account_id": str(acme.id)},
        None,
        True,
    )
    lifetime = token.expires_at - token.inserted_at
    assert abs(lifetime - timedelta(minutes=5)) < timedelta(seconds=1)


def test_registration_options_exclude_the_users_passkeys(acme, pia, other, kept):
    laptop = kept(pia, "laptop")
    kept(other, "phone")

    options = passkeys.registration_options(pia, acme)

    assert [c["id"] for c in options["excludeCredentials"]] == [b64url(laptop.credential_id)]


def test_a_user_gets_only_its_own_passkey(pia, other, kept):
    mine, theirs = kept(pia, "laptop"), kept(other, "phone")

    assert passkeys.get_own(pia, str(mine.id)) is mine
    for passkey_id in (str(theirs.id), "not-a-uuid", str(uuid.uuid4())):
        with pytest.raises(NotFound):
            passkeys.get_own(pia, passkey_id)


def test_a_removed_passkey_no_longer_logs_in(session, acme, pia, kept):
    passkeys.remove(kept(pia, "laptop", sign_count=1))
    session.flush()

    assert passkeys.list_for(pia) == []
    with pytest.raises(InvalidCredentials):
        log_in(acme, "laptop_2")


class BrokenKeyAuthenticator(Authenticator):
    """An authenticator whose credential's public key is an RSA key no signature can match."""

    def _cose_key(self) -> dict:
        return {1: 3, 3: -257, -1: b"\0\0\0", -2: b"\x01\x00\x01"}


def test_a_credential_whose_public_key_is_unusable_is_refused_at_registration(app, monkeypatch, acme, pia):
    monkeypatch.setitem(app.config, "WEBAUTHN_RP_ID", None)
    monkeypatch.setitem(app.config, "WEBAUTHN_ORIGINS", None)
    creation = passkeys.registration_options(pia, acme)

    with pytest.raises(ValidationFailed) as refused:
        passkeys.register(pia, BrokenKeyAuthenticator().create(creation), "Broken")

    assert field_errors(refused.value) == [("credential", "invalid")]
    assert passkeys.list_for(pia) == []


@pytest.fixture
def localhost(app, monkeypatch):
    """The default relying party (localhost), which tests/webauthn_helpers.py's authenticator uses."""
    monkeypatch.setitem(app.config, "WEBAUTHN_RP_ID", None)
    monkeypatch.setitem(app.config, "WEBAUTHN_ORIGINS", None)


def test_a_login_with_a_username_lists_its_passkeys_and_takes_only_theirs(localhost, acme, pia, other):
    mine, theirs = Authenticator(), Authenticator()
    passkeys.register(pia, mine.create(passkeys.registration_options(pia, acme)), "Mine")
    passkeys.register(other, theirs.create(passkeys.registration_options(other, acme)), "Theirs")

    request = passkeys.login_options(acme, "PIA")
    assert [c["id"] for c in request["allowCredentials"]] == [b64url(mine.credential_id)]
    assert passkeys.authenticate(acme, json.dumps(mine.get(request))) == pia

    request = passkeys.login_options(acme, "pia")
    with pytest.raises(InvalidCredentials):  # another user's passkey, for pia's challenge
        passkeys.authenticate(acme, json.dumps(theirs.get(request)))


def test_a_login_with_a_username_needs_no_user_handle(localhost, acme, pia):
    """A credential listed in allowCredentials may come back without its user handle (WebAuthn L3 7.2)."""
    authenticator = Authenticator()
    passkeys.register(pia, authenticator.create(passkeys.registration_options(pia, acme)), None)
    assertion = authenticator.get(passkeys.login_options(acme, "pia"))
    del assertion["response"]["userHandle"]

    assert passkeys.authenticate(acme, json.dumps(assertion)) == pia


def test_an_unknown_username_gets_a_stable_made_up_credential(localhost, acme, globex, pia):
    first = passkeys.login_options(acme, "nobody@example.com")
    again = passkeys.login_options(acme, "Nobody@Example.com")
    elsewhere = passkeys.login_options(globex, "nobody@example.com")
    without_passkeys = passkeys.login_options(acme, "pia")

    ids = [[c["id"] for c in options["allowCredentials"]] for options in (first, again, elsewhere)]
    assert len(ids[0]) == 1 and ids[0] == ids[1] != ids[2]
    assert len(without_passkeys["allowCredentials"]) == 1  # a user without passkeys looks the same
    assert len(from_b64url(ids[0][0])) == 32


def test_a_counter_a_concurrent_login_kept_already_is_refused(session, localhost, acme, pia):
    """Two logins read the counter at 1; the first keeps 5; the second, with 3, must not pass."""
    authenticator = Authenticator()
    passkeys.register(pia, authenticator.create(passkeys.registration_options(pia, acme)), None)
    passkeys.authenticate(acme, json.dumps(authenticator.get(passkeys.login_options(acme))))
    (passkey,) = passkeys.list_for(pia)
    assert passkey.sign_count == 1
    session.execute(
        update(Passkey)
        .where(Passkey.id == passkey.id)
        .values(sign_count=5)
        .execution_options(synchronize_session=False)
    )  # the other login's write; this one still holds 1

    with pytest.raises(InvalidCredentials):
        passkeys._record_use(passkey, 3, False)
    passkeys._record_use(passkey, 6, False)
    assert passkey.sign_count == 6
