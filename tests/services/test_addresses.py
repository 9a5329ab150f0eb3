"""The address book in the service layer: country codes, lengths, the limit of 50, the defaults."""

import uuid

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from freshcom_customers.errors import NotFound, ValidationFailed
from freshcom_customers.extensions import db
from freshcom_customers.models import MAX_ADDRESSES, Address
from freshcom_customers.services import addresses, customers
from tests.statements import statements

HOME = {"name": "Amy Li", "line_one": "1 Main St", "city": "Vancouver", "country_code": "CA"}


@pytest.fixture
def amy(account):
    return customers.create_customer(account.live, {"email": "amy@example.com", "first_name": "Amy"})


@pytest.fixture
def bob(account):
    return customers.create_customer(account.live, {"email": "bob@example.com", "first_name": "Bob"})


def add(customer, **attrs) -> Address:
    return addresses.create_address(customer, {**HOME, **attrs})


def errors_of(error: pytest.ExceptionInfo) -> set:
    return {(e.code, e.field) for e in error.value.errors}


def defaults(session, customer) -> dict:
    """The ids of the customer's default shipping and billing addresses, as the database has them."""
    found = {}
    for field in addresses.DEFAULTS:
        column = getattr(Address, field)
        query = select(Address.id).where(Address.customer_id == customer.id, column)
        found[field] = session.scalars(query).all()
    return found


# Country codes


def test_the_country_codes_are_iso_3166_1s_assigned_ones():
    assert len(addresses.COUNTRY_CODES) == 249
    assert {"CA", "US", "GB", "DE", "JP", "AQ", "BQ", "SS", "SX", "PS"} <= addresses.COUNTRY_CODES
    assert not {"EU", "EZ", "UN", "QO", "ZZ", "XK", "XA", "AC", "IC", "UK"} & addresses.COUNTRY_CODES


@pytest.mark.parametrize("given", ["ca", "Ca", " CA "])
def test_a_country_code_is_read_in_any_case_and_stored_upper_case(amy, given):
    assert add(amy, country_code=given).country_code == "CA"


@pytest.mark.parametrize(
    ("attrs", "expected"),
    [
        ({"country_code": None}, {("required", "country_code")}),
        ({"country_code": ""}, {("required", "country_code")}),
        ({"country_code": "EU"}, {("inclusion", "country_code")}),
        ({"country_code": "UK"}, {("inclusion", "country_code")}),
        ({"country_code": "CAN"}, {("inclusion", "country_code")}),
        ({"country_code": 1}, {("inclusion", "country_code")}),
        ({"name": "x" * 256, "postal_code": "9" * 33}, {("length", "name"), ("length", "postal_code")}),
        ({"phone_number": 6045550100}, {("invalid", "phone_number")}),
        ({"custom_data": [1]}, {("invalid", "custom_data")}),
        ({"is_default_shipping": "yes"}, {("invalid", "is_default_shipping")}),
    ],
)
def test_an_address_that_breaks_a_rule_is_refused_whole(session, amy, attrs, expected):
    with pytest.raises(ValidationFailed) as raised:
        add(amy, **attrs)
    assert errors_of(raised) == expected
    assert session.scalar(select(func.count()).select_from(Address)) == 0


def test_a_new_address_needs_a_country_an_update_only_when_it_sends_one(amy):
    with pytest.raises(ValidationFailed) as raised:
        addresses.create_address(amy, {"city": "Vancouver"})
    assert errors_of(raised) == {("required", "country_code")}
    address = add(amy)
    assert addresses.update_address(address, {"city": "Victoria"}).country_code == "CA"


def test_the_longest_values_fit_their_columns(amy):
    longest = {field: "x" * length for field, length in addresses.TEXT_FIELDS.items()}
    address = add(amy, **longest)
    assert address.postal_code == "x" * 32 and address.line_one == "x" * 255


def test_blank_text_is_none_and_phone_numbers_are_text(amy):
    address = add(amy, company="  ", line_two="", phone_number="+1 (604) 555-0100 ext. 7")
    assert (address.company, address.line_two, address.phone_number) == (
        None,
        None,
        "+1 (604) 555-0100 ext. 7",
    )
    assert (address.custom_data, address.is_default_shipping, address.is_default_billing) == (
        {},
        False,
        False,
    )


# The limit


def test_a_customer_has_at_most_50_addresses(session, amy, bob):
    for number in range(MAX_ADDRESSES):
        add(amy, line_one=f"{number} Main St")
    with pytest.raises(ValidationFailed) as raised:
        add(amy)
    assert errors_of(raised) == {("invalid", "customer_id")}
    assert session.scalar(select(func.count()).where(Address.customer_id == amy.id)) == MAX_ADDRESSES
    add(bob)  # another customer's book has its own limit
    addresses.delete_address(session.scalars(select(Address).where(Address.customer_id == amy.id)).first())
    add(amy)  # a deleted address makes room


# Defaults


