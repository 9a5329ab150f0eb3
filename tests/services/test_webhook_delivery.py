"""Delivering webhook events (services/webhook_delivery.py): signed POSTs to a real receiver on
127.0.0.1, retries with backoff, per-customer order, leases, and the addresses it refuses."""

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from freshcom_customers.extensions import db
from freshcom_customers.models import WebhookDelivery, WebhookEvent
from freshcom_customers.services import customers, webhook_delivery, webhooks
from tests import webhook_receiver
from tests.statements import statements
from tests.webhook_receiver import Reply, deliver_due

receiver = webhook_receiver.receiver

FIRST_RETRY = timedelta(seconds=30)  # WEBHOOK_FIRST_RETRY's default
CLOSE = timedelta(seconds=5)  # how far apart two instants of one test may be


class Clock:
    """The worker's clock (webhook_delivery.utcnow), moved on by hand from the real time."""

    def __init__(self, monkeypatch):
        self.offset = timedelta()
        monkeypatch.setattr(webhook_delivery, "utcnow", self.now)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch) -> Clock:
    return Clock(monkeypatch)


@pytest.fixture
def endpoint(account, session, receiver):
    """An endpoint of the account at the receiver, wanting every event: (row, secret)."""
    made = webhooks.create_endpoint(account.live, {"url": receiver.url(), "events": ["*"]})
    session.commit()
    return made.endpoint, made.secret


def add_customer(session, account, **attrs):
    """A guest customer, committed: one customer.created event."""
    customer = customers.create_customer(account.live, {"email": "gwen@example.com", **attrs})
    session.commit()
    return customer


def deliveries(session) -> list[WebhookDelivery]:
    """Every delivery as the database has it now, in the order of their events."""
    query = select(WebhookDelivery).order_by(WebhookDelivery.event_id)
    return session.scalars(query.execution_options(populate_existing=True)).all()


def one_delivery(session) -> WebhookDelivery:
    (delivery,) = deliveries(session)
    return delivery


def move(session, **values) -> None:
    """Set columns of every delivery: what the passing of time would do to them."""
    session.execute(update(WebhookDelivery).values(**values))
    session.commit()


def close_to(instant: datetime, expected: datetime) -> bool:
    return abs(instant - expected) < CLOSE


# Sending


def test_a_delivery_is_a_post_signed_as_standard_webhooks_says(session, account, endpoint, receiver):
    _, secret = endpoint
    customer = add_customer(session, account, first_name="Gwen")

    ((claimed, answer),) = deliver_due()

    assert (answer.status, answer.error) == (200, None)
    (request,) = receiver.received
    assert request.path == "/hooks"
    payload = request.verified(secret)
    event = session.scalars(select(WebhookEvent)).one()
    assert payload == event.payload
    assert payload["type"] == "customer.created"
    assert payload["data"]["id"] == str(customer.id)
    assert payload["data"]["attributes"]["firstName"] == "Gwen"
    assert request.headers["webhook-id"] == event.message_id == claimed.message_id
    sent_at = datetime.fromtimestamp(int(request.headers["webhook-timestamp"]), UTC)
    assert close_to(sent_at, datetime.now(UTC))
    assert request.headers["webhook-signature"].startswith("v1,")
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body) == payload
    delivery = one_delivery(session)
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("succeeded", 1, 200)
    assert (delivery.next_attempt_at, delivery.lease_token, delivery.lease_until) == (None, None, None)
    assert delivery.duration_ms is not None and delivery.duration_ms >= 0
    assert deliver_due() == []  # sent once


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_any_2xx_is_a_success(session, account, endpoint, receiver, status):
    receiver.reply(Reply(status))
    add_customer(session, account)

    deliver_due()

    assert one_delivery(session).status == "succeeded"


def test_a_500_is_retried_after_the_first_delay_and_the_answer_is_kept(session, account, endpoint, receiver):
    receiver.reply(Reply(500, b"x" * 5000))
    add_customer(session, account)

    deliver_due()

    delivery = one_delivery(session)
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("pending", 1, 500)
    assert close_to(delivery.next_attempt_at, delivery.last_attempt_at + FIRST_RETRY)
    assert close_to(delivery.last_attempt_at, datetime.now(UTC))
    assert delivery.response_body == "x" * 1024
    assert (delivery.lease_token, delivery.lease_until) == (None, None)
    assert deliver_due() == []  # not due before its time


