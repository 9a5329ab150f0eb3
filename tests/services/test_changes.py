"""What each change tells the webhook outbox (services/changes.py, API.md 12): which event types,
to which endpoints, with what data, in the transaction of the change."""

import json
import uuid
from collections import Counter

import pytest
from sqlalchemy import func, select

from freshcom_customers.models import Customer, CustomerEvent, User, WebhookDelivery, WebhookEvent
from freshcom_customers.services import (
    customers,
    email_changes,
    erasure,
    one_time_tokens,
    orders,
    password_resets,
    passwords,
    users,
    webhooks,
)
from tests.conftest import REGISTRATION, customer_document, errors_of

HOOKS = "https://hooks.example.com/in"
ROY, PASSWORD = REGISTRATION["email"], REGISTRATION["password"]
NEW_PASSWORD = "a brand new passphrase"


class Outbox:
    """The webhook events written since the last look."""

    def __init__(self, session):
        self.session = session
        self.seen = 0

    def new(self) -> list[WebhookEvent]:
        rows = self.session.scalars(
            select(WebhookEvent).where(WebhookEvent.id > self.seen).order_by(WebhookEvent.id)
        ).all()
        self.seen = max([self.seen, *(row.id for row in rows)])
        return rows

    def types(self) -> Counter:
        """The new events' types, counted: one flush writes its events in no promised order."""
        return Counter(row.type for row in self.new())

    def one(self, event_type: str) -> dict:
        """The data of the one new event, which must be of event_type."""
        (row,) = self.new()
        assert row.type == event_type
        assert row.payload["type"] == event_type
        return row.payload["data"]


def add_endpoint(account, session, events=("*",), **attrs):
    made = webhooks.create_endpoint(account, {"url": HOOKS, "events": list(events), **attrs}).endpoint
    session.commit()
    return made


@pytest.fixture
def endpoint(account, session):
    """An endpoint of the account that wants every event."""
    return add_endpoint(account.live, session)


@pytest.fixture
def outbox(session, endpoint):
    return Outbox(session)


@pytest.fixture
def roy_row(session, register, outbox) -> Customer:
    """Roy, registered before the test looks at the outbox."""
    document, _ = register()
    outbox.new()
    return session.get(Customer, uuid.UUID(document["id"]))


@pytest.fixture
def roy_headers(auth, account, roy_row):
    return auth.headers(auth.login(account, ROY, PASSWORD)["access_token"])


def shown(client, owner, path) -> dict:
    """The resource as GET shows it to staff, without the links to its lists."""
    response = client.get(path, headers=owner)
    assert response.status_code == 200, response.get_json()
    data = response.get_json()["data"]
    for name in ("orders", "addresses"):
        data.get("relationships", {}).pop(name, None)
    return data


def patch_customer(client, headers, customer_id, **attributes):
    document = customer_document(**attributes)
    document["data"]["id"] = str(customer_id)
    return client.patch(f"/v1/customers/{customer_id}", json=document, headers=headers)


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


# Customers


def test_staff_creating_a_customer_tell_customer_created_with_the_customer_as_get_shows_it(
    client, owner, outbox
):
    document = customer_document(status="registered", email="ann@example.com", firstName="Ann")
    response = client.post("/v1/customers", json=document, headers=owner)
    assert response.status_code == 201, response.get_json()
    customer_id = response.get_json()["data"]["id"]

    data = outbox.one("customer.created")

    assert data == shown(client, owner, f"/v1/customers/{customer_id}")
    assert data["attributes"]["email"] == "ann@example.com"


def test_a_guests_registration_tells_customer_created(client, owner, register, outbox):
    document, _ = register()

    data = outbox.one("customer.created")

    assert data["id"] == document["id"]
    assert data["attributes"]["status"] == "registered"
    assert data == shown(client, owner, f"/v1/customers/{document['id']}")


def test_registering_a_guest_tells_customer_registered(session, account, outbox):
    guest = customers.create_customer(account.live, {"email": "gwen@example.com"})
    assert outbox.types() == {"customer.created": 1}

    customers.update_customer(guest, {"status": "registered", "password": "gwen-password-1"})

    assert outbox.one("customer.registered")["attributes"]["status"] == "registered"


