"""Command line: the groups of `flask --app wsgi`; here flask clients create|update|list|rotate-secret
and flask demo seed."""

import json
import secrets
from datetime import timedelta

import click
from flask import Flask
from sqlalchemy import select

from freshcom_customers.cli import shared
from freshcom_customers.cli.accounts import account_json, accounts_cli
from freshcom_customers.cli.customers import customers_cli
from freshcom_customers.cli.data_keys import data_keys_cli
from freshcom_customers.cli.housekeeping import purge_tokens
from freshcom_customers.cli.users import users_cli
from freshcom_customers.cli.webhooks import webhooks_cli
from freshcom_customers.extensions import db
from freshcom_customers.http import schema
from freshcom_customers.models import STAFF_ROLES, Account, User
from freshcom_customers.services import accounts, passwords

clients_cli = click.Group("clients", help="Create and change OAuth2 clients.")
demo_cli = click.Group("demo", help="The demo account of the README.")

DEMO_HANDLE = "demo"
MAX_SECRET_GRACE = 365 * 86400
DEMO_OWNER = "owner@demo.example"
PASSWORD_UNCHANGED = (
    "The demo owner's password is unchanged (the one printed before still works). For a new one: "
    "make run RESET_PASSWORD=1, or flask --app wsgi demo seed --reset-password"
)


def register_commands(app: Flask) -> None:
    groups = (
        accounts_cli,
        clients_cli,
        users_cli,
        demo_cli,
        customers_cli,
        purge_tokens,
        data_keys_cli,
        webhooks_cli,
    )
    for group in groups:
        app.cli.add_command(group)


@clients_cli.command("create")
@click.option("--account", "account_reference", required=True, help=shared.ACCOUNT_HELP)
@click.option("--name", required=True, help="What the client is, for people: Storefront, Back office.")
@click.option("--confidential", is_flag=True, help="Give it a secret (client_secret_basic/post).")
@click.option("--no-rotation", is_flag=True, help="Keep refresh tokens across refreshes (legacy SDKs).")
@click.option("--no-password-grant", is_flag=True, help="Refuse it the password grant (SECURITY.md).")
@click.option(
    "--role",
    type=click.Choice(STAFF_ROLES),
    help="A machine client (with --confidential): client_credentials tokens with this staff role.",
)
@schema.required
def create_client(account_reference, name, confidential, no_rotation, no_password_grant, role):
    """Create an OAuth2 client; print its id (and secret, shown only now) as JSON."""
    account = shared.account(account_reference)
    with shared.domain_errors():
        client, secret = accounts.create_client(
            account, name, confidential=confidential, rotation=not no_rotation, role=role
        )
    if no_password_grant:
        _allow_grant(client, "password", False)
    db.session.commit()
    output = {"clientId": client.get_client_id()}
    if secret:
        output["clientSecret"] = secret
    if role:
        output["role"] = role
    click.echo(json.dumps(output))


@clients_cli.command("list")
@click.option("--account", "account_reference", required=True, help=shared.ACCOUNT_HELP)
@schema.required
def list_clients(account_reference):
    """Print the account's clients as JSON: id, name, kind, role, grants (never a secret)."""
    clients = accounts.list_clients(shared.account(account_reference))
    click.echo(json.dumps([_client_json(client) for client in clients], indent=2))


@clients_cli.command("rotate-secret")
@click.option("--account", "account_reference", required=True, help=shared.ACCOUNT_HELP)
@click.option("--client", "client_id", required=True, help="The confidential client's id.")
@click.option(
    "--grace",
    type=click.IntRange(min=0, max=MAX_SECRET_GRACE),
    required=True,
    help="Seconds the old secret keeps working beside the new one (0: it stops now; a year at most).",
)
@schema.required
def rotate_client_secret(account_reference, client_id, grace):
    """Give a confidential client a new secret; print it (shown only now) and when the old one stops."""
    client = shared.client(shared.account(account_reference), client_id)
    with shared.domain_errors():
        secret = accounts.rotate_client_secret(client, timedelta(seconds=grace))
    db.session.commit()
    stops = client.previous_secret_expires_at
    output = {"clientId": client.get_client_id(), "clientSecret": secret}
    output["previousSecretExpiresAt"] = stops.isoformat().replace("+00:00", "Z") if stops else None
    click.echo(json.dumps(output))


def _client_json(client) -> dict:
    return {
        "clientId": client.get_client_id(),
        "name": client.name,
        "isDefault": client.is_default,
        "confidential": client.is_confidential,
        "role": client.role,
        "grantTypes": client.grant_types.split(),
        "rotation": client.rotate_refresh_tokens,
        "insertedAt": client.inserted_at.isoformat().replace("+00:00", "Z"),
    }


@clients_cli.command("update")
@click.option("--account", "account_reference", required=True, help=shared.ACCOUNT_HELP)
@click.option("--client", "client_id", help="The client id; without it, the account's default client.")
@click.option(
    "--rotation/--no-rotation",
    default=None,
    help="Rotate refresh tokens on use, or keep them (for SDKs that never store a new one).",
)
@click.option(
    "--password-grant/--no-password-grant",
    default=None,
    help="Allow the client the password grant, or refuse it (RFC 9700 2.4; SECURITY.md).",
)
@schema.required
def update_client(account_reference, client_id, rotation, password_grant):
    """Change a client; print its id and settings as JSON."""
    client = shared.client(shared.account(account_reference), client_id)
    if rotation is not None:
        client.rotate_refresh_tokens = rotation
    if password_grant is not None:
        _allow_grant(client, "password", password_grant)
    db.session.commit()
    click.echo(
        json.dumps(
            {
                "clientId": client.get_client_id(),
                "rotation": client.rotate_refresh_tokens,
                "passwordGrant": client.check_grant_type("password"),
            }
        )
    )


def _allow_grant(client, grant_type: str, allowed: bool) -> None:
    """Add grant_type to the client's allowlist or take it out; the others stay as they are.

    Only the password grant is switched: the refresh grant is what sessions and the
    publishable key's guest tokens go through.
    """
    others = [g for g in client.grant_types.split() if g != grant_type]
    client.grant_types = " ".join([*others, grant_type] if allowed else others)


@demo_cli.command("seed")
@click.option(
    "--reset-password", is_flag=True, help="Give the owner of an existing demo account a new password."
)
@schema.required
def seed_demo(reset_password):
    """Create the demo account if missing; print its keys and owner, and the password when it sets one.

    A new demo owner gets a random password; an existing one keeps theirs (what an earlier
    run printed still works) unless --reset-password is given.
    """
    live = db.session.scalar(select(Account).where(Account.handle == DEMO_HANDLE))
    password = secrets.token_urlsafe(12) if live is None or reset_password else None
    if live is None:
        live, test, owner = accounts.create_account(
            "Demo Store", owner_email=DEMO_OWNER, owner_password=password, handle=DEMO_HANDLE
        )
    else:
        test = live.test_account
        owner = db.session.scalar(select(User).where(User.username == DEMO_OWNER, User.account_id.is_(None)))
        if password:
            owner.password_hash = passwords.hash_password(password)
    db.session.commit()
    demo = account_json(live, test, owner)
    if password:
        demo["owner"]["password"] = password
    click.echo(json.dumps(demo, indent=2))
    if not password:
        click.echo(PASSWORD_UNCHANGED, err=True)