def test_a_body_is_kept_to_1024_bytes_whatever_its_characters(session, account, endpoint, receiver):
    receiver.reply(Reply(500, b"a" + "é".encode() * 2000))
    add_customer(session, account)

    deliver_due()

    # 1 + 511 * 2 bytes, then half of an é: a replacement character, never an error.
    assert one_delivery(session).response_body == "a" + "é" * 511 + "\ufffd"


def test_each_retry_waits_twice_as_long_as_the_one_before(session, account, endpoint, receiver, clock):
    receiver.reply(Reply(500), Reply(500), Reply(500))
    add_customer(session, account)
    waits = []

    for _ in range(3):
        assert len(deliver_due()) == 1
        delivery = one_delivery(session)
        waits.append(delivery.next_attempt_at - delivery.last_attempt_at)
        clock.advance((delivery.next_attempt_at - clock.now()).total_seconds() + 1)

    assert [round(wait.total_seconds()) for wait in waits] == [30, 60, 120]
    assert one_delivery(session).attempts == 3


def test_the_backoff_doubles_from_the_first_retry_and_stops_at_6_hours(app, monkeypatch):
    assert [webhook_delivery.backoff(n).total_seconds() for n in range(1, 6)] == [30, 60, 120, 240, 480]
    assert webhook_delivery.backoff(10) == timedelta(seconds=30 * 512)
    assert webhook_delivery.backoff(11) == timedelta(hours=6)
    assert webhook_delivery.backoff(1000) == timedelta(hours=6)
    monkeypatch.setitem(app.config, "WEBHOOK_FIRST_RETRY", 5)
    assert [webhook_delivery.backoff(n).total_seconds() for n in (1, 2, 3)] == [5, 10, 20]


def test_a_retry_never_waits_past_the_give_up_time(session, account, endpoint, receiver):
    receiver.reply(Reply(500))
    add_customer(session, account)
    give_up_at = datetime.now(UTC) + timedelta(seconds=10)
    move(session, give_up_at=give_up_at)

    deliver_due()

    delivery = one_delivery(session)
    assert delivery.status == "pending"
    assert delivery.next_attempt_at == give_up_at


def test_a_failure_past_the_give_up_time_fails_for_good(session, account, endpoint, receiver):
    receiver.reply(Reply(503))
    add_customer(session, account)
    move(session, give_up_at=datetime.now(UTC) - timedelta(seconds=1))

    deliver_due()

    delivery = one_delivery(session)
    assert (delivery.status, delivery.response_code, delivery.next_attempt_at) == ("failed", 503, None)
    move(session, next_attempt_at=datetime.now(UTC) - timedelta(hours=1))
    assert deliver_due() == []  # a failed delivery is not sent again but by a retry


def test_a_success_at_the_last_attempt_still_succeeds(session, account, endpoint, receiver):
    add_customer(session, account)
    move(session, give_up_at=datetime.now(UTC) - timedelta(seconds=1))

    deliver_due()

    assert one_delivery(session).status == "succeeded"


def test_a_manual_retry_sends_a_failed_delivery_again(session, account, endpoint, receiver):
    receiver.reply(Reply(500))
    add_customer(session, account)
    move(session, give_up_at=datetime.now(UTC) - timedelta(seconds=1))
    deliver_due()

    webhooks.retry(one_delivery(session))
    session.commit()
    deliver_due()

    delivery = one_delivery(session)
    assert (delivery.status, delivery.attempts) == ("succeeded", 2)
    assert close_to(delivery.give_up_at, datetime.now(UTC) + webhooks.retry_period())
    first, second = receiver.received
    assert first.body == second.body
    assert first.headers["webhook-id"] == second.headers["webhook-id"]


def test_a_redirect_is_a_failure_and_is_not_followed(session, account, endpoint, receiver):
    receiver.reply(Reply(302, headers={"Location": receiver.url("/elsewhere")}))
    add_customer(session, account)

    deliver_due()

    assert [request.path for request in receiver.received] == ["/hooks"]
    delivery = one_delivery(session)
    assert (delivery.status, delivery.response_code) == ("pending", 302)


def test_a_receiver_slower_than_the_timeout_is_a_failure(
    app, session, account, endpoint, receiver, monkeypatch
):
    monkeypatch.setitem(app.config, "WEBHOOK_TIMEOUT", 1)
    receiver.reply(Reply(200, delay=1.5))
    add_customer(session, account)
    started = time.monotonic()

    ((_, answer),) = deliver_due()

    assert time.monotonic() - started < 1.4
    assert (answer.status, answer.error) == (None, "The receiver did not answer in time.")
    delivery = one_delivery(session)
    assert (delivery.status, delivery.response_code) == ("pending", None)
    assert delivery.error == "The receiver did not answer in time."
    assert 900 <= delivery.duration_ms < 1400
    assert close_to(delivery.next_attempt_at, delivery.last_attempt_at + FIRST_RETRY)