def test_an_update_tells_customer_updated_with_the_new_values(client, owner, roy_row, outbox):
    response = patch_customer(client, owner, roy_row.id, firstName="Royce", label="vip")
    assert response.status_code == 200, response.get_json()

    data = outbox.one("customer.updated")

    assert (data["attributes"]["firstName"], data["attributes"]["label"]) == ("Royce", "vip")
    assert data == shown(client, owner, f"/v1/customers/{roy_row.id}")


def test_an_update_that_changes_nothing_tells_nothing(roy_row, outbox):
    customers.update_customer(roy_row, {"first_name": roy_row.first_name})
    assert outbox.new() == []


def test_suspending_and_reactivating_tell_only_those(client, owner, roy_row, outbox):
    assert patch_customer(client, owner, roy_row.id, status="suspended").status_code == 200
    assert outbox.one("customer.suspended")["attributes"]["status"] == "suspended"

    assert patch_customer(client, owner, roy_row.id, status="registered").status_code == 200
    data = outbox.one("customer.reactivated")
    assert data["attributes"]["status"] == "registered"
    assert data == shown(client, owner, f"/v1/customers/{roy_row.id}")


def test_a_deletion_tells_customer_deleted_with_the_id_alone(client, owner, roy_row, outbox):
    response = client.delete(f"/v1/customers/{roy_row.id}", headers=owner)
    assert response.status_code == 204

    assert outbox.one("customer.deleted") == {"id": str(roy_row.id), "type": "Customer"}


def test_an_erasure_tells_customer_deleted_without_a_personal_value(session, account, roy_row, outbox):
    orders.create_order(account.live, {"currency": "USD", "email": ROY}, roy_row)
    outbox.new()

    erasure.erase_customer(roy_row)

    rows = outbox.new()
    assert Counter(row.type for row in rows) == {"customer.deleted": 1, "order.updated": 1}
    (deleted,) = [row for row in rows if row.type == "customer.deleted"]
    assert deleted.payload["data"] == {"id": str(roy_row.id), "type": "Customer"}
    (order,) = [row for row in rows if row.type == "order.updated"]  # the order kept, anonymised
    assert order.payload["data"]["relationships"]["customer"]["data"] is None
    told = json.dumps([row.payload for row in rows])
    assert [value for value in (ROY, "Roy", "Bao") if value in told] == []


# Users


def test_a_password_change_tells_user_password_changed(client, owner, roy_row, roy_headers, outbox):
    response = client.patch(
        "/v1/user",
        json={
            "data": {"type": "User", "attributes": {"password": NEW_PASSWORD, "currentPassword": PASSWORD}}
        },
        headers=roy_headers,
    )
    assert response.status_code == 200, response.get_json()

    data = outbox.one("user.password_changed")

    assert data == shown(client, owner, f"/v1/users/{roy_row.user_id}")
    assert "password" not in json.dumps(data).lower()


def test_a_password_reset_tells_user_password_changed(client, session, roy_row, outbox):
    user = roy_row.user
    token = one_time_tokens.issue(
        password_resets.PURPOSE, user=user, email=user.email, lifetime=password_resets.LIFETIME
    )
    body = {"data": {"type": "Password", "attributes": {"value": NEW_PASSWORD}}}

    response = client.patch(f"/v1/password?resetToken={token}", json=body)

    assert response.status_code == 204, response.get_json()
    assert outbox.one("user.password_changed")["id"] == str(user.id)


def test_a_logins_rehash_tells_nothing(app, session, auth, account, roy_row, outbox, monkeypatch):
    old_hash = roy_row.user.password_hash
    monkeypatch.setitem(app.extensions, "freshcom_passwords", passwords.build_context("m=2048,t=1,p=1"))

    auth.login(account, ROY, PASSWORD)

    session.expire_all()
    assert session.get(User, roy_row.user_id).password_hash != old_hash  # it was rehashed
    assert outbox.new() == []


