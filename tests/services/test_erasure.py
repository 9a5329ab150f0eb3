"""Erasure (services/erasure.py): no personal value left in any table; orders kept, anonymised."""

import logging
import re

import pytest
from sqlalchemy import func, or_, select, update

from freshcom_customers.errors import WrongPassword
from freshcom_customers.models import (
    Address,
    Customer,
    LoginSession,
    OneTimeToken,
    Order,
    RefreshToken,
    User,
    WebhookDelivery,
    WebhookEvent,
)
from freshcom_customers.services import customers, erasure, orders, webhooks
from tests import factories
from tests.personal_data import furnish, holding

PLACEHOLDER = re.compile(r"^erased-[0-9a-f]{16}@invalid$")
HOOKS = "https://hooks.example.com/in"


@pytest.fixture
def acme(session):
    return factories.account()


def _registered(acme, first, last, phone):
    return factories.customer(
        acme,
        "registered",
        email=f"{first.lower()}.{last[0].lower()}@example.org",
        first_name=first,
        last_name=last,
        name=f"{first} {last}",
        phone_number=phone,
    )


@pytest.fixture
def ann(acme):
    return furnish(
        _registered(acme, "Annabel", "Quistgaard", "+1 415 555 0101"), "annabel", "198.51.100.0/24"
    )


@pytest.fixture
def bob(acme):
    return furnish(
        _registered(acme, "Bartholomew", "Ostrowski", "+1 415 555 0199"), "bartholomew", "203.0.113.0/24"
    )


def _found(values) -> set[str]:
    return {value for _, _, value in holding(values)}


def test_no_table_holds_a_personal_value_after_erasure(session, ann, bob):
    assert _found(ann.values) == {value.lower() for value in ann.values}  # the scan sees them first

    erasure.erase_customer(ann.customer)

    assert holding(ann.values) == []
    assert _found(bob.values) == {value.lower() for value in bob.values}


def test_a_guest_customer_is_erased_too(session, acme, bob):
    guest = factories.customer(
        acme, email="gwendolyn@example.org", first_name="Gwendolyn", last_name="Fairfax"
    )
    gwen = furnish(guest, "gwendolyn", "192.0.2.0/24")

    erasure.erase_customer(gwen.customer, erased_by=factories.staff_user(acme))

    assert holding(gwen.values) == []
    assert session.get(Customer, gwen.customer.id) is None
    assert _found(bob.values) == {value.lower() for value in bob.values}


def test_the_customer_its_user_and_everything_they_own_go(session, ann, bob):
    customer_id, user_id = ann.customer.id, ann.customer.user_id

    erasure.erase_customer(ann.customer)
    session.expire_all()

    assert session.get(Customer, customer_id) is None
    assert session.get(User, user_id) is None
    for model in (Address, LoginSession, OneTimeToken):
        owned = or_(model.customer_id == customer_id, getattr(model, "user_id", model.customer_id) == user_id)
        assert session.scalar(select(func.count()).select_from(model).where(owned)) == 0, model
    assert session.scalar(select(func.count()).where(RefreshToken.user_id == user_id)) == 0
    # Bob keeps everything.
    assert {a.id for a in session.scalars(select(Address).where(Address.customer_id == bob.customer.id))} == (
        bob.ids["addresses"]
    )
    assert session.scalar(select(func.count()).where(RefreshToken.user_id == bob.customer.user_id)) == 1


def test_orders_stay_detached_with_one_placeholder_and_no_personal_text(session, ann, bob):
    erasure.erase_customer(ann.customer)
    session.expire_all()

    orders = session.scalars(select(Order).where(Order.id.in_(ann.ids["orders"]))).all()
    assert len(orders) == 2
    assert {order.customer_id for order in orders} == {None}
    assert len({order.email for order in orders}) == 1
    assert PLACEHOLDER.match(orders[0].email)
    for order in orders:
        # The merchant's record stays: code, amounts, items; only the personal words go.
        assert order.total_cents == 1200
        assert order.custom_data == {"giftMessage": "Happy birthday, [erased]!", "deliveryNote": "[erased]"}
        assert [item["name"] for item in order.line_items] == ["Mug engraved [erased]", "Tea"]
        assert [item["sku"] for item in order.line_items] == ["MUG-1", "TEA-1"]
    bobs = session.scalars(select(Order).where(Order.id.in_(bob.ids["orders"]))).all()
    assert {(o.customer_id, o.email) for o in bobs} == {(bob.customer.id, bob.customer.email)}