def test_a_refused_connection_is_a_failure(session, account, receiver):
    port = receiver.port
    receiver.close()
    webhooks.create_endpoint(account.live, {"url": f"http://127.0.0.1:{port}/hooks", "events": ["*"]})
    add_customer(session, account)

    ((_, answer),) = deliver_due()

    # urllib3 makes a refused connection a kind of connect timeout: it is still told as refused.
    assert (answer.status, answer.error) == (None, "The connection was refused or could not be made.")
    delivery = one_delivery(session)
    assert (delivery.status, delivery.response_code, delivery.error) == ("pending", None, answer.error)


# Addresses


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_host_that_is_not_public_is_refused_and_nothing_is_sent(
    app, session, account, receiver, monkeypatch, host
):
    webhooks.create_endpoint(account.live, {"url": receiver.url(host=host), "events": ["*"]})
    add_customer(session, account)
    monkeypatch.setitem(app.config, "WEBHOOK_PRIVATE_ADDRESSES", False)

    ((_, answer),) = deliver_due()

    assert answer.status is None
    assert "resolves to an address that is not public" in answer.error
    assert receiver.received == []
    delivery = one_delivery(session)
    assert (delivery.status, delivery.response_code) == ("pending", None)
    assert "not public" in delivery.error


def test_in_production_private_addresses_are_refused_unless_configured(
    app, session, account, receiver, monkeypatch
):
    webhooks.create_endpoint(account.live, {"url": receiver.url(), "events": ["*"]})
    add_customer(session, account)
    monkeypatch.setitem(app.config, "ENV", "production")

    ((_, refused),) = deliver_due()
    assert refused.error is not None and receiver.received == []

    monkeypatch.setitem(app.config, "WEBHOOK_PRIVATE_ADDRESSES", True)
    move(session, next_attempt_at=datetime.now(UTC))
    ((_, sent),) = deliver_due()
    assert sent.status == 200 and len(receiver.received) == 1


def test_a_host_that_does_not_resolve_is_a_failure(session, account):
    webhooks.create_endpoint(account.live, {"url": "https://nowhere.invalid/hooks", "events": ["*"]})
    add_customer(session, account)

    ((_, answer),) = deliver_due()

    assert (answer.status, answer.error) == (None, "The host nowhere.invalid does not resolve.")
    assert one_delivery(session).error == answer.error


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.215.14", True),
        ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.0.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1", False),
        ("fd00::1", False),
        ("::ffff:10.0.0.1", False),
        ("::ffff:93.184.215.14", True),
    ],
)
def test_public_addresses(address, public):
    assert webhooks.is_public(address) is public


# Claims: order, leases, workers


def test_a_customers_later_event_waits_for_its_earlier_one(session, account, endpoint, receiver, clock):
    gwen = add_customer(session, account)
    customers.update_customer(gwen, {"first_name": "Gwen"})
    session.commit()
    ann = add_customer(session, account, email="ann@example.com")
    first, later, other = deliveries(session)
    receiver.reply(Reply(500))

    claimed = webhook_delivery.claim(10)

    assert [c.id for c in claimed] == [first.id, other.id]
    for delivery in claimed:
        webhook_delivery.record(delivery, webhook_delivery.send(delivery))
    clock.advance(3600)
    assert [c.id for c, _ in deliver_due()] == [first.id]  # the retry; the later one still waits
    assert [c.id for c, _ in deliver_due()] == [later.id]
    bodies = [json.loads(request.body) for request in receiver.received]
    assert [(b["type"], b["data"]["id"]) for b in bodies] == [
        ("customer.created", str(gwen.id)),
        ("customer.created", str(ann.id)),
        ("customer.created", str(gwen.id)),
        ("customer.updated", str(gwen.id)),
    ]


def test_a_delivery_that_failed_for_good_no_longer_holds_the_next_back(session, account, endpoint, receiver):
    gwen = add_customer(session, account)
    customers.update_customer(gwen, {"first_name": "Gwen"})
    session.commit()
    first, later = deliveries(session)
    session.execute(
        update(WebhookDelivery).where(WebhookDelivery.id == first.id).values(give_up_at=datetime.now(UTC))
    )
    session.commit()
    receiver.reply(Reply(500))

    assert [c.id for c, _ in deliver_due()] == [first.id]
    assert [c.id for c, _ in deliver_due()] == [later.id]
    assert [d.status for d in deliveries(session)] == ["failed", "succeeded"]


