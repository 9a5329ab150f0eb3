"""User primitives: finding a managed user, authenticating, and changing a password."""

import pytest
from sqlalchemy import select

from freshcom_customers.errors import NotFound, ValidationFailed
from freshcom_customers.models import RefreshToken, User
from freshcom_customers.services import accounts, passwords, refresh_tokens, users
from tests import factories
from tests.test_identifiers import LOOK_ALIKES


def fields_of(error) -> set:
    return {(e.field, e.code) for e in error.value.errors}


def live_refresh_tokens(session, user) -> list:
    query = select(RefreshToken).where(RefreshToken.user_id == user.id, RefreshToken.revoked_at.is_(None))
    return session.scalars(query.execution_options(populate_existing=True)).all()


def session_of(user, account):
    """Start a login session: issue a refresh token for the user through the default client."""
    return refresh_tokens.issue(user, account, accounts.default_client(account)).value


@pytest.fixture
def ann(account) -> User:
    return factories.staff_user(
        account.live, username="ann", password="ann-password-1", email="ann@acme.test"
    )


# get_managed_user


def test_only_the_accounts_managed_users_are_found(account, other_account, ann):
    assert users.get_managed_user(account.live, str(ann.id)) is ann
    for found_in, user_id in [
        (other_account.live, ann.id),
        (account.test, ann.id),
        (account.live, account.owner.id),
        (account.live, "nope"),
    ]:
        with pytest.raises(NotFound):
            users.get_managed_user(found_in, user_id)


# authenticate


@pytest.mark.parametrize(("plain", "look_alike"), LOOK_ALIKES)
def test_a_look_alike_authenticates(account, plain, look_alike):
    roy = users.create_managed_user(
        account.live, username=plain, password="roy-password-1", role="customer", email=plain
    )
    assert users.authenticate(account.live, f" {look_alike.upper()}", "roy-password-1") is roy


# change_password


def test_a_password_change_needs_the_current_password(ann):
    for current in (None, "", "wrong-password"):
        with pytest.raises(ValidationFailed) as error:
            users.change_password(ann, current, "new-password-1")
        assert fields_of(error) == {("current_password", "invalid")}


def test_a_password_change_revokes_refresh_tokens_but_keeps_access_tokens(ann, account, session):
    session_of(ann, account.live)
    session_of(ann, account.test)
    users.change_password(ann, "ann-password-1", "new-password-1")
    assert passwords.verify("new-password-1", ann.password_hash)[0]
    assert live_refresh_tokens(session, ann) == []
    assert ann.token_generation == 0


def test_a_new_password_follows_the_policy(ann):
    with pytest.raises(ValidationFailed) as error:
        users.change_password(ann, "ann-password-1", "password")
    assert fields_of(error) == {("password", "invalid")}
