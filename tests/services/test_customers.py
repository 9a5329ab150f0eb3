"""Customer rules the API tests reach only indirectly: staging, imported hashes, verification."""

import uuid

import pytest
from sqlalchemy import func, select

from freshcom_customers.errors import ValidationFailed
from freshcom_customers.extensions import db
from freshcom_customers.models import Customer, OneTimeToken, Order, WebhookEvent
from freshcom_customers.services import customers, one_time_tokens, orders, passwords, users, webhooks
from tests.statements import statements


def test_add_customer_stages_without_flushing(session, account):
    customer = customers.add_customer(
        account.live, {"status": "registered", "email": "a@x.test", "password": "a-password-1"}
    )
    assert customer in session.new and customer.user in session.new
    session.flush()
    assert session.scalar(select(func.count()).select_from(Customer).where(Customer.id == customer.id)) == 1


def test_an_imported_password_hash_logs_in(session, auth, account):
    imported = passwords.hash_password("from-another-shop-1")
    customers.create_customer(
        account.live, {"status": "registered", "email": "a@x.test", "password_hash": imported}
    )
    session.commit()
    assert auth.login(account, "a@x.test", "from-another-shop-1")["token_type"] == "bearer"


def test_a_guests_registration_needs_a_password(session, account):
    with pytest.raises(ValidationFailed) as error:
        customers.create_customer(account.live, {"status": "registered", "email": "a@x.test"}, by_guest=True)
    assert [(e.field, e.code) for e in error.value.errors] == [("password", "required")]


def test_staff_register_without_a_password_and_the_customer_is_invited(session, account):
    customer = customers.create_customer(account.live, {"status": "registered", "email": "a@x.test"})
    assert customer.user.password_hash is None
    invitation = session.scalar(select(OneTimeToken).where(OneTimeToken.user_id == customer.user.id))
    assert (invitation.purpose, invitation.email) == ("invitation", "a@x.test")


@pytest.mark.parametrize(("email", "still_verified"), [("new@x.test", False), ("A@X.test", True)])
def test_a_new_email_is_unverified_on_customer_and_user(session, account, email, still_verified):
    customer = customers.create_customer(
        account.live, {"status": "registered", "email": "a@x.test", "password": "a-password-1"}
    )
    customer.email_verified = customer.user.email_verified = True
    customers.update_customer(customer, {"email": email})
    assert customer.email_verified is still_verified
    assert customer.user.email_verified is still_verified


def test_a_password_change_voids_outstanding_reset_links(session, account):
    customer = customers.create_customer(
        account.live, {"status": "registered", "email": "a@x.test", "password": "a-password-1"}
    )
    one_time_tokens.issue("password_reset", user=customer.user, email="a@x.test", lifetime=3600)
    users.change_password(customer.user, "a-password-1", "b-password-2")
    left = session.scalar(
        select(func.count()).select_from(OneTimeToken).where(OneTimeToken.user_id == customer.user.id)
    )
    assert left == 0


@pytest.mark.parametrize(
    ("change", "name"),
    [
        ({"last_name": "Bao-Smith"}, "Roy Bao-Smith"),
        ({"last_name": "Bao-Smith", "name": "Roy Bao"}, "Roy Bao-Smith"),  # the whole object posted back
        ({"last_name": "Bao-Smith", "name": "R. B."}, "R. B."),
        ({"first_name": "Ray"}, "Ray Bao"),
    ],
)
def test_a_composed_name_follows_first_and_last_name(session, account, change, name):
    customer = customers.create_customer(account.live, {"first_name": "Roy", "last_name": "Bao"})
    assert customer.name == "Roy Bao"
    customers.update_customer(customer, change)
    assert customer.name == name


def test_a_name_of_its_own_stays(session, account):
    customer = customers.create_customer(
        account.live, {"name": "Captain", "first_name": "Roy", "last_name": "Bao"}
    )
    customers.update_customer(customer, {"last_name": "Bao-Smith", "name": "Captain"})
    assert customer.name == "Captain"


