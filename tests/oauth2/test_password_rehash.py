"""The password grant rehashes a password when the argon2 parameters change (verify_and_update)."""

import pytest
from sqlalchemy import select

from freshcom_customers.models import User
from freshcom_customers.services import passwords
from tests.conftest import REGISTRATION, TEST_HASH_PARAMS

ROY, PASSWORD = REGISTRATION["email"], REGISTRATION["password"]
STRONGER = "m=2048,t=2,p=1"


@pytest.fixture
def stored_hash(session, roy):
    def stored_hash() -> str:
        session.expire_all()
        return session.scalar(select(User.password_hash).where(User.username == ROY))

    return stored_hash


@pytest.fixture
def stronger(app, monkeypatch):
    """The deployment raises the cost: a new FRESHCOM_PASSWORD_HASH_PARAMS, a restart."""
    monkeypatch.setitem(app.extensions, "freshcom_passwords", passwords.build_context(STRONGER))


def test_a_login_rehashes_the_password_with_the_new_parameters(auth, account, stored_hash, stronger):
    old = stored_hash()
    assert f"$argon2id$v=19${TEST_HASH_PARAMS}$" in old

    auth.login(account, ROY, PASSWORD)

    new = stored_hash()
    assert new.startswith(f"$argon2id$v=19${STRONGER}$")
    auth.login(account, ROY, PASSWORD)  # the new hash verifies the same password
    assert stored_hash() == new  # and is not redone at every login


def test_a_wrong_password_rehashes_nothing(auth, account, stored_hash, stronger):
    old = stored_hash()
    auth.token(
        400, grant_type="password", username=ROY, password="not-roys-password", scope=f"aid:{account.live.id}"
    )
    assert stored_hash() == old


def test_unchanged_parameters_keep_the_hash(auth, account, stored_hash):
    old = stored_hash()
    auth.login(account, ROY, PASSWORD)
    assert stored_hash() == old
