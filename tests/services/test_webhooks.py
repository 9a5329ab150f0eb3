"""Webhook endpoints (services/webhooks.py): the secret, the URL rules by environment, the limit,
the deliveries of an endpoint and a manual retry."""

import base64
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update
from standardwebhooks.webhooks import Webhook

from freshcom_customers.errors import NotFound, ValidationFailed
from freshcom_customers.models import WebhookDelivery, WebhookEndpoint
from freshcom_customers.services import customers, data_keys, webhooks

URL = "https://hooks.example.com/in"
CLOSE = timedelta(seconds=5)


def create(account, **attrs) -> webhooks.Created:
    return webhooks.create_endpoint(account, {"url": URL, "events": ["*"], **attrs})


def problems(attrs: dict, *, account) -> set:
    """The (field, code) pairs create_endpoint refuses attrs with."""
    with pytest.raises(ValidationFailed) as refused:
        webhooks.create_endpoint(account, attrs)
    return {(e.field, e.code) for e in refused.value.errors}


@pytest.fixture
def acme(account):
    return account.live


# The secret


def test_the_secret_is_32_random_bytes_that_sign_and_verify(session, acme):
    made = create(acme)

    assert made.secret.startswith("whsec_")
    assert len(base64.b64decode(made.secret.removeprefix("whsec_"), validate=True)) == 32
    signature = Webhook(made.secret).sign("msg_1", datetime.now(UTC), b"{}")
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(int(datetime.now(UTC).timestamp()))}
    assert Webhook(made.secret).verify(b"{}", {**headers, "webhook-signature": signature}) == {}
    assert create(acme).secret != made.secret


def test_the_secret_is_kept_encrypted_with_the_data_keys(session, acme, data_keys_of):
    made = create(acme)
    session.commit()

    stored = session.scalar(
        select(WebhookEndpoint.secret_ciphertext).where(WebhookEndpoint.id == made.endpoint.id)
    )
    assert made.secret.removeprefix("whsec_") not in stored
    assert webhooks.secret_of(made.endpoint) == made.secret
    data_keys_of()
    with pytest.raises(data_keys.UnreadableSecret):
        webhooks.secret_of(made.endpoint)


def test_an_update_keeps_the_secret(session, acme):
    made = create(acme)

    webhooks.update_endpoint(made.endpoint, {"url": "https://other.example.com/in", "enabled": False})

    assert webhooks.secret_of(made.endpoint) == made.secret


# Events


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        (["order.created", "customer.created", "order.created"], ["customer.created", "order.created"]),
        (["customer.deleted", "*"], ["*"]),
        (["*"], ["*"]),
    ],
)
def test_events_are_kept_sorted_without_repeats_and_a_star_is_all(session, acme, given, kept):
    assert create(acme, events=given).endpoint.events == kept


@pytest.mark.parametrize(
    "events", [[], ["customer.exploded"], "*", None, [None], [1], ["customer.created"] * 12]
)
def test_events_that_are_not_a_short_list_of_known_types_are_refused(session, acme, events):
    assert problems({"url": URL, "events": events}, account=acme) == {("events", "invalid")}


# URL rules


@pytest.mark.parametrize(
    ("environment", "configured", "allowed"),
    [
        ("development", None, True),
        ("test", None, True),
        ("production", None, False),
        ("production", True, True),
        ("development", False, False),
    ],
)
def test_private_addresses_are_allowed_outside_production_unless_configured(
    app, monkeypatch, environment, configured, allowed
):
    monkeypatch.setitem(app.config, "ENV", environment)
    monkeypatch.setitem(app.config, "WEBHOOK_PRIVATE_ADDRESSES", configured)

    assert webhooks.private_addresses_allowed() is allowed


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/in?token=abc",
        "https://hooks.example.com:8443/in",
        "https://xn--bcher-kva.example/in",
        "http://127.0.0.1:9000/in",
        "http://127.8.9.10/in",
        "http://localhost/in",
        "http://[::1]:9000/in",
        "https://192.168.1.20/in",
    ],
)
def test_outside_production_these_urls_are_accepted(session, acme, url):
    assert create(acme, url=url).endpoint.url == url


@pytest.mark.parametrize(
    "url",
    [
        None,
        42,
        "",
        "hooks.example.com",
        "//hooks.example.com/in",
        "ftp://hooks.example.com/in",
        "javascript:alert(1)",
        "file:///etc/passwd",
        "http://hooks.example.com/in",
        "http://192.168.1.20/in",
        "https://user:secret@hooks.example.com/in",
        "https://hooks.example.com/in#fragment",
        "https://hooks.example.com/\tin",
        "https://bücher.example/in",
        "https://hooks.example.com:0x50/in",
        "https://[::1/in",
        "https://hooks.example.com/" + "a" * 2048,
    ],
)
def test_these_urls_are_refused_everywhere(session, acme, url):
    assert problems({"url": url, "events": ["*"]}, account=acme) == {("url", "invalid")}


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/in",
        "http://localhost/in",
        "https://127.0.0.1/in",
        "https://10.0.0.1/in",
        "https://172.16.5.4/in",
        "https://100.64.0.1/in",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/in",
        "https://[fe80::1]/in",
        "https://[fd12:3456::1]/in",
        "https://[::ffff:10.0.0.1]/in",
        "https://0.0.0.0/in",
        "https://239.1.1.1/in",
    ],
)
def test_production_refuses_http_and_addresses_that_are_not_public(
    session, acme, webhooks_in_production, url
):
    assert problems({"url": url, "events": ["*"]}, account=acme) == {("url", "invalid")}