def test_a_deletion_tells_each_detached_order_before_the_customer(session, account):
    webhooks.create_endpoint(account.live, {"url": "https://hooks.example.com/in", "events": ["*"]})
    customer = customers.create_customer(account.live, {"email": "a@x.test"})
    gift = orders.create_order(account.live, {"currency": "USD", "email": "gift@x.test"}, customer)
    bare = orders.create_order(account.live, {"currency": "USD"}, customer)
    bare.email = None  # an order written before orders took their customer's email
    session.commit()
    seen = session.scalar(select(func.max(WebhookEvent.id)))

    customers.delete_customer(customer)

    told = session.scalars(select(WebhookEvent).where(WebhookEvent.id > seen).order_by(WebhookEvent.id)).all()
    assert [row.type for row in told] == ["order.updated", "order.updated", "customer.deleted"]
    assert {row.ordering_key for row in told} == {str(customer.id)}  # delivered in this order
    detached = {row.payload["data"]["id"]: row.payload["data"] for row in told[:2]}
    assert {key: data["relationships"]["customer"]["data"] for key, data in detached.items()} == {
        str(gift.id): None,
        str(bare.id): None,
    }
    assert detached[str(gift.id)]["attributes"]["email"] == "gift@x.test"
    assert detached[str(bare.id)]["attributes"]["email"] == "a@x.test"
    stored = session.execute(select(Order.id, Order.customer_id, Order.email).order_by(Order.email)).all()
    assert [tuple(row) for row in stored] == [(bare.id, None, "a@x.test"), (gift.id, None, "gift@x.test")]


def test_a_list_page_is_one_statement_with_its_counts_and_users(client, auth, account, register, session):
    """A page without a search is one statement, whatever filters it: its rows, their users
    joined (a customer shows its pending email) and the counts beside each row. Each statement
    more is a round trip, and under load each also waits for a core (issue 18)."""
    roy, _ = register()
    session.get(Customer, uuid.UUID(roy["id"])).user.pending_email = "roy.new@example.com"
    session.add(Customer(account_id=account.live.id, status="guest", email="g@x.test"))
    session.commit()
    owner = auth.headers(auth.owner(account))
    with statements(db.engine) as seen:
        body = client.get("/v1/customers", query_string={"filter[label]": ""}, headers=owner).get_json()
    listed = [statement for statement in seen if "customer_counts" in statement]
    assert len(listed) == 1
    assert listed[0].startswith("SELECT customers.account_id, customers.user_id,")
    assert "JOIN users" in listed[0]
    assert [c["attributes"]["pendingEmail"] for c in body["data"]] == [None, "roy.new@example.com"]
    assert body["meta"]["totalCount"] == body["meta"]["allCount"] == 2


@pytest.mark.parametrize(
    ("query", "total"), [({"filter[status]": "suspended"}, 0), ({"page[number]": "2"}, 1)]
)
def test_an_empty_page_still_counts(client, auth, account, register, query, total):
    # No row to carry the counts: they come from a statement of their own.
    register()
    owner = auth.headers(auth.owner(account))
    body = client.get("/v1/customers", query_string=query, headers=owner).get_json()
    assert body["data"] == []
    assert (body["meta"]["allCount"], body["meta"]["totalCount"]) == (1, total)


@pytest.mark.postgres
def test_a_search_reads_its_page_in_one_process(session, account):
    """A search's counts set the rest of the transaction to plan without parallel workers
    (each of its queries reads a bounded number of index entries), and only that transaction.
    A page without a search is one statement, which leaves the setting alone."""
    session.add(Customer(account_id=account.live.id, status="guest", email="g@x.test"))
    session.flush()
    parallel = select(func.current_setting("max_parallel_workers_per_gather"))
    server_default = session.scalar(parallel)
    listing = {"filters": {}, "sort": [("inserted_at", True)], "page": 1, "size": 25}
    customers.list_customers(account.live, search=None, **listing)
    assert session.scalar(parallel) == server_default != "0"
    customers.list_customers(account.live, search="g", **listing)
    assert session.scalar(parallel) == "0"
    session.rollback()
    assert session.scalar(parallel) == server_default
