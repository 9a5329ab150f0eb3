"""Orders: a customer's purchase history, written by a checkout service or staff tool."""

import re
import uuid
from datetime import UTC, datetime

from sqlalchemy import func, select

from freshcom_customers.errors import FieldError, NotFound, ValidationFailed, invalid
from freshcom_customers.extensions import db
from freshcom_customers.models import (
    FULFILLMENT_STATUSES,
    ORDER_STATUSES,
    PAYMENT_STATUSES,
    Account,
    Customer,
    Order,
)
from freshcom_customers.services import customers, users
from freshcom_customers.services.database import count, flush, get_in_account, one_page, page_of_customer_rows

STATUSES = {
    "status": ORDER_STATUSES,
    "payment_status": PAYMENT_STATUSES,
    "fulfillment_status": FULFILLMENT_STATUSES,
}
AMOUNTS = ("sub_total_cents", "tax_cents", "shipping_cents", "total_cents")
MAX_CENTS = 2**63 - 1  # the columns are BIGINT
CURRENCY = re.compile(r"[A-Z]{3}")
PLAIN_FIELDS = (*STATUSES, "currency", *AMOUNTS, "custom_data")
LINE_ITEM_TEXT = {"name": 255, "sku": 64}
LINE_ITEM_NUMBERS = (
    ("quantity", "quantity", 1),
    ("unit_price_cents", "unit price in cents", 0),
    ("total_cents", "total in cents", 0),
)
LIST_FILTERS = ("customer_id", "status")
# Tells update_order that the request said nothing about the customer.
UNCHANGED = object()


def create_order(account: Account, attrs: dict, customer: Customer | None = None) -> Order:
    """Create an order, for customer when given; without an email it takes the customer's."""
    _check(attrs, creating=True)
    order = Order(account_id=account.id, line_items=[], custom_data={})
    _apply_fields(order, attrs)
    _attach(order, customer)
    db.session.add(order)
    flush()
    return order


def update_order(order: Order, attrs: dict, *, customer=UNCHANGED) -> Order:
    """Apply a partial update; customer (a Customer or None) moves the order when given."""
    _check(attrs)
    # Load the customer before any field changes: a lazy load autoflushes, and a unique
    # violation raised there would escape flush() and its Taken.
    customer = order.customer if customer is UNCHANGED else customer
    _apply_fields(order, attrs)
    _attach(order, customer)
    flush()
    return order


def delete_order(order: Order) -> None:
    """Delete the order for good."""
    db.session.delete(order)
    flush()


def find_customer(account: Account, customer_id) -> Customer | None:
    """The customer an order names (None for none); 422 on the relationship if not the account's."""
    return None if customer_id is None else customers.customer_named(account, customer_id)


def get_order(account: Account, order_id, *, visible_to: uuid.UUID | None = None) -> Order:
    """The account's order; with visible_to (a customer id), only if it is that customer's."""
    order = get_in_account(Order, account, order_id, "order")
    if visible_to is not None and order.customer_id != visible_to:
        raise NotFound("order")
    return order


def recent_orders(customer: Customer, limit: int) -> list[Order]:
    """The customer's most recent orders, newest first."""
    query = select(Order).where(Order.customer_id == customer.id)
    return db.session.scalars(query.order_by(Order.inserted_at.desc(), Order.id.desc()).limit(limit)).all()


def customer_orders(customer: Customer, *, page: int, size: int, newest_first: bool = True):
    """Return (the customer's orders on the page, how many it has), by when they were placed.

    An order was placed at placed_at, or, when that is not known, when it was stored.
    """
    query = select(Order).where(Order.customer_id == customer.id)
    placed = func.coalesce(Order.placed_at, Order.inserted_at)
    order = (placed.desc(), Order.id.desc()) if newest_first else (placed.asc(), Order.id.asc())
    return one_page(query, *order, page=page, size=size), count(query)


def list_orders(
    account: Account,
    *,
    customer_id=None,
    status: str | None = None,
    page: int,
    size: int,
    visible_to: uuid.UUID | None = None,
):
    """Return (orders on the page, count after filters, count before), newest first.

    visible_to (a customer id) limits everything, allCount included, to that customer's
    orders. A filter value that cannot match (a malformed id, an unknown status) finds none.
    """
    where = () if status is None else (Order.status == status,)
    return page_of_customer_rows(
        Order, account, customer_id=customer_id, visible_to=visible_to, where=where, page=page, size=size
    )