def test_a_claimed_delivery_is_not_claimed_again_until_its_lease_runs_out(session, account, endpoint, clock):
    add_customer(session, account)

    (first,) = webhook_delivery.claim(10)
    assert webhook_delivery.claim(10) == []
    clock.advance(webhook_delivery.lease().total_seconds() - 5)
    assert webhook_delivery.claim(10) == []
    clock.advance(10)
    (again,) = webhook_delivery.claim(10)

    assert again.id == first.id
    assert (first.attempt, again.attempt) == (1, 2)
    assert again.lease_token != first.lease_token


def test_the_lease_outlasts_two_timeouts(app, monkeypatch):
    assert webhook_delivery.lease() == timedelta(seconds=60)
    monkeypatch.setitem(app.config, "WEBHOOK_TIMEOUT", 45)
    assert webhook_delivery.lease() == timedelta(seconds=90)


def test_an_answer_recorded_with_a_lapsed_lease_writes_nothing(session, account, endpoint, clock):
    add_customer(session, account)
    (slow,) = webhook_delivery.claim(10)
    clock.advance(webhook_delivery.lease().total_seconds() + 1)
    (fresh,) = webhook_delivery.claim(10)

    assert webhook_delivery.record(slow, webhook_delivery.Answer(200, 5)) is False

    delivery = one_delivery(session)
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("pending", 2, None)
    assert delivery.lease_token == fresh.lease_token
    assert webhook_delivery.record(fresh, webhook_delivery.Answer(200, 5)) is True
    assert one_delivery(session).status == "succeeded"


@pytest.mark.postgres
def test_claims_and_results_commit_without_waiting_for_the_disk_or_a_round_trip_for_it(
    session, account, endpoint
):
    """synchronous_commit off comes inside the claim's and the result's first statement, as
    each finds its delivery, not as a SET of its own."""
    setting = select(func.current_setting("synchronous_commit"))
    server_default = session.scalar(setting)
    assert server_default != "off"
    assert webhook_delivery.claim(10) == []  # nothing due: nothing set
    assert session.scalar(setting) == server_default
    add_customer(session, account)
    with statements(db.engine) as seen:
        (claimed,) = webhook_delivery.claim(10)
        assert webhook_delivery.record(claimed, webhook_delivery.Answer(200, 5)) is True
    assert session.scalar(setting) == "off"  # the test's commits release into its transaction
    locking = [statement for statement in seen if "FOR UPDATE" in statement]
    assert len(locking) == 2 and all("set_config" in statement for statement in locking)
    assert not any(statement.startswith("SET") for statement in seen)


def test_claims_never_share_a_delivery(session, account, endpoint):
    for n in range(3):
        add_customer(session, account, email=f"c{n}@example.com")

    claims = [webhook_delivery.claim(2), webhook_delivery.claim(2), webhook_delivery.claim(2)]

    assert [len(c) for c in claims] == [2, 1, 0]
    assert len({c.id for claim in claims for c in claim}) == 3
    assert len({c.lease_token for claim in claims for c in claim}) == 2


def test_a_disabled_endpoints_deliveries_wait_until_it_is_enabled(session, account, endpoint, receiver):
    row, _ = endpoint
    add_customer(session, account)
    webhooks.update_endpoint(row, {"enabled": False})
    session.commit()

    assert deliver_due() == []

    webhooks.update_endpoint(row, {"enabled": True})
    session.commit()
    assert len(deliver_due()) == 1
    assert len(receiver.received) == 1


def test_an_endpoints_new_url_is_used_for_what_is_still_pending(session, account, endpoint, receiver):
    row, secret = endpoint
    add_customer(session, account)
    webhooks.update_endpoint(row, {"url": receiver.url("/moved")})
    session.commit()

    deliver_due()

    (request,) = receiver.received
    assert request.path == "/moved"
    request.verified(secret)


# The whole attempt's deadline


