"""Command line: flask housekeeping, the periodic purge of tokens past their life (deploy's timer runs it)."""

import json
import sys
import time
from contextlib import contextmanager
from datetime import timedelta

import click

from freshcom_customers.extensions import db
from freshcom_customers.http import schema
from freshcom_customers.services import housekeeping

DEFAULT_RETENTION_DAYS = housekeeping.DEFAULT_RETENTION.days


@click.command("housekeeping")
@click.option("--dry-run", is_flag=True, help="Count what would be deleted, and delete nothing.")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=housekeeping.DEFAULT_BATCH_SIZE,
    show_default=True,
    help="Tokens per DELETE; each batch is its own transaction, so an interrupted purge keeps its batches.",
)
@click.option(
    "--retention-days",
    type=click.IntRange(min=1),
    default=DEFAULT_RETENTION_DAYS,
    show_default=True,
    help="Keep tokens this many days past their expiry (for investigations, and to see late reuse).",
)
@schema.required
def purge_tokens(dry_run, batch_size, retention_days):
    """Delete expired tokens, old sessions, delivered webhook events and the failed logins of no
    customer; print a JSON summary.

    A refresh token family goes whole, once its absolute expiry is more than the retention in
    the past; publishable keys are never deleted. A login session goes once ended, or expired
    (its family gone, its Chec JWT expired), longer than the retention ago; a webhook event
    once it happened that long ago and waits for no delivery. Prints {"oneTimeTokens",
    "refreshTokens", "sessions", "webhookEvents", "unknownFailedLogins", "seconds", "dryRun"}
    on one line; a progress bar is drawn on stderr when it is a terminal.
    """
    started = time.monotonic()
    try:
        before = housekeeping.purge_before(timedelta(days=retention_days))
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--retention-days") from None
    counts = housekeeping.count(before) if dry_run else _purge(before, batch_size)
    summary = {
        "oneTimeTokens": counts.one_time_tokens,
        "refreshTokens": counts.refresh_tokens,
        "sessions": counts.sessions,
        "webhookEvents": counts.webhook_events,
        "unknownFailedLogins": counts.unknown_failed_logins,
        "seconds": round(time.monotonic() - started, 3),
        "dryRun": dry_run,
    }
    click.echo(json.dumps(summary))


def _purge(before, batch_size: int) -> housekeeping.Counts:
    with _progress(before) as advance:
        return housekeeping.Counts(
            _commit_each(housekeeping.purge_one_time_tokens(before, batch_size), advance),
            _commit_each(housekeeping.purge_refresh_tokens(before, batch_size), advance),
            _commit_each(housekeeping.purge_sessions(before, batch_size), advance),
            _commit_each(housekeeping.purge_webhook_events(before, batch_size), advance),
            _commit_each(housekeeping.purge_unknown_failed_logins(before, batch_size), advance),
        )


def _commit_each(batches, advance) -> int:
    """Commit batch by batch, so that locks are held briefly and an interruption keeps what is done."""
    total = 0
    for deleted in batches:
        db.session.commit()
        total += deleted
        advance(deleted)
    return total


def _on_terminal() -> bool:
    return sys.stderr.isatty()


@contextmanager
def _progress(before):
    """Yield a function that advances a bar on stderr; no bar (and no count) off a terminal."""
    if not _on_terminal():
        yield lambda deleted: None
        return
    total = sum(housekeeping.count(before))
    with click.progressbar(length=total, label="Purging tokens", file=sys.stderr) as bar:
        yield bar.update