def test_placeholders_differ_between_customers_and_depend_on_the_secret(app, ann, bob, monkeypatch):
    first = erasure.placeholder_email(ann.customer)
    assert first == erasure.placeholder_email(ann.customer)
    assert first != erasure.placeholder_email(bob.customer)
    monkeypatch.setitem(app.config, "SECRET_KEY", "another-secret-key-of-at-least-32-bytes")
    assert erasure.placeholder_email(ann.customer) != first


def test_the_email_and_username_are_free_at_once(session, acme, ann):
    email = ann.customer.email
    erasure.erase_customer(ann.customer)

    again = customers.create_customer(
        acme, {"status": "registered", "email": email.upper(), "password": "x" * 12}
    )
    assert again.user.username == email


def test_erasing_ones_own_customer_needs_the_current_password(session, ann):
    with pytest.raises(WrongPassword):
        erasure.erase_own_customer(ann.customer, "not-the-password")
    with pytest.raises(WrongPassword):
        erasure.erase_own_customer(ann.customer, None)
    assert _found(ann.values) == {value.lower() for value in ann.values}

    erasure.erase_own_customer(ann.customer, factories.PASSWORD)
    assert holding(ann.values) == []


def test_the_erasure_is_recorded_with_ids_only(session, acme, ann, caplog):
    staff = factories.staff_user(acme)
    ids = (str(ann.customer.account_id), str(ann.customer.id), str(ann.customer.user_id))
    caplog.set_level(logging.WARNING, logger="freshcom_customers.security")

    erasure.erase_customer(ann.customer, erased_by=staff)

    [record] = [r for r in caplog.records if getattr(r, "security_event", None) == "customer_erased"]
    assert record.fields == {
        "account_id": ids[0],
        "customer_id": ids[1],
        "user_id": ids[2],
        "by": "staff",
        "staff_user_id": str(staff.id),
        "client_id": None,
        "orders_kept": 2,
    }
    logged = (record.getMessage() + repr(record.fields)).lower()
    assert not [value for value in ann.values if value.lower() in logged]


# The webhook outbox


def _events(session) -> list[WebhookEvent]:
    return session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)).all()


@pytest.fixture
def hooked(session, acme):
    """An endpoint of the account wanting every event, made before the customers are."""
    return webhooks.create_endpoint(acme, {"url": HOOKS, "events": ["*"]}).endpoint


def test_the_outbox_forgets_the_customers_events_sent_or_not(session, acme, hooked):
    ann = furnish(_registered(acme, "Annabel", "Quistgaard", "+1 415 555 0101"), "annabel", "198.51.100.0/24")
    session.commit()
    session.execute(update(WebhookDelivery).values(status="succeeded", next_attempt_at=None))  # sent
    customers.update_customer(ann.customer, {"label": "vip"})  # not sent yet
    session.commit()
    assert "webhook_events" in {table for table, _, _ in holding(ann.values)}  # the scan sees them
    customer_id = str(ann.customer.id)

    erasure.erase_customer(ann.customer)
    session.commit()

    assert holding(ann.values) == []
    told = _events(session)
    assert [row.type for row in told] == ["order.updated", "order.updated", "customer.deleted"]
    assert {row.ordering_key for row in told} == {customer_id}
    assert {row.payload["data"]["id"] for row in told[:2]} == {str(o) for o in ann.ids["orders"]}
    assert [row.payload["data"]["relationships"]["customer"]["data"] for row in told[:2]] == [None, None]
    assert told[2].payload["data"] == {"id": customer_id, "type": "Customer"}
    deliveries = session.scalars(select(WebhookDelivery.event_id)).all()
    assert sorted(deliveries) == [row.id for row in told]  # the forgotten events' deliveries went too


def test_the_outbox_forgets_an_order_told_before_it_was_the_customers(session, acme, hooked):
    ann = furnish(_registered(acme, "Annabel", "Quistgaard", "+1 415 555 0101"), "annabel", "198.51.100.0/24")
    placed_as_guest = orders.create_order(acme, {"currency": "GBP", "email": ann.customer.email})
    session.commit()
    orders.update_order(placed_as_guest, {}, customer=ann.customer)
    session.commit()

    erasure.erase_customer(ann.customer)

    assert holding(ann.values) == []