@pytest.mark.parametrize(
    "reply",
    [Reply(200, b"x" * 30, drip=0.2), Reply(200, drip=0.1, drip_head=True)],
    ids=["body", "status-line-and-headers"],
)
def test_a_receiver_that_drips_its_answer_is_cut_off_at_the_timeout(
    app, session, account, endpoint, receiver, monkeypatch, reply
):
    # Each byte comes well within a read's timeout: only the attempt's own deadline stops it.
    monkeypatch.setitem(app.config, "WEBHOOK_TIMEOUT", 1)
    receiver.reply(reply)
    add_customer(session, account)
    started = time.monotonic()

    ((_, answer),) = deliver_due()

    assert time.monotonic() - started < 1.5
    assert (answer.status, answer.error) == (None, "The receiver did not answer in time.")
    delivery = one_delivery(session)
    assert (delivery.status, delivery.response_code) == ("pending", None)
    assert delivery.error == "The receiver did not answer in time."
    assert 900 <= delivery.duration_ms < 1500
    assert close_to(delivery.next_attempt_at, delivery.last_attempt_at + FIRST_RETRY)


# A secret no data key opens


def test_an_endpoint_whose_secret_cannot_be_read_backs_off_and_the_others_are_delivered(
    session, account, endpoint, receiver, data_keys_of, caplog
):
    locked, _ = endpoint
    data_keys_of()  # a new key alone: the endpoint's secret no longer opens
    readable = webhooks.create_endpoint(account.live, {"url": receiver.url("/readable"), "events": ["*"]})
    session.commit()
    add_customer(session, account)
    endpoint_of = {d.id: d.endpoint_id for d in deliveries(session)}

    done = {endpoint_of[claimed.id]: (claimed, answer) for claimed, answer in deliver_due()}

    assert len({claimed.lease_token for claimed, _ in done.values()}) == 1  # one batch
    claimed, answer = done[locked.id]
    assert claimed.secret is None
    assert (answer.status, answer.error) == (
        None,
        "The endpoint's secret cannot be read: a data key is missing.",
    )
    (request,) = receiver.received
    assert request.path == "/readable"
    request.verified(readable.secret)
    by_endpoint = {d.endpoint_id: d for d in deliveries(session)}
    stuck, sent = by_endpoint[locked.id], by_endpoint[readable.endpoint.id]
    assert (stuck.status, stuck.attempts, stuck.error) == ("pending", 1, answer.error)
    assert close_to(stuck.next_attempt_at, stuck.last_attempt_at + FIRST_RETRY)
    assert (stuck.lease_token, stuck.lease_until) == (None, None)
    assert sent.status == "succeeded"
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [
        f"webhook endpoint {locked.id}: no data key opens its secret"
    ]


# A manual retry and the worker that holds the delivery


def test_a_retry_leaves_a_delivery_in_a_workers_hands_to_that_worker(session, account, endpoint, clock):
    add_customer(session, account)
    (sending,) = webhook_delivery.claim(10)
    leased_until = one_delivery(session).lease_until

    webhooks.retry(one_delivery(session))
    session.commit()

    delivery = one_delivery(session)
    assert (delivery.status, delivery.lease_token) == ("pending", sending.lease_token)
    assert delivery.lease_until == leased_until
    assert webhook_delivery.claim(10) == []  # no second worker sends it meanwhile
    clock.advance(webhook_delivery.lease().total_seconds() + 1)
    (again,) = webhook_delivery.claim(10)
    assert (again.id, again.attempt) == (sending.id, 2)


def test_a_retry_clears_a_lease_no_worker_holds_any_more(session, account, endpoint, receiver):
    add_customer(session, account)
    (lost,) = webhook_delivery.claim(10)  # its worker died: the lease runs out
    move(session, lease_until=datetime.now(UTC) - timedelta(seconds=1), next_attempt_at=None)

    webhooks.retry(one_delivery(session))
    session.commit()

    assert (one_delivery(session).lease_token, one_delivery(session).lease_until) == (None, None)
    ((claimed, answer),) = deliver_due()
    assert (claimed.id, claimed.attempt, answer.status) == (lost.id, 2, 200)


def test_a_retry_made_while_a_worker_sends_survives_that_attempts_failure(
    session, account, endpoint, receiver
):
    receiver.reply(Reply(500))
    add_customer(session, account)
    move(session, give_up_at=datetime.now(UTC) - timedelta(seconds=1))  # its last attempt
    (sending,) = webhook_delivery.claim(10)

    webhooks.retry(one_delivery(session))
    session.commit()
    webhook_delivery.record(sending, webhook_delivery.send(sending))

    delivery = one_delivery(session)
    assert delivery.status == "pending"
    assert close_to(delivery.give_up_at, datetime.now(UTC) + webhooks.retry_period())