def test_a_staff_users_password_change_tells_nothing(session, account, outbox):
    staff = users.create_managed_user(account.live, username="ops", password="ops-password-1", role="manager")
    session.flush()

    users.change_password(staff, "ops-password-1", NEW_PASSWORD)
    session.flush()

    assert outbox.new() == []


def test_staff_changing_a_customers_email_tell_user_email_changed_and_customer_updated(
    client, owner, roy_row, outbox
):
    response = patch_customer(client, owner, roy_row.id, email="roy.bao@example.net")
    assert response.status_code == 200, response.get_json()

    rows = {row.type: row.payload["data"] for row in outbox.new()}

    assert set(rows) == {"user.email_changed", "customer.updated"}
    assert rows["user.email_changed"]["id"] == str(roy_row.user_id)
    assert rows["user.email_changed"]["attributes"]["email"] == "roy.bao@example.net"
    assert rows["customer.updated"]["attributes"]["email"] == "roy.bao@example.net"


def test_a_proven_new_email_tells_user_email_changed_and_customer_updated(session, roy_row, outbox):
    user = roy_row.user
    user.pending_email = "roy.bao@example.net"
    session.flush()
    assert outbox.new() == []  # waiting for its link is no change yet

    email_changes.apply(user)
    session.flush()

    rows = outbox.new()
    assert {row.type for row in rows} == {"user.email_changed", "customer.updated"}
    # The email, then its verification, flushed in two steps: the customer's last event shows
    # the customer as the transaction leaves it.
    (*_, last) = [row.payload["data"] for row in rows if row.type == "customer.updated"]
    assert (last["attributes"]["email"], last["attributes"]["emailVerified"]) == ("roy.bao@example.net", True)


def test_a_returning_guests_confirmed_registration_tells_customer_registered(
    client, session, guest, owner, outbox, mailbox
):
    document = customer_document(email="gwen@example.com", firstName="G.")
    guest_id = client.post("/v1/customers", json=document, headers=guest).get_json()["data"]["id"]
    assert outbox.types() == {"customer.created": 1}
    registration = customer_document(
        status="registered", email="gwen@example.com", password="gwen-password-1"
    )
    assert client.post("/v1/customers", json=registration, headers=guest).status_code == 202
    assert outbox.new() == []  # nothing changes until the link is used

    (message,) = mailbox.wait_for(1)
    body = {"data": {"type": "RegistrationConfirmation", "attributes": {"token": mailbox.token(message)}}}
    assert client.post("/v1/registration_confirmations", json=body, headers=guest).status_code == 201

    rows = outbox.new()
    assert [row.type for row in rows if row.type != "customer.updated"] == ["customer.registered"]
    last = rows[-1].payload["data"]
    assert last == shown(client, owner, f"/v1/customers/{guest_id}")
    assert (last["attributes"]["status"], last["attributes"]["emailVerified"]) == ("registered", True)


# Orders


def test_orders_tell_created_updated_and_deleted(client, session, account, owner, roy_row, outbox):
    order = orders.create_order(account.live, {"currency": "USD"}, roy_row)
    session.commit()
    assert outbox.one("order.created") == shown(client, owner, f"/v1/orders/{order.id}")

    orders.update_order(order, {"status": "closed"})
    session.commit()
    data = outbox.one("order.updated")
    assert data["attributes"]["status"] == "closed"
    assert data == shown(client, owner, f"/v1/orders/{order.id}")

    orders.delete_order(order)
    assert outbox.one("order.deleted") == {"id": str(order.id), "type": "Order"}


def test_an_orders_events_are_in_the_order_of_its_customer_or_its_own(session, account, roy_row, outbox):
    order = orders.create_order(account.live, {"currency": "USD"}, roy_row)
    guest_order = orders.create_order(account.live, {"currency": "USD"})

    ordering = session.execute(
        select(WebhookEvent.payload, WebhookDelivery.ordering_key).join(
            WebhookDelivery, WebhookDelivery.event_id == WebhookEvent.id
        )
    ).all()
    by_order = {payload["data"]["id"]: key for payload, key in ordering if payload["type"] == "order.created"}
    assert by_order == {str(order.id): str(roy_row.id), str(guest_order.id): str(guest_order.id)}