def test_a_new_default_takes_it_from_the_old_one_of_its_kind_only(session, amy):
    first = add(amy, is_default_shipping=True, is_default_billing=True)
    second = add(amy, is_default_shipping=True)
    assert defaults(session, amy) == {"is_default_shipping": [second.id], "is_default_billing": [first.id]}
    assert (first.is_default_shipping, first.is_default_billing) == (False, True)


def test_an_update_that_sets_a_default_clears_it_on_the_others(session, amy):
    first = add(amy, is_default_shipping=True)
    second = add(amy)
    addresses.update_address(second, {"is_default_shipping": True, "is_default_billing": True})
    assert defaults(session, amy) == {"is_default_shipping": [second.id], "is_default_billing": [second.id]}
    addresses.update_address(second, {"is_default_shipping": True})  # again: it stays
    assert defaults(session, amy)["is_default_shipping"] == [second.id]
    assert not first.is_default_shipping


def test_clearing_a_default_leaves_the_customer_without_one(session, amy):
    first = add(amy, is_default_billing=True)
    add(amy)
    addresses.update_address(first, {"is_default_billing": False})
    assert defaults(session, amy) == {"is_default_shipping": [], "is_default_billing": []}


def test_defaults_are_per_customer(session, amy, bob):
    mine = add(amy, is_default_shipping=True)
    theirs = add(bob, is_default_shipping=True)
    assert defaults(session, amy)["is_default_shipping"] == [mine.id]
    assert defaults(session, bob)["is_default_shipping"] == [theirs.id]


def test_an_update_reads_the_address_again_once_it_holds_the_lock(session, amy):
    """Another request took the default from this address after it was read: setting it again works."""
    first = add(amy, is_default_shipping=True)
    second = add(amy)
    session.execute(
        update(Address)
        .where(Address.customer_id == amy.id)
        .values(is_default_shipping=Address.id == second.id)
        .execution_options(synchronize_session=False)
    )
    assert first.is_default_shipping  # what this request read before
    addresses.update_address(first, {"is_default_shipping": True})
    assert defaults(session, amy)["is_default_shipping"] == [first.id]


def test_the_database_refuses_two_defaults_of_a_kind(session, account, amy):
    first = add(amy, is_default_shipping=True)
    with pytest.raises(IntegrityError), session.begin_nested():
        session.add(
            Address(
                account_id=account.live.id,
                customer_id=amy.id,
                country_code="CA",
                is_default_shipping=True,
                custom_data={},
            )
        )
        session.flush()
    assert defaults(session, amy)["is_default_shipping"] == [first.id]


# Reading


def test_an_address_is_found_in_its_account_and_for_its_customer_only(account, other_account, amy, bob):
    address = add(amy)
    assert addresses.get_address(account.live, address.id, visible_to=amy.id) is address
    for who, customer_id in ((account.live, bob.id), (other_account.live, None)):
        with pytest.raises(NotFound):
            addresses.get_address(who, address.id, visible_to=customer_id)
    with pytest.raises(NotFound):
        addresses.get_address(account.live, "not-a-uuid")


def test_lists_are_newest_first_filtered_paged_and_counted(account, amy, bob):
    mine = [add(amy, line_one=f"{n} Main St") for n in range(3)]
    theirs = add(bob)
    rows, total, all_count = addresses.list_addresses(account.live, page=1, size=2)
    assert (rows, total, all_count) == ([theirs, mine[2]], 4, 4)
    rows, total, all_count = addresses.list_addresses(account.live, customer_id=str(amy.id), page=2, size=2)
    assert (rows, total, all_count) == ([mine[0]], 3, 4)
    rows, total, all_count = addresses.list_addresses(account.live, visible_to=bob.id, page=1, size=25)
    assert (rows, total, all_count) == ([theirs], 1, 1)
    assert addresses.list_addresses(account.live, customer_id="nope", page=1, size=25)[:2] == ([], 0)


def test_the_addresses_of_a_page_of_customers_take_one_query(session, amy, bob):
    mine, theirs = add(amy), add(bob)
    nobody = uuid.uuid4()
    with statements(db.engine) as seen:
        found = addresses.addresses_of([amy.id, bob.id, nobody])
    assert found == {amy.id: [mine], bob.id: [theirs], nobody: []}
    assert len(seen) == 1


def test_staff_name_a_customer_of_their_account(account, other_account, amy):
    assert addresses.find_customer(account.live, str(amy.id)) is amy
    for customer_id, code in ((None, "required"), (str(uuid.uuid4()), "invalid"), ("x", "invalid")):
        with pytest.raises(ValidationFailed) as raised:
            addresses.find_customer(account.live, customer_id)
        assert errors_of(raised) == {(code, "customer_id")}
    with pytest.raises(ValidationFailed):
        addresses.find_customer(other_account.live, str(amy.id))


def test_deleting_a_customer_deletes_its_addresses(session, amy):
    add(amy, is_default_shipping=True)
    customers.delete_customer(amy)
    assert session.scalar(select(func.count()).select_from(Address)) == 0
