"""Managing users through the API: creation, updates and deletion, with customers kept in step."""

import pytest
from sqlalchemy import select

from freshcom_customers.errors import AccessDenied, Taken, ValidationFailed
from freshcom_customers.models import Customer, RefreshToken, User
from freshcom_customers.services import accounts, customers, passwords, refresh_tokens, user_management
from tests.test_identifiers import LOOK_ALIKES

STAFF = {"username": "ann", "email": "ann@acme.test", "password": "ann-password-1", "role": "manager"}
ROY = {"email": "roy@example.com", "password": "roy-password-1", "first_name": "Roy", "last_name": "Bao"}


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
    return user_management.create_user(account.live, dict(STAFF), by_role="owner")


@pytest.fixture
def roy(account) -> User:
    return user_management.create_user(account.live, dict(ROY), by_role="guest")


def customer_of(session, user) -> Customer | None:
    return session.scalar(select(Customer).where(Customer.user_id == user.id))


# create_user


def test_staff_create_a_staff_user_with_a_derived_name(ann, account):
    assert (ann.account_id, ann.role, ann.status, ann.username) == (
        account.live.id,
        "manager",
        "active",
        "ann",
    )
    assert passwords.verify("ann-password-1", ann.password_hash)[0]
    user = user_management.create_user(
        account.live, {**STAFF, "username": "bo", "email": None, "first_name": "Bo"}, by_role="owner"
    )
    assert user.name == "Bo"


def test_a_guest_creates_a_registered_customer_with_the_user(roy, session, account):
    customer = customer_of(session, roy)
    assert (roy.role, roy.username, roy.name) == ("customer", "roy@example.com", "Roy Bao")
    assert (customer.account_id, customer.status, customer.email, customer.name) == (
        account.live.id,
        "registered",
        "roy@example.com",
        "Roy Bao",
    )


def test_the_guests_customer_rules_apply(account, session):
    with pytest.raises(ValidationFailed) as error:
        user_management.create_user(account.live, {"password": "roy-password-1"}, by_role="guest")
    assert fields_of(error) == {("email", "required")}
    with pytest.raises(AccessDenied):
        user_management.create_user(account.live, {**ROY, "role": "developer"}, by_role="guest")


@pytest.mark.parametrize(
    ("role", "by_role"), [("administrator", "developer"), ("manager", "support_specialist")]
)
def test_no_one_grants_a_role_above_their_own(account, role, by_role):
    with pytest.raises(AccessDenied):
        user_management.create_user(account.live, {**STAFF, "role": role}, by_role=by_role)


def test_a_default_username_that_is_taken_is_reported_on_email(account, ann):
    with pytest.raises(Taken) as error:
        user_management.create_user(
            account.live, {**STAFF, "username": None, "email": "ANN"}, by_role="owner"
        )
    assert fields_of(error) == {("email", "taken")}


# update_user


def test_a_role_change_bumps_the_token_generation_but_keeps_refresh_tokens(ann, account, session):
    session_of(ann, account.live)
    user_management.update_user(ann, {"role": "developer"}, by_role="owner")
    assert (ann.role, ann.token_generation) == ("developer", 1)
    assert len(live_refresh_tokens(session, ann)) == 1


def test_a_profile_change_keeps_the_tokens(ann):
    user_management.update_user(
        ann, {"role": "manager", "status": "active", "phone_number": "555"}, by_role="owner"
    )
    assert (ann.phone_number, ann.token_generation) == ("555", 0)


def test_suspension_revokes_and_reactivation_does_not_revive(ann, account, session):
    session_of(ann, account.live)
    user_management.update_user(ann, {"status": "suspended"}, by_role="administrator")
    assert (ann.status, ann.token_generation) == ("suspended", 1)
    assert live_refresh_tokens(session, ann) == []
    user_management.update_user(ann, {"status": "active"}, by_role="administrator")
    assert (ann.status, ann.token_generation) == ("active", 1)


def test_a_customer_users_status_and_profile_move_its_customer(roy, session):
    user_management.update_user(roy, {"status": "suspended", "phone_number": "555"}, by_role="developer")
    customer = customer_of(session, roy)
    assert (roy.status, customer.status, customer.phone_number) == ("suspended", "suspended", "555")
    user_management.update_user(roy, {"status": "active"}, by_role="developer")
    assert (roy.status, customer.status) == ("active", "registered")


def test_a_customers_status_moves_its_user(roy, session):
    customers.update_customer(customer_of(session, roy), {"status": "suspended"})
    assert roy.status == "suspended"


@pytest.mark.parametrize(
    ("attrs", "by_role", "error"),
    [
        ({"password": "new-password-1"}, "owner", ValidationFailed),
        ({"role": "owner"}, "owner", ValidationFailed),
        ({"role": "customer"}, "owner", ValidationFailed),
        ({"role": "administrator"}, "developer", AccessDenied),
    ],
)
def test_staff_user_update_refusals(ann, attrs, by_role, error):
    with pytest.raises(error):
        user_management.update_user(ann, attrs, by_role=by_role)