def _attach(order: Order, customer: Customer | None) -> None:
    """Give the order to customer (or to none); an order of a customer has its email."""
    if customer is not None and customer.account_id != order.account_id:
        raise invalid("customer_id", "invalid", "Customer must be a customer of this account.")
    order.customer = customer
    if customer is not None and not order.email:
        order.email = customer.email


def _apply_fields(order: Order, attrs: dict) -> None:
    for field in PLAIN_FIELDS:
        if field in attrs:
            setattr(order, field, attrs[field])
    for field, normalise in NORMALISED_FIELDS.items():
        if field in attrs:
            setattr(order, field, normalise(attrs[field]))


def _line_item(item: dict) -> dict:
    """The item with exactly the keys of the contract, snake_case; others are dropped."""
    return {
        "name": item["name"],
        "sku": item.get("sku") or None,
        "quantity": item["quantity"],
        "unit_price_cents": item["unit_price_cents"],
        "total_cents": item["total_cents"],
    }


NORMALISED_FIELDS = {
    # A blank code is no code: two orders without one must not collide on the unique key.
    "code": lambda code: (code or "").strip() or None,
    "email": users.email_address,
    "line_items": lambda items: [_line_item(item) for item in items],
    # SQLite keeps no offset: store UTC so every database reads back the same instant.
    "placed_at": lambda placed_at: placed_at.astimezone(UTC) if placed_at else None,
}


# Validation: the schema of a face has checked types and lengths; these are the rules.


def _check(attrs: dict, *, creating: bool = False) -> None:
    errors = [*_check_currency(attrs, creating), *_check_statuses(attrs), *_check_amounts(attrs)]
    errors += _check_line_items(attrs.get("line_items", []))
    if "custom_data" in attrs and not isinstance(attrs["custom_data"], dict):
        errors.append(FieldError("custom_data", "invalid", "Custom data must be an object."))
    placed_at = attrs.get("placed_at")
    if placed_at is not None and (not isinstance(placed_at, datetime) or placed_at.tzinfo is None):
        errors.append(FieldError("placed_at", "format", "Placed at must be a time with a time zone."))
    if errors:
        raise ValidationFailed(*errors)


def _check_currency(attrs: dict, creating: bool):
    if "currency" not in attrs and not creating:
        return
    currency = attrs.get("currency")
    if currency is None:
        yield FieldError("currency", "required", "Currency is required.")
    elif not isinstance(currency, str) or not CURRENCY.fullmatch(currency):
        yield FieldError("currency", "format", "Currency must be an ISO 4217 code of three capital letters.")


def _check_statuses(attrs: dict):
    for field, allowed in STATUSES.items():
        if field not in attrs:
            continue
        label = field.replace("_", " ").capitalize()
        if attrs[field] is None:
            yield FieldError(field, "required", f"{label} is required.")
        elif attrs[field] not in allowed:
            yield FieldError(field, "inclusion", f"{label} must be one of: {', '.join(allowed)}.")


def _check_amounts(attrs: dict):
    for field in AMOUNTS:
        if field not in attrs:
            continue
        label = field.replace("_", " ").capitalize()
        if attrs[field] is None:
            yield FieldError(field, "required", f"{label} is required.")
        elif not _is_whole(attrs[field]):
            yield FieldError(field, "invalid", f"{label} must be a whole number of cents, at least 0.")


def _check_line_items(items) -> list[FieldError]:
    if items is None:
        return [FieldError("line_items", "required", "Line items are required; send [] for none.")]
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        return [FieldError("line_items", "invalid", "Line items must be an array of objects.")]
    return [
        FieldError("line_items", code, f"Line item {number}: {problem}")
        for number, item in enumerate(items, start=1)
        for code, problem in _line_item_problems(item)
    ]


def _line_item_problems(item: dict):
    for key, max_length in LINE_ITEM_TEXT.items():
        value = item.get(key)
        if value is None or value == "":
            if key == "name":
                yield "required", "the name is required."
        elif not isinstance(value, str):
            yield "invalid", f"the {key} must be a string."
        elif len(value) > max_length:
            yield "length", f"the {key} must be at most {max_length} characters."
    for key, label, least in LINE_ITEM_NUMBERS:
        if item.get(key) is None:
            yield "required", f"the {label} is required."
        elif not _is_whole(item[key], least):
            yield "invalid", f"the {label} must be a whole number, at least {least}."


def _is_whole(value, least: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and least <= value <= MAX_CENTS
