"""Command line: flask webhooks deliver, a webhook delivery worker (API.md 12; deploy's unit runs it).

Any number may run at once, on any hosts that reach the database: each claims its own
deliveries (services/webhook_delivery.py). SIGTERM or Ctrl-C stops a worker once the
deliveries in its hands are recorded; SIGKILL loses nothing either, as their leases run out
and another worker sends them again.
"""

import json
import signal
import time

import click
from sqlalchemy.exc import SQLAlchemyError

from freshcom_customers.extensions import db
from freshcom_customers.http import schema
from freshcom_customers.services import database, webhook_delivery

webhooks_cli = click.Group("webhooks", help="Deliver webhook events.")


@webhooks_cli.command("deliver")
@click.option("--once", is_flag=True, help="Deliver what is due now, then stop (a timer's run, a test).")
@click.option(
    "--batch-size",
    type=click.IntRange(1, 100),
    default=10,
    show_default=True,
    help="Deliveries claimed at once.",
)
@click.option(
    "--poll",
    type=click.FloatRange(0.05, 60),
    default=1.0,
    show_default=True,
    help="Seconds to wait when none is due.",
)
@schema.required
def deliver(once, batch_size, poll):
    """Send due webhook deliveries until stopped; print one JSON line per attempt."""
    stopping = []
    for name in ("SIGTERM", "SIGINT"):
        signal.signal(getattr(signal, name), lambda *_: stopping.append(True))
    while not stopping:
        try:
            claimed = webhook_delivery.claim(batch_size)
        except SQLAlchemyError as error:
            db.session.rollback()
            if not database.is_outage(error):
                raise
            click.echo(json.dumps({"error": "database unavailable"}), err=True)
            time.sleep(poll * 5)
            continue
        for delivery in claimed:
            answer = webhook_delivery.send(delivery)
            kept = webhook_delivery.record(delivery, answer)
            click.echo(json.dumps(_line(delivery, answer, kept)))
        if not claimed:
            if once:
                break
            time.sleep(poll)


def _line(delivery, answer, kept: bool) -> dict:
    return {
        "delivery": str(delivery.id),
        "event": delivery.message_id,
        "attempt": delivery.attempt,
        "status": answer.status,
        "ms": answer.duration_ms,
        "error": answer.error,
        "recorded": kept,
    }
