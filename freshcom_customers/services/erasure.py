"""Erasure (API.md 10): a customer and everything of its deleted at once; its orders kept, anonymised.

The customer, its user, its addresses, its sessions and every token (refresh tokens of either
mode, one-time tokens) go in one flush, so the email and username are free again at once.
Orders are the merchant's records: they stay, detached (customer_id NULL), with the email
replaced by a placeholder, erased-<hash>@invalid, the same for all of one customer's orders
(staff can still tell they were one buyer's) and different between customers. The hash is an
HMAC of the customer id under the server's secret: nothing leads back to the email. An order
has no name, phone or address columns (models/order.py); its free-form parts (custom data,
line items) lose every piece of text equal to one of the customer's own values, as a word,
whatever the case. The record is a security event with ids only (docs/decisions.md,
"Export and erasure").

The webhook outbox's events about the customer go too, sent or not (their data is personal);
receivers then hear the orders anonymised (order.updated) and the customer deleted, by id
(API.md 12). Its history stays, without the networks of its logins.
"""

import hashlib
import hmac
import re
import uuid

from flask import current_app
from sqlalchemy import delete, or_, select

from freshcom_customers.errors import WrongPassword
from freshcom_customers.extensions import db
from freshcom_customers.models import Address, Customer, LoginSession, OneTimeToken, Order, RefreshToken, User
from freshcom_customers.observability import security_events
from freshcom_customers.services import changes, history, users, webhooks
from freshcom_customers.services.database import flush

PLACEHOLDER = "erased-{}@invalid"  # RFC 2606's .invalid: no mail is ever delivered there
ERASED_TEXT = "[erased]"
# Shorter values (a two-letter name, a province code) would blank unrelated words of an order.
SHORTEST_SCRUBBED = 3
_PERSONAL = {
    Customer: ("email", "name", "first_name", "last_name", "phone_number"),
    User: ("email", "username", "pending_email", "name", "first_name", "last_name", "phone_number"),
    Address: ("name", "company", "line_one", "line_two", "city", "province", "postal_code", "phone_number"),
}


def erase_own_customer(customer: Customer, current_password: str | None) -> None:
    """Erase the caller's own customer once its current password is checked (WrongPassword if not)."""
    if customer.user is None or not users.verify_password(customer.user, current_password):
        raise WrongPassword()
    erase_customer(customer)


def erase_customer(
    customer: Customer, *, erased_by: User | None = None, erased_by_client: uuid.UUID | None = None
) -> None:
    """Delete the customer, its user, addresses, sessions and tokens; keep its orders, anonymised.

    erased_by is the staff user who asked, erased_by_client the machine client (API.md 12);
    neither when the customer erased itself.
    """
    user = customer.user
    # First: what the anonymised orders' order.updated and the customer.deleted say comes after.
    webhooks.forget(customer)
    addresses = db.session.scalars(select(Address).where(Address.customer_id == customer.id)).all()
    kept = _anonymise_orders(customer, _personal_pattern([customer, user, *addresses]))
    _delete_belongings(customer, user)
    history.forget_networks(customer.id)
    changes.mark(db.session, customer, "erased")
    db.session.delete(customer)
    if user is not None:
        db.session.delete(user)
    flush()
    security_events.record(
        "customer_erased",
        account_id=str(customer.account_id),
        customer_id=str(customer.id),
        user_id=str(user.id) if user else None,
        by="staff" if erased_by else "client" if erased_by_client else "customer",
        staff_user_id=str(erased_by.id) if erased_by else None,
        client_id=str(erased_by_client) if erased_by_client else None,
        orders_kept=kept,
    )


def placeholder_email(customer: Customer) -> str:
    """The address an erased customer's orders carry: one per customer, which no one can reverse."""
    secret = str(current_app.config["SECRET_KEY"]).encode()
    digest = hmac.new(secret, b"erasure:" + str(customer.id).encode(), hashlib.sha256).hexdigest()
    return PLACEHOLDER.format(digest[:16])


def _anonymise_orders(customer: Customer, personal: re.Pattern | None) -> int:
    orders = db.session.scalars(select(Order).where(Order.customer_id == customer.id)).all()
    email = placeholder_email(customer)
    for order in orders:
        order.customer, order.email = None, email
        if personal is not None:
            order.custom_data = _scrubbed(order.custom_data, personal)
            order.line_items = _scrubbed(order.line_items, personal)
    return len(orders)


def _personal_pattern(rows) -> re.Pattern | None:
    """Any of the rows' personal values, as a whole word in any case; None when they have none."""
    values = {
        value.strip()
        for row in rows
        if row is not None
        for field in _PERSONAL[type(row)]
        if isinstance(value := getattr(row, field), str) and len(value.strip()) >= SHORTEST_SCRUBBED
    }
    if not values:
        return None
    alternatives = "|".join(re.escape(value) for value in sorted(values, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def _scrubbed(value, personal: re.Pattern):
    """value (JSON) with every personal piece of its text replaced; keys and numbers kept."""
    if isinstance(value, str):
        return personal.sub(ERASED_TEXT, value)
    if isinstance(value, list):
        return [_scrubbed(item, personal) for item in value]
    if isinstance(value, dict):
        return {key: _scrubbed(item, personal) for key, item in value.items()}
    return value


def _delete_belongings(customer: Customer, user: User | None) -> None:
    """Delete what the customer and its user own; the foreign keys would cascade, this says what goes."""
    for model in (Address, LoginSession, OneTimeToken):
        owners = [model.customer_id == customer.id]
        if user is not None and hasattr(model, "user_id"):
            owners.append(model.user_id == user.id)
        db.session.execute(delete(model).where(or_(*owners)))
    if user is not None:
        db.session.execute(delete(RefreshToken).where(RefreshToken.user_id == user.id))
