"""Orders in the service layer: rules, customers, tenancy, lists and what customers' changes do to them."""

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from freshcom_customers.errors import NotFound, Taken, ValidationFailed
from freshcom_customers.models import Order
from freshcom_customers.services import customers, orders
from tests.statements import statements

ITEM = {"name": "Tea", "sku": "T-1", "quantity": 2, "unit_price_cents": 450, "total_cents": 900}


@pytest.fixture
def customer(account):
    return customers.create_customer(account.live, {"email": "amy@example.com", "first_name": "Amy"})


def create(account, customer=None, **attrs) -> Order:
    return orders.create_order(account.live, {"currency": "USD", **attrs}, customer)


def errors_of(error: pytest.ExceptionInfo) -> set:
    return {(e.code, e.field) for e in error.value.errors}


def count_orders(session, account) -> int:
    return session.scalar(select(func.count()).select_from(Order).where(Order.account_id == account.id))


# Create


def test_an_order_has_defaults(account):
    order = create(account)
    assert (order.status, order.payment_status, order.fulfillment_status) == ("opened", "pending", "pending")
    assert (order.sub_total_cents, order.tax_cents, order.shipping_cents, order.total_cents) == (0, 0, 0, 0)
    assert (order.line_items, order.custom_data, order.customer_id, order.email) == ([], {}, None, None)
    assert order.account_id == account.live.id
    assert order.inserted_at.tzinfo is not None


def test_an_order_for_a_customer_takes_its_email(account, customer):
    order = create(account, customer)
    assert order.customer_id == customer.id
    assert order.email == "amy@example.com"


def test_an_order_keeps_its_own_email(account, customer):
    assert create(account, customer, email=" Roy@Example.COM ").email == "roy@example.com"


def test_line_items_keep_the_contracts_keys_only(account):
    order = create(
        account, line_items=[{**ITEM, "colour": "green"}, {**ITEM, "sku": None}, {**ITEM, "sku": ""}]
    )
    assert order.line_items == [ITEM, {**ITEM, "sku": None}, {**ITEM, "sku": None}]


