"""flask webhooks deliver, the delivery worker, run as a timer runs it (--once) and as a service."""

import json
import os
import signal
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from freshcom_customers.models import WebhookDelivery, WebhookEvent
from freshcom_customers.services import customers, webhooks
from tests import webhook_receiver
from tests.webhook_receiver import Reply

receiver = webhook_receiver.receiver


@pytest.fixture(autouse=True)
def signal_handlers():
    """The worker installs its own SIGTERM and SIGINT handlers: give pytest its own back."""
    saved = {name: signal.getsignal(name) for name in (signal.SIGTERM, signal.SIGINT)}
    yield saved
    for name, handler in saved.items():
        signal.signal(name, handler)


@pytest.fixture
def endpoint(account, session, receiver):
    """An endpoint at the receiver wanting every event: (row, secret)."""
    made = webhooks.create_endpoint(account.live, {"url": receiver.url(), "events": ["*"]})
    session.commit()
    return made.endpoint, made.secret


def add_customers(session, account, count: int) -> list:
    made = [customers.create_customer(account.live, {"email": f"c{n}@example.com"}) for n in range(count)]
    session.commit()
    return made


def deliver(runner, *options):
    result = runner.invoke(args=["webhooks", "deliver", *options])
    assert result.exit_code == 0, result.output
    return result


def lines(result) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines()]


def statuses(session) -> list[str]:
    query = select(WebhookDelivery.status).order_by(WebhookDelivery.event_id)
    return session.scalars(query.execution_options(populate_existing=True)).all()


def test_once_delivers_what_is_due_prints_a_line_each_and_stops(runner, session, account, endpoint, receiver):
    _, secret = endpoint
    made = add_customers(session, account, 2)
    message_ids = session.scalars(select(WebhookEvent.message_id).order_by(WebhookEvent.id)).all()
    delivery_ids = session.scalars(select(WebhookDelivery.id).order_by(WebhookDelivery.event_id)).all()

    printed = lines(deliver(runner, "--once"))

    assert [(line["delivery"], line["event"]) for line in printed] == [
        (str(d), m) for d, m in zip(delivery_ids, message_ids, strict=True)
    ]
    for line in printed:
        assert (line["attempt"], line["status"], line["error"], line["recorded"]) == (1, 200, None, True)
        assert isinstance(line["ms"], int)
    assert [r.verified(secret)["data"]["id"] for r in receiver.received] == [str(c.id) for c in made]
    assert statuses(session) == ["succeeded", "succeeded"]


def test_once_with_nothing_due_prints_nothing_and_stops(runner, session, account, endpoint, receiver):
    started = time.monotonic()

    result = deliver(runner, "--once", "--poll", "30")

    assert result.stdout == ""
    assert time.monotonic() - started < 5  # it did not wait for a poll
    assert receiver.received == []


def test_once_takes_batch_after_batch_until_nothing_is_due(runner, session, account, endpoint, receiver):
    add_customers(session, account, 5)

    printed = lines(deliver(runner, "--once", "--batch-size", "2"))

    assert len(printed) == 5
    assert len({line["delivery"] for line in printed}) == 5
    assert len(receiver.received) == 5
    assert statuses(session) == ["succeeded"] * 5


def test_a_failed_attempt_is_printed_and_waits_for_its_retry(runner, session, account, endpoint, receiver):
    receiver.reply(Reply(500, b"nope"))
    add_customers(session, account, 1)

    (line,) = lines(deliver(runner, "--once"))

    assert (line["status"], line["attempt"], line["recorded"]) == (500, 1, True)
    assert statuses(session) == ["pending"]
    assert deliver(runner, "--once").stdout == ""  # not due again before its backoff

    session.execute(update(WebhookDelivery).values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1)))
    session.commit()
    (again,) = lines(deliver(runner, "--once"))
    assert (again["status"], again["attempt"]) == (200, 2)
    assert statuses(session) == ["succeeded"]


def test_a_refused_address_is_printed_with_its_error(
    app, runner, session, account, endpoint, receiver, monkeypatch
):
    add_customers(session, account, 1)
    monkeypatch.setitem(app.config, "WEBHOOK_PRIVATE_ADDRESSES", False)

    (line,) = lines(deliver(runner, "--once"))

    assert line["status"] is None
    assert "not public" in line["error"]
    assert receiver.received == []


@pytest.mark.parametrize("option", [("--batch-size", "0"), ("--batch-size", "101"), ("--poll", "0")])
def test_options_out_of_range_are_refused(runner, option):
    result = runner.invoke(args=["webhooks", "deliver", "--once", *option])
    assert result.exit_code == 2
    assert "Invalid value" in result.output


def test_a_worker_keeps_polling_and_stops_on_sigterm_once_its_deliveries_are_recorded(
    runner, session, account, endpoint, receiver, signal_handlers
):
    add_customers(session, account, 1)
    receiver.reply(Reply(200, delay=0.3))  # SIGTERM arrives while the delivery is in the worker's hands

    def terminate_once_sent():
        deadline = time.monotonic() + 10
        while not receiver.received and time.monotonic() < deadline:
            time.sleep(0.01)
        # Only a worker that installed its own handler is sent SIGTERM: pytest's would end the run.
        if signal.getsignal(signal.SIGTERM) is not signal_handlers[signal.SIGTERM]:
            os.kill(os.getpid(), signal.SIGTERM)

    terminator = threading.Thread(target=terminate_once_sent)
    terminator.start()
    result = deliver(runner, "--poll", "0.05")
    terminator.join()

    (line,) = lines(result)
    assert (line["status"], line["recorded"]) == (200, True)
    assert statuses(session) == ["succeeded"]