# Who hears what


def test_each_endpoint_gets_the_types_it_wants_and_a_disabled_one_none(
    session, account, other_account, endpoint
):
    only = add_endpoint(account.live, session, ["customer.created", "order.deleted"])
    disabled = add_endpoint(account.live, session, enabled=False)
    elsewhere = add_endpoint(other_account.live, session)

    guest = customers.create_customer(account.live, {"email": "gwen@example.com"})
    session.commit()
    customers.update_customer(guest, {"first_name": "Gwen"})
    session.commit()

    def told(to) -> Counter:
        return Counter(
            session.scalars(
                select(WebhookEvent.type)
                .join(WebhookDelivery, WebhookDelivery.event_id == WebhookEvent.id)
                .where(WebhookDelivery.endpoint_id == to.id)
            )
        )

    assert told(endpoint) == {"customer.created": 1, "customer.updated": 1}
    assert told(only) == {"customer.created": 1}
    assert told(disabled) == Counter()
    assert told(elsewhere) == Counter()
    assert count(session, WebhookEvent) == 2  # one event, one delivery per endpoint that wants it
    assert count(session, WebhookDelivery) == 3


def test_no_event_is_written_when_no_endpoint_wants_it(session, account):
    add_endpoint(account.live, session, ["order.created"])
    add_endpoint(account.live, session, enabled=False)

    customers.create_customer(account.live, {"email": "gwen@example.com"})
    session.commit()

    assert count(session, WebhookEvent) == 0
    assert count(session, WebhookDelivery) == 0


def test_the_test_twins_changes_go_to_its_own_endpoints(session, account, endpoint):
    twin_endpoint = add_endpoint(account.test, session)

    customers.create_customer(account.test, {"email": "gwen@example.com"})
    session.commit()

    (delivery,) = session.scalars(select(WebhookDelivery)).all()
    assert delivery.endpoint_id == twin_endpoint.id


def test_a_new_delivery_is_pending_now_and_gives_up_after_the_retry_period(app, session, account, endpoint):
    customer = customers.create_customer(account.live, {"email": "gwen@example.com"})
    session.commit()

    (delivery,) = session.scalars(select(WebhookDelivery)).all()
    assert (delivery.status, delivery.attempts, delivery.ordering_key) == ("pending", 0, str(customer.id))
    assert delivery.give_up_at - delivery.next_attempt_at == webhooks.retry_period()
    assert webhooks.retry_period().total_seconds() == app.config["WEBHOOK_RETRY_PERIOD"] == 3 * 86400
    assert delivery.event.message_id.startswith("msg_")
    assert delivery.event.payload["timestamp"].endswith("Z")


# A change that rolls back


def test_a_request_that_fails_writes_no_event_and_no_delivery(
    client, auth, account, session, roy_headers, outbox
):
    deliveries = count(session, WebhookDelivery)
    attributes = {
        "password": NEW_PASSWORD,
        "currentPassword": PASSWORD,
        "firstName": "R" * 200,
        "lastName": "B" * 200,
    }

    response = client.patch(
        "/v1/user", json={"data": {"type": "User", "attributes": attributes}}, headers=roy_headers
    )

    # The password change flushed (and its event with it) before the name was refused.
    assert errors_of(response) == {("length", "/data/attributes/lastName")}
    assert outbox.new() == []
    assert count(session, WebhookDelivery) == deliveries
    auth.login(account, ROY, PASSWORD)  # the password did not change either


def test_a_change_rolled_back_in_a_savepoint_takes_its_events_with_it(session, account, endpoint):
    with session.begin_nested() as savepoint:
        customers.create_customer(account.live, {"email": "gwen@example.com"})
        assert count(session, WebhookEvent) == 1
        savepoint.rollback()

    assert count(session, WebhookEvent) == 0
    assert count(session, WebhookDelivery) == 0


# One transaction, told once