def test_a_higher_role_is_out_of_reach(account):
    admin = user_management.create_user(account.live, {**STAFF, "role": "administrator"}, by_role="owner")
    with pytest.raises(AccessDenied):
        user_management.update_user(admin, {"name": "x"}, by_role="developer")
    with pytest.raises(AccessDenied):
        user_management.delete_user(admin, by_role="developer")


def test_a_username_that_was_the_email_follows_it(account):
    user = user_management.create_user(account.live, {**STAFF, "username": None}, by_role="owner")
    user_management.update_user(user, {"email": "Ann.Lee@acme.test"}, by_role="owner")
    assert (user.email, user.username) == ("ann.lee@acme.test", "ann.lee@acme.test")


def test_a_username_that_was_a_look_alike_of_the_email_follows_it(account):
    user = user_management.create_user(
        account.live, {**STAFF, "username": None, "email": "ANN@\uff41cme.test"}, by_role="owner"
    )
    assert (user.email, user.username) == ("ann@acme.test", "ann@acme.test")
    user.username = "\uff41nn@acme.test"  # kept by a collision in migration 0007: not canonical
    user_management.update_user(user, {"email": "ann.lee@acme.test"}, by_role="owner")
    assert (user.email, user.username) == ("ann.lee@acme.test", "ann.lee@acme.test")


# Look-alikes: usernames and emails compared as people read them (freshcom_customers/identifiers.py)


@pytest.mark.parametrize(("plain", "look_alike"), LOOK_ALIKES)
def test_a_look_alike_of_a_taken_email_or_username_is_taken(account, session, plain, look_alike):
    roy = user_management.create_user(account.live, {**ROY, "email": look_alike}, by_role="guest")
    assert (roy.username, roy.email_key) == (plain, plain)
    with pytest.raises(Taken) as error, session.begin_nested():
        user_management.create_user(account.live, {**ROY, "email": plain.upper()}, by_role="guest")
    assert fields_of(error) == {("email", "taken")}
    with pytest.raises(Taken) as error, session.begin_nested():
        user_management.create_user(account.live, {**STAFF, "username": look_alike}, by_role="owner")
    assert fields_of(error) == {("username", "taken")}


def test_the_email_key_follows_the_email(ann):
    user_management.update_user(ann, {"email": "Stra\u00dfe@Acme.test"}, by_role="owner")
    assert (ann.email, ann.email_key) == ("stra\u00dfe@acme.test", "strasse@acme.test")
    user_management.update_user(ann, {"email": None}, by_role="owner")
    assert (ann.email, ann.email_key) == (None, None)


@pytest.mark.parametrize("field", ["username", "email"])
def test_a_value_that_outgrows_its_column_once_normalised_is_refused(account, field):
    # 120 ligatures, 240 characters: 360 once their compatibility forms are spelled out.
    value = "\ufb03" * 120 + "@x.test"
    with pytest.raises(ValidationFailed) as error:
        user_management.create_user(account.live, {**STAFF, field: value}, by_role="owner")
    assert fields_of(error) == {(field, "length")}


# update_own_user


@pytest.mark.parametrize("attrs", [{"role": "developer"}, {"status": "suspended"}])
def test_no_one_changes_their_own_role_or_status(ann, attrs):
    with pytest.raises(AccessDenied):
        user_management.update_own_user(ann, attrs, role="manager")


def test_a_password_change_keeps_the_callers_family(ann, account, session):
    own = refresh_tokens.issue(ann, account.live, accounts.default_client(account.live))
    session_of(ann, account.live)
    session_of(ann, account.test)
    user_management.update_own_user(
        ann,
        {"password": "new-password-1", "current_password": "ann-password-1"},
        role="manager",
        session_family=own.family_id,
    )
    assert [token.family_id for token in live_refresh_tokens(session, ann)] == [own.family_id]
    assert ann.token_generation == 0


def test_a_customer_updating_itself_moves_its_customer(roy, session):
    user_management.update_own_user(roy, {"last_name": "Lee", "status": "active"}, role="customer")
    customer = customer_of(session, roy)
    assert (customer.last_name, customer.name, roy.name) == ("Lee", "Roy Lee", "Roy Lee")


# delete_user


def test_deleting_a_customer_user_deletes_its_customer(roy, session):
    customer_id = customer_of(session, roy).id
    user_management.delete_user(roy, by_role="developer")
    assert session.get(Customer, customer_id) is None
    assert session.scalar(select(User).where(User.username == "roy@example.com")) is None


def test_deleting_a_staff_user(ann, session):
    user_management.delete_user(ann, by_role="administrator")
    assert session.scalar(select(User).where(User.username == "ann")) is None