def test_production_leaves_names_to_the_delivery_which_resolves_them(session, acme, webhooks_in_production):
    # A name may resolve anywhere, at any time: services/webhook_delivery checks each attempt.
    assert create(acme, url="https://localhost/in").endpoint.url == "https://localhost/in"
    assert create(acme, url="https://93.184.215.14/in").endpoint.url == "https://93.184.215.14/in"


def test_update_checks_only_what_it_changes(session, acme, webhooks_in_production):
    made = create(acme)

    with pytest.raises(ValidationFailed):
        webhooks.update_endpoint(made.endpoint, {"url": "https://10.0.0.1/in"})
    webhooks.update_endpoint(made.endpoint, {"description": "CRM"})

    assert (made.endpoint.url, made.endpoint.description) == (URL, "CRM")


def test_required_fields_and_description_length(session, acme):
    assert problems({}, account=acme) == {("url", "required"), ("events", "required")}
    assert problems({"url": URL, "events": ["*"], "description": "x" * 256}, account=acme) == {
        ("description", "length")
    }
    assert create(acme, description="x" * 255).endpoint.description == "x" * 255


# The limit


def test_an_account_has_at_most_16_endpoints_and_its_test_twin_its_own_16(session, account, other_account):
    for _ in range(webhooks.MAX_ENDPOINTS):
        create(account.live)

    assert problems({"url": URL, "events": ["*"]}, account=account.live) == {("url", "limit")}
    create(account.test)
    create(other_account.live)
    count = (
        select(func.count()).select_from(WebhookEndpoint).where(WebhookEndpoint.account_id == account.live.id)
    )
    assert session.scalar(count) == 16


def test_a_deleted_endpoint_frees_its_place(session, acme):
    made = [create(acme) for _ in range(webhooks.MAX_ENDPOINTS)]

    webhooks.delete_endpoint(made[0].endpoint)

    create(acme)


# Reading, deliveries, retry


def test_another_accounts_endpoint_and_delivery_are_not_found(session, account, other_account):
    made = create(other_account.live)
    customers.create_customer(other_account.live, {"email": "gwen@example.com"})
    delivery = session.scalars(select(WebhookDelivery)).one()

    with pytest.raises(NotFound):
        webhooks.get_endpoint(account.live, made.endpoint.id)
    with pytest.raises(NotFound):
        webhooks.get_delivery(account.live, delivery.id)
    with pytest.raises(NotFound):
        webhooks.get_delivery(account.live, "not-an-id")
    assert webhooks.get_delivery(other_account.live, str(delivery.id)) is delivery
    assert webhooks.list_endpoints(account.live, page=1, size=10) == ([], 0)


def test_an_endpoints_deliveries_are_listed_newest_event_first(session, acme):
    made = create(acme)
    create(acme)  # another endpoint's deliveries are its own
    for n in range(3):
        customers.create_customer(acme, {"email": f"c{n}@example.com"})
    session.commit()

    rows, total = webhooks.deliveries_of(made.endpoint, page=1, size=2)
    rest, _ = webhooks.deliveries_of(made.endpoint, page=2, size=2)

    assert total == 3
    event_ids = [d.event_id for d in [*rows, *rest]]
    assert event_ids == sorted(event_ids, reverse=True)
    assert {d.endpoint_id for d in [*rows, *rest]} == {made.endpoint.id}


def test_deleting_an_endpoint_deletes_its_deliveries(session, acme):
    made = create(acme)
    kept = create(acme)
    customers.create_customer(acme, {"email": "gwen@example.com"})
    session.commit()

    webhooks.delete_endpoint(made.endpoint)
    session.commit()

    endpoint_ids = session.scalars(select(WebhookDelivery.endpoint_id)).all()
    assert endpoint_ids == [kept.endpoint.id]


def test_a_retry_makes_a_delivery_pending_now_for_another_retry_period(session, acme):
    create(acme)
    customers.create_customer(acme, {"email": "gwen@example.com"})
    session.execute(
        update(WebhookDelivery).values(
            status="failed",
            attempts=7,
            next_attempt_at=None,
            give_up_at=datetime.now(UTC) - timedelta(days=1),
            lease_token=uuid.uuid4(),
            lease_until=datetime.now(UTC) + timedelta(seconds=30),
        )
    )
    delivery = session.scalars(select(WebhookDelivery).execution_options(populate_existing=True)).one()

    webhooks.retry(delivery)

    assert (delivery.status, delivery.attempts) == ("pending", 7)
    assert abs(delivery.next_attempt_at - datetime.now(UTC)) < CLOSE
    assert abs(delivery.give_up_at - (datetime.now(UTC) + webhooks.retry_period())) < CLOSE
    assert (delivery.lease_token, delivery.lease_until) == (None, None)