def updated_lines(session, customer) -> list[dict]:
    """The details of the customer's "updated" history lines, oldest first."""
    query = select(CustomerEvent.details).where(
        CustomerEvent.customer_id == customer.id, CustomerEvent.event == "updated"
    )
    return list(session.scalars(query.order_by(CustomerEvent.id)))


@pytest.fixture
def gwen(session, account, outbox) -> Customer:
    """Gwen Ray, a guest committed before the test looks at the outbox."""
    customer = customers.create_customer(
        account.live, {"email": "gwen@example.com", "first_name": "Gwen", "last_name": "Ray"}
    )
    session.commit()
    outbox.new()
    return customer


def names(data: dict) -> tuple:
    return data["attributes"]["firstName"], data["attributes"]["lastName"], data["attributes"]["name"]


def test_a_transactions_updates_in_two_flushes_are_one_event_and_one_line(session, gwen, outbox):
    customers.update_customer(gwen, {"first_name": "Gwendolyn"})
    customers.update_customer(gwen, {"last_name": "Rayner"})
    session.commit()

    assert names(outbox.one("customer.updated")) == ("Gwendolyn", "Rayner", "Gwendolyn Rayner")
    assert updated_lines(session, gwen) == [{"fields": ["first_name", "last_name", "name"]}]


def test_a_change_undone_in_its_transaction_tells_nothing(session, gwen, outbox):
    customers.update_customer(gwen, {"first_name": "X"})
    customers.update_customer(gwen, {"first_name": "Gwen"})
    session.commit()

    assert outbox.new() == []
    assert updated_lines(session, gwen) == []


def test_a_change_partly_undone_tells_only_what_is_left(session, gwen, outbox):
    customers.update_customer(gwen, {"first_name": "X", "label": "vip"})
    customers.update_customer(gwen, {"first_name": "Gwen"})
    session.commit()

    data = outbox.one("customer.updated")
    assert (data["attributes"]["label"], *names(data)) == ("vip", "Gwen", "Ray", "Gwen Ray")
    assert updated_lines(session, gwen) == [{"fields": ["label"]}]


def test_a_customer_created_and_updated_in_one_transaction_is_told_created_as_it_ends(
    session, account, outbox
):
    customer = customers.create_customer(account.live, {"email": "gwen@example.com", "first_name": "G"})
    customers.update_customer(customer, {"first_name": "Gwen", "label": "vip"})
    session.commit()

    data = outbox.one("customer.created")
    assert (data["attributes"]["firstName"], data["attributes"]["label"]) == ("Gwen", "vip")
    lines = session.scalars(select(CustomerEvent.event).where(CustomerEvent.customer_id == customer.id))
    assert list(lines) == ["created"]


def test_an_order_created_and_updated_in_one_transaction_is_told_created_as_it_ends(session, account, outbox):
    order = orders.create_order(account.live, {"currency": "USD"})
    orders.update_order(order, {"status": "closed"})
    session.commit()

    data = outbox.one("order.created")
    assert (data["id"], data["attributes"]["status"]) == (str(order.id), "closed")


def test_a_commit_ends_what_is_folded_together(session, gwen, outbox):
    customers.update_customer(gwen, {"first_name": "X"})
    session.commit()
    customers.update_customer(gwen, {"first_name": "Gwen"})
    session.commit()

    told = [names(row.payload["data"]) for row in outbox.new()]
    assert told == [("X", "Ray", "X Ray"), ("Gwen", "Ray", "Gwen Ray")]
    assert updated_lines(session, gwen) == [{"fields": ["first_name", "name"]}] * 2


def test_a_savepoints_rollback_ends_what_is_folded_together(session, gwen, outbox):
    with session.begin_nested() as savepoint:
        customers.update_customer(gwen, {"first_name": "X"})
        savepoint.rollback()
    customers.update_customer(gwen, {"last_name": "Rayner"})
    session.commit()

    assert names(outbox.one("customer.updated")) == ("Gwen", "Rayner", "Gwen Rayner")
    assert updated_lines(session, gwen) == [{"fields": ["last_name", "name"]}]
