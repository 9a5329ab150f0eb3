"""Command line: flask data-keys new|rotate, the keys that encrypt secrets at rest (services/data_keys.py)."""

import json

import click
from sqlalchemy import select

from freshcom_customers.extensions import db
from freshcom_customers.http import schema
from freshcom_customers.models import OneTimeToken, User, WebhookEndpoint
from freshcom_customers.services import data_keys

data_keys_cli = click.Group("data-keys", help="The Fernet keys of FRESHCOM_DATA_KEYS.")
BATCH = 500


@data_keys_cli.command("new")
def new_key():
    """Print a new random key, to put first in FRESHCOM_DATA_KEYS."""
    click.echo(data_keys.new_key())


@data_keys_cli.command("rotate")
@schema.required
def rotate():
    """Encrypt every stored secret with the first key of FRESHCOM_DATA_KEYS; print a JSON summary.

    Run it after putting a new key first and restarting every process with the new list; then
    the old keys can leave the list. Each batch of users commits on its own.
    """
    rotated = users = 0
    last_id = None
    while True:
        query = select(User).where(User.totp_secret.is_not(None)).order_by(User.id).limit(BATCH)
        if last_id is not None:
            query = query.where(User.id > last_id)
        batch = list(db.session.scalars(query))
        if not batch:
            break
        for user in batch:
            fresh = data_keys.rotate(user.totp_secret)
            rotated += fresh != user.totp_secret
            user.totp_secret = fresh
        users += len(batch)
        last_id = batch[-1].id
        db.session.commit()
    # Enrolments waiting for their first code keep their secret in the token's payload.
    pending = list(
        db.session.scalars(
            select(OneTimeToken).where(
                OneTimeToken.purpose == "totp_enrollment", OneTimeToken.used_at.is_(None)
            )
        )
    )
    for token in pending:
        token.payload = {**token.payload, "secret": data_keys.rotate(token.payload["secret"])}
    # Webhook endpoints' signing secrets (API.md 12): a few per account.
    endpoints = list(db.session.scalars(select(WebhookEndpoint)))
    for endpoint in endpoints:
        endpoint.secret_ciphertext = data_keys.rotate(endpoint.secret_ciphertext)
    db.session.commit()
    summary = {"users": users, "reEncrypted": rotated, "pendingEnrolments": len(pending)}
    click.echo(json.dumps({**summary, "webhookEndpoints": len(endpoints)}))