def test_placed_at_is_stored_in_utc(account, session):
    placed = datetime(2024, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    order = create(account, placed_at=placed)
    session.commit()
    session.expire_all()
    assert session.get(Order, order.id).placed_at == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize("code", [None, "", "  "])
def test_blank_codes_are_no_code_and_do_not_collide(account, code):
    assert create(account, code=code).code is None
    assert create(account, code=code).code is None


def test_code_is_unique_per_account(account, other_account, session):
    create(account, code="O-1")
    orders.create_order(other_account.live, {"currency": "USD", "code": "O-1"})
    orders.create_order(account.test, {"currency": "USD", "code": "O-1"})
    with pytest.raises(Taken) as error:
        create(account, code=" O-1 ")
    assert errors_of(error) == {("taken", "code")}
    session.rollback()


CREATE_ERRORS = [
    pytest.param({"currency": None}, {("required", "currency")}, id="no currency"),
    pytest.param({"currency": "usd"}, {("format", "currency")}, id="lower-case currency"),
    pytest.param({"currency": "US"}, {("format", "currency")}, id="two letters"),
    pytest.param({"currency": "USDT"}, {("format", "currency")}, id="four letters"),
    pytest.param({"currency": "US1"}, {("format", "currency")}, id="a digit"),
    pytest.param({"currency": "USD\n"}, {("format", "currency")}, id="a trailing newline"),
    pytest.param({"status": "paid"}, {("inclusion", "status")}, id="unknown status"),
    pytest.param({"status": "Opened"}, {("inclusion", "status")}, id="status is case-sensitive"),
    pytest.param({"status": None}, {("required", "status")}, id="null status"),
    pytest.param({"payment_status": "free"}, {("inclusion", "payment_status")}, id="unknown payment"),
    pytest.param({"fulfillment_status": "lost"}, {("inclusion", "fulfillment_status")}, id="unknown fulfil"),
    pytest.param({"total_cents": -1}, {("invalid", "total_cents")}, id="negative total"),
    pytest.param({"tax_cents": 1.5}, {("invalid", "tax_cents")}, id="fractional cents"),
    pytest.param({"tax_cents": True}, {("invalid", "tax_cents")}, id="a boolean is no number"),
    pytest.param({"shipping_cents": "100"}, {("invalid", "shipping_cents")}, id="cents as a string"),
    pytest.param({"sub_total_cents": 2**63}, {("invalid", "sub_total_cents")}, id="beyond BIGINT"),
    pytest.param({"sub_total_cents": None}, {("required", "sub_total_cents")}, id="null cents"),
    pytest.param({"line_items": None}, {("required", "line_items")}, id="null line items"),
    pytest.param({"line_items": {"name": "Tea"}}, {("invalid", "line_items")}, id="items not an array"),
    pytest.param({"line_items": ["Tea"]}, {("invalid", "line_items")}, id="an item not an object"),
    pytest.param({"line_items": [{}]}, {("required", "line_items")}, id="an empty item"),
    pytest.param({"line_items": [{**ITEM, "name": ""}]}, {("required", "line_items")}, id="item name blank"),
    pytest.param({"line_items": [{**ITEM, "name": 5}]}, {("invalid", "line_items")}, id="item name a number"),
    pytest.param({"line_items": [{**ITEM, "sku": "x" * 65}]}, {("length", "line_items")}, id="long sku"),
    pytest.param({"line_items": [{**ITEM, "name": "x" * 256}]}, {("length", "line_items")}, id="long name"),
    pytest.param({"line_items": [{**ITEM, "quantity": 0}]}, {("invalid", "line_items")}, id="quantity 0"),
    pytest.param({"line_items": [{**ITEM, "quantity": 1.5}]}, {("invalid", "line_items")}, id="quantity 1.5"),
    pytest.param(
        {"line_items": [{**ITEM, "unit_price_cents": -5}]}, {("invalid", "line_items")}, id="negative price"
    ),
    pytest.param(
        {"line_items": [{**ITEM, "total_cents": None}]}, {("required", "line_items")}, id="no total"
    ),
    pytest.param({"custom_data": []}, {("invalid", "custom_data")}, id="custom data not an object"),
    pytest.param({"placed_at": datetime(2024, 5, 1)}, {("format", "placed_at")}, id="naive placed at"),
    pytest.param({"placed_at": "2024-05-01"}, {("format", "placed_at")}, id="placed at not a datetime"),
    pytest.param(
        {"currency": "usd", "total_cents": -1, "status": "x"},
        {("format", "currency"), ("invalid", "total_cents"), ("inclusion", "status")},
        id="several at once",
    ),
]


@pytest.mark.parametrize(("attrs", "expected"), CREATE_ERRORS)
def test_create_validation(account, session, attrs, expected):
    with pytest.raises(ValidationFailed) as error:
        create(account, **attrs)
    assert errors_of(error) == expected
    assert count_orders(session, account.live) == 0


def test_an_order_needs_a_currency(account):
    with pytest.raises(ValidationFailed) as error:
        orders.create_order(account.live, {})
    assert errors_of(error) == {("required", "currency")}


def test_every_bad_line_item_is_reported_by_number(account):
    items = [ITEM, {**ITEM, "quantity": 0}, {**ITEM, "name": None, "total_cents": -1}]
    with pytest.raises(ValidationFailed) as error:
        create(account, line_items=items)
    titles = sorted(e.title for e in error.value.errors)
    assert titles == [
        "Line item 2: the quantity must be a whole number, at least 1.",
        "Line item 3: the name is required.",
        "Line item 3: the total in cents must be a whole number, at least 0.",
    ]


def test_the_largest_bigint_is_accepted(account, session):
    order = create(account, total_cents=2**63 - 1)
    session.commit()
    session.expire_all()
    assert session.get(Order, order.id).total_cents == 2**63 - 1


# The customer relationship


def test_a_customer_of_another_account_is_refused(account, other_account, session):
    theirs = customers.create_customer(other_account.live, {"email": "amy@example.com"})
    with pytest.raises(ValidationFailed) as error:
        create(account, theirs)
    assert errors_of(error) == {("invalid", "customer_id")}
    assert count_orders(session, account.live) == 0


@pytest.mark.parametrize("customer_id", ["not-a-uuid", str(uuid.uuid4()), 42])
def test_find_customer_refuses_what_is_not_a_customer_of_the_account(account, customer_id):
    with pytest.raises(ValidationFailed) as error:
        orders.find_customer(account.live, customer_id)
    assert errors_of(error) == {("invalid", "customer_id")}


def test_find_customer_refuses_the_test_twins_customer(account):
    twin_customer = customers.create_customer(account.test, {"email": "amy@example.com"})
    with pytest.raises(ValidationFailed):
        orders.find_customer(account.live, str(twin_customer.id))


def test_find_customer(account, customer):
    assert orders.find_customer(account.live, str(customer.id)) is customer
    assert orders.find_customer(account.live, None) is None


# Read


def test_get_order(account):
    order = create(account)
    assert orders.get_order(account.live, str(order.id)) is order
    assert orders.get_order(account.live, order.id) is order


@pytest.mark.parametrize("order_id", ["nope", "", None, str(uuid.uuid4())])
def test_unknown_and_malformed_ids_are_not_found(account, order_id):
    with pytest.raises(NotFound):
        orders.get_order(account.live, order_id)


def test_another_accounts_order_is_not_found(account, other_account):
    for owner in (other_account.live, account.test):
        order = orders.create_order(owner, {"currency": "USD"})
        with pytest.raises(NotFound):
            orders.get_order(account.live, order.id)


def test_a_customer_sees_only_its_own_orders(account, customer):
    mine = create(account, customer)
    detached = create(account)
    assert orders.get_order(account.live, mine.id, visible_to=customer.id) is mine
    for order in (detached, create(account, customers.create_customer(account.live, {}))):
        with pytest.raises(NotFound):
            orders.get_order(account.live, order.id, visible_to=customer.id)


# Lists


def page(account, **kwargs):
    rows, total, all_count = orders.list_orders(account.live, **{"page": 1, "size": 25, **kwargs})
    return [o.id for o in rows], total, all_count


def test_list_is_newest_first_with_counts(account, other_account):
    created = [create(account).id for _ in range(3)]
    orders.create_order(other_account.live, {"currency": "USD"})
    assert page(account) == (created[::-1], 3, 3)


def test_list_breaks_inserted_at_ties_by_id(account, session):
    created = [create(account) for _ in range(3)]
    for order in created:
        order.inserted_at = datetime(2024, 1, 1, tzinfo=UTC)
    session.flush()
    expected = sorted((o.id for o in created), key=str, reverse=True)
    ids, _, _ = page(account)
    assert [str(i) for i in ids] == [str(i) for i in expected]


def test_list_pages(account):
    newest = [create(account).id for _ in range(5)][::-1]
    assert page(account, size=2)[0] == newest[:2]
    assert page(account, size=2, page=3)[0] == newest[4:]
    assert page(account, size=2, page=4) == ([], 5, 5)


def test_list_filters_count_before_and_after(account, customer):
    amys = [create(account, customer).id, create(account, customer, status="closed").id]
    create(account, status="closed")
    assert page(account, customer_id=str(customer.id)) == (amys[::-1], 2, 3)
    assert page(account, customer_id=customer.id, status="closed") == ([amys[1]], 1, 3)
    assert page(account, status="closed")[1:] == (2, 3)


def test_a_filtered_list_counts_before_and_after_in_one_statement(account, customer, session):
    create(account, customer)
    create(account, status="closed")
    with statements(session.get_bind()) as seen:
        assert page(account, customer_id=customer.id, status="closed") == ([], 0, 2)
    assert [statement.split()[1] for statement in seen] == ["count(*)", "orders.account_id,"]


@pytest.mark.parametrize(("field", "value"), [("customer_id", "nope"), ("status", "paid"), ("status", "")])
def test_a_filter_value_that_cannot_match_finds_nothing(account, customer, field, value):
    create(account, customer)
    assert page(account, **{field: value}) == ([], 0, 1)


def test_a_customers_view_counts_only_its_orders(account, customer):
    mine = create(account, customer).id
    create(account)
    create(account, customers.create_customer(account.live, {}))
    assert page(account, visible_to=customer.id) == ([mine], 1, 1)
    other = str(uuid.uuid4())
    assert page(account, visible_to=customer.id, customer_id=other) == ([], 0, 1)


# Update and delete


def test_a_partial_update_keeps_the_other_fields(account, customer):
    order = create(account, customer, code="O-1", total_cents=900, line_items=[ITEM])
    orders.update_order(order, {"status": "closed", "payment_status": "paid"})
    assert (order.status, order.payment_status, order.code, order.total_cents) == (
        "closed",
        "paid",
        "O-1",
        900,
    )
    assert (order.line_items, order.customer_id, order.currency) == ([ITEM], customer.id, "USD")


def test_an_update_does_not_need_the_currency_but_cannot_drop_it(account):
    order = create(account)
    with pytest.raises(ValidationFailed) as error:
        orders.update_order(order, {"currency": None})
    assert errors_of(error) == {("required", "currency")}


def test_an_update_moves_and_detaches_the_order(account, customer):
    order = create(account, email="roy@example.com")
    orders.update_order(order, {}, customer=customer)
    assert (order.customer_id, order.email) == (customer.id, "roy@example.com")
    orders.update_order(order, {}, customer=None)
    assert (order.customer_id, order.email) == (None, "roy@example.com")


def test_an_order_of_a_customer_gets_its_email_back(account, customer):
    order = create(account, customer)
    orders.update_order(order, {"email": None})
    assert order.email == "amy@example.com"
    orders.update_order(order, {"email": None}, customer=None)
    assert order.email is None


def test_an_update_to_another_accounts_customer_is_refused(account, other_account):
    order = create(account)
    theirs = customers.create_customer(other_account.live, {})
    with pytest.raises(ValidationFailed) as error:
        orders.update_order(order, {}, customer=theirs)
    assert errors_of(error) == {("invalid", "customer_id")}


def test_a_taken_code_on_update_is_taken_not_an_integrity_error(account, customer, session):
    create(account, code="O-1")
    order = create(account, customer)
    session.commit()
    session.expire_all()  # the customer is loaded lazily, after the code has changed
    with pytest.raises(Taken) as error:
        orders.update_order(session.get(Order, order.id), {"code": "O-1"})
    assert errors_of(error) == {("taken", "code")}
    session.rollback()


def test_delete_order(account, session):
    order = create(account)
    orders.delete_order(order)
    assert count_orders(session, account.live) == 0


# What customers' changes do to their orders


def test_a_guests_orders_stay_with_it_when_it_registers(account, customer):
    order = create(account, customer)
    customers.update_customer(customer, {"status": "registered", "password": "amy-password-1"})
    assert customer.user is not None
    assert order.customer_id == customer.id
    assert page(account, visible_to=customer.id)[0] == [order.id]


def test_deleting_a_customer_detaches_its_orders_and_copies_its_email(account, session):
    # A guest without an email: its orders have none until it gives one.
    customer = customers.create_customer(account.live, {"first_name": "Amy"})
    without_email = create(account, customer)
    with_email = create(account, customer, email="gift@example.com")
    customers.update_customer(customer, {"email": "amy@example.com"})
    customers.delete_customer(customer)
    session.commit()
    session.expire_all()
    assert (without_email.customer_id, without_email.email) == (None, "amy@example.com")
    assert (with_email.customer_id, with_email.email) == (None, "gift@example.com")
    assert count_orders(session, account.live) == 2
