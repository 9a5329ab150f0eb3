"""Passwords: argon2id, length policy without truncation, rehash when the cost changes."""

import pytest

from freshcom_customers.errors import ValidationFailed
from freshcom_customers.services import passwords, users


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
