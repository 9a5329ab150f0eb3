"""Passwords: argon2id, length policy without truncation, rehash when the cost changes."""

from importlib.metadata import metadata

import pytest
from zxcvbn.frequency_lists import FREQUENCY_LISTS

from freshcom_customers.config import DEFAULTS
from freshcom_customers.errors import ValidationFailed
from freshcom_customers.services import passwords, users
from tests.logcapture import app_factory


@pytest.mark.parametrize("password", ["seven77", "x" * 129, ""])
def test_policy_refuses_lengths_outside_8_to_128(password):
    with pytest.raises(ValidationFailed) as error:
        passwords.check_policy(password)
    assert error.value.errors[0].code == "length"
    assert error.value.errors[0].field == "password"


@pytest.mark.parametrize("password", ["eight8x8", "x" * 128, "correct horse battery staple", "pässwörd✓"])
def test_policy_accepts_any_composition_within_the_lengths(password):
    passwords.check_policy(password)


@pytest.mark.parametrize("password", ["password", "12345678", "Qwertyuiop", "iloveyou", "sunshine"])
def test_policy_refuses_common_passwords_whatever_their_case(password):
    with pytest.raises(ValidationFailed) as error:
        passwords.check_policy(password)
    assert error.value.errors[0].code == "invalid"


def test_the_common_list_holds_at_least_the_10000_most_common():
    assert len(passwords.common_passwords()) >= 10_000


def test_hash_is_argon2id_and_verifies(app):
    with app.app_context():
        hashed = passwords.hash_password("a long passphrase")
        assert hashed.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
        assert passwords.verify("a long passphrase", hashed) == (True, None)
        assert passwords.verify("a long passphrasf", hashed)[0] is False


def test_no_truncation_long_passwords_differ_in_their_last_character(app):
    with app.app_context():
        hashed = passwords.hash_password("p" * 127 + "a")
        assert passwords.verify("p" * 127 + "b", hashed)[0] is False


def test_login_rehashes_when_the_parameters_change(app, account, session):
    user = account.owner
    old_hash = user.password_hash
    app.extensions["freshcom_passwords"] = passwords.build_context("m=2048,t=1,p=1")
    try:
        users.authenticate(None, user.username, account.owner_password)
    finally:
        app.extensions["freshcom_passwords"] = passwords.build_context("m=1024,t=1,p=1")
    assert user.password_hash != old_hash
    assert "$m=2048,t=1,p=1$" in user.password_hash


# OWASP Password Storage Cheat Sheet: argon2id, minimum memory (KiB) for each iteration count, p=1.
# ASVS 5.0 appendix C names the first (46 MiB, t=1).
OWASP_ARGON2ID_MINIMUM = {1: 47104, 2: 19456, 3: 12288, 4: 9216, 5: 7168}


def test_production_defaults_meet_asvs_appendix_c():
    params = passwords.parse_hash_params(DEFAULTS["PASSWORD_HASH_PARAMS"])
    rounds = min(params["rounds"], max(OWASP_ARGON2ID_MINIMUM))
    assert params["memory_cost"] >= OWASP_ARGON2ID_MINIMUM[rounds]
    assert params["parallelism"] >= 1
    assert passwords.build_context(DEFAULTS["PASSWORD_HASH_PARAMS"]).hash("x" * 8).startswith("$argon2id$")


def test_the_environment_sets_the_hash_parameters(app, app_config, monkeypatch):
    monkeypatch.setenv("FRESHCOM_PASSWORD_HASH_PARAMS", "m=2048,t=2,p=1")
    settings = {k: v for k, v in app_config.items() if k != "PASSWORD_HASH_PARAMS"}
    with app_factory(app, settings) as make_app, make_app().app_context():
        assert passwords.hash_password("a long passphrase").startswith("$argon2id$v=19$m=2048,t=2,p=1$")


def test_no_truncation_of_multibyte_passwords_at_128_characters(app):
    """128 characters of 4 bytes each: 512 bytes, all of them hashed."""
    with app.app_context():
        hashed = passwords.hash_password("😀" * 127 + "a")
        assert passwords.verify("😀" * 127 + "b", hashed)[0] is False
        assert passwords.verify("😀" * 127 + "a", hashed)[0] is True


def test_the_common_list_is_a_permissively_licensed_frequency_list():
    """zxcvbn (MIT) ships Xato's 30,000 most common passwords, most common first."""
    assert metadata("zxcvbn")["License"] == "MIT"
    ranked = FREQUENCY_LISTS["passwords"]
    assert len(ranked) == 30_000
    assert ranked[:3] == ["123456", "password", "12345678"]
    assert passwords.common_passwords() == frozenset(ranked)
