"""Command line: flask accounts create|list|show|rotate-publishable-key."""

from datetime import UTC, timedelta

import click

from freshcom_customers.cli import shared
from freshcom_customers.extensions import db
from freshcom_customers.http import schema
from freshcom_customers.models import Account, Client, RefreshToken
from freshcom_customers.services import accounts

accounts_cli = click.Group("accounts", help="Create, list, show and manage merchant accounts.")


@accounts_cli.command("create")
@click.argument("name")
@click.option("--owner-email", required=True, help="The owner's email, also their username.")
@click.option(
    "--owner-password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="The owner's password; asked for (twice, not shown) when not given.",
)
@click.option("--handle", help="A short name for the live account: 2-63 lowercase letters, digits or dashes.")
@schema.required
def create_account(name, owner_email, owner_password, handle):
    """Create a live account, its test twin and its owner; print them as JSON."""
    with shared.domain_errors():
        live, test, owner = accounts.create_account(
            name, owner_email=owner_email, owner_password=owner_password, handle=handle
        )
    db.session.commit()
    shared.echo_json(account_json(live, test, owner))


@accounts_cli.command("list")
@schema.required
def list_accounts():
    """Print every live account as one JSON object a line, oldest first.

    Each is {"id", "handle", "name", "mode", "testAccountId"}.
    """
    for live in accounts.live_accounts():
        test = live.test_account
        shared.echo_json(
            {
                "id": str(live.id),
                "handle": live.handle,
                "name": live.name,
                "mode": live.mode,
                "testAccountId": str(test.id) if test else None,
            }
        )


@accounts_cli.command("show")
@click.argument("account_reference", metavar="ID_OR_HANDLE")
@schema.required
def show_account(account_reference):
    """Print an account, its test twin, their publishable keys, its clients and user counts as JSON.

    ID_OR_HANDLE is either account's id or the live account's handle. Client secrets are
    stored only hashed and never shown; a key rotated out is listed until it stops working.
    """
    live = _live(shared.account(account_reference))
    shared.echo_json(
        {
            "account": {"id": str(live.id), "handle": live.handle, "name": live.name, **_twin_json(live)},
            "testAccount": _twin_json(live.test_account) if live.test_account else None,
            "clients": [_client_json(client) for client in accounts.clients(live)],
            **accounts.user_counts(live),
        }
    )


@accounts_cli.command("rotate-publishable-key")
@click.option("--account", "account_reference", required=True, help=shared.ACCOUNT_HELP)
@click.option(
    "--grace",
    type=shared.Duration(),
    default="24h",
    show_default=True,
    help="How long the old key keeps working (0 stops it now): 3600, 90m, 24h, 7d.",
)
@schema.required
def rotate_publishable_key(account_reference, grace):
    """Give one account (live or test) a new publishable key; print the new and the old as JSON.

    The old key keeps giving guest tokens (the refresh grant, the Chec face's X-Authorization)
    until the grace period ends, time for storefronts to ship the new one.
    """
    account = shared.account(account_reference)
    with shared.domain_errors():
        new, old = accounts.rotate_publishable_key(account, timedelta(seconds=grace))
    db.session.commit()
    shared.echo_json(
        {
            "account": {"id": str(account.id), "mode": account.mode},
            "publishableKey": new.prefixed_id,
            "previousKey": _key_json(old),
        }
    )


def account_json(live: Account, test: Account, owner) -> dict:
    """What accounts create and demo seed print (API.md 8)."""
    return {
        "account": {
            "id": str(live.id),
            "handle": live.handle,
            "mode": "live",
            "publishableKey": accounts.publishable_token(live).prefixed_id,
        },
        "testAccount": {
            "id": str(test.id),
            "mode": "test",
            "publishableKey": accounts.publishable_token(test).prefixed_id,
        },
        "owner": {"id": str(owner.id), "username": owner.username},
    }


def _live(account: Account) -> Account:
    return account.live_account or account


def _twin_json(account: Account) -> dict:
    return {
        "id": str(account.id),
        "mode": account.mode,
        "publishableKey": accounts.publishable_token(account).prefixed_id,
        "retiringKeys": [_key_json(key) for key in accounts.retiring_publishable_tokens(account)],
    }


def _key_json(key: RefreshToken) -> dict:
    expires_at = key.expires_at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return {"publishableKey": key.prefixed_id, "expiresAt": expires_at}


def _client_json(client: Client) -> dict:
    """A client as clients update prints it, with its name and kind; never a secret."""
    return {
        "clientId": client.get_client_id(),
        "name": client.name,
        "default": client.is_default,
        "confidential": client.is_confidential,
        "rotation": client.rotate_refresh_tokens,
        "passwordGrant": client.check_grant_type("password"),
    }
