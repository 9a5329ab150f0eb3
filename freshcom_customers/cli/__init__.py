"""Command line: flask accounts create, flask clients create, flask demo seed."""

import json
import secrets

import click
from flask import Flask
from sqlalchemy import select

from freshcom_customers.cli.customers import customers_cli
from freshcom_customers.errors import NotFound, ValidationFailed
from freshcom_customers.extensions import db
from freshcom_customers.http import schema
from freshcom_customers.models import Account, User
from freshcom_customers.services import accounts, passwords

accounts_cli = click.Group("accounts", help="Create and manage merchant accounts.")
clients_cli = click.Group("clients", help="Create OAuth2 clients.")
demo_cli = click.Group("demo", help="The demo account of the README.")

DEMO_HANDLE = "demo"
DEMO_OWNER = "owner@demo.example"


def register_commands(app: Flask) -> None:
    for group in (accounts_cli, clients_cli, demo_cli, customers_cli):
        app.cli.add_command(group)


@accounts_cli.command("create")
@click.argument("name")
@click.option("--owner-email", required=True)
@click.option("--owner-password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--handle")
@schema.required
def create_account(name, owner_email, owner_password, handle):
    """Create a live account, its test twin and its owner; print them as JSON."""
    with _domain_errors():
        live, test, owner = accounts.create_account(
            name, owner_email=owner_email, owner_password=owner_password, handle=handle
        )
    db.session.commit()
    click.echo(json.dumps(_account_json(live, test, owner)))


@clients_cli.command("create")
@click.option("--account", "account_id", required=True, help="The account id.")
@click.option("--name", required=True)
@click.option("--confidential", is_flag=True, help="Give it a secret (client_secret_basic/post).")
@click.option("--no-rotation", is_flag=True, help="Keep refresh tokens across refreshes (legacy SDKs).")
@click.option("--no-password-grant", is_flag=True, help="Refuse it the password grant (SECURITY.md).")
@schema.required
def create_client(account_id, name, confidential, no_rotation, no_password_grant):
    """Create an OAuth2 client; print its id (and secret, shown only now) as JSON."""
    with _domain_errors():
        account = accounts.get_account(account_id)
        client, secret = accounts.create_client(
            account, name, confidential=confidential, rotation=not no_rotation
        )
    if no_password_grant:
        _allow_grant(client, "password", False)
    db.session.commit()
    output = {"clientId": client.get_client_id()}
    if secret:
        output["clientSecret"] = secret
    click.echo(json.dumps(output))


@clients_cli.command("update")
@click.option("--account", "account_id", required=True, help="The account id.")
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
def update_client(account_id, client_id, rotation, password_grant):
    """Change a client; print its id and settings as JSON."""
    with _domain_errors():
        client = accounts.get_client(accounts.get_account(account_id), client_id)
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
@schema.required
def seed_demo():
    """Create the demo account if missing, give its owner a new password, print the login."""
    password = secrets.token_urlsafe(12)
    live = db.session.scalar(select(Account).where(Account.handle == DEMO_HANDLE))
    if live is None:
        live, test, owner = accounts.create_account(
            "Demo Store", owner_email=DEMO_OWNER, owner_password=password, handle=DEMO_HANDLE
        )
    else:
        test = live.test_account
        owner = db.session.scalar(select(User).where(User.username == DEMO_OWNER, User.account_id.is_(None)))
        owner.password_hash = passwords.hash_password(password)
    db.session.commit()
    demo = _account_json(live, test, owner)
    click.echo(json.dumps({**demo, "owner": {**demo["owner"], "password": password}}, indent=2))


def _account_json(live, test, owner) -> dict:
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


class _domain_errors:
    """Turn domain errors into a clean CLI error instead of a traceback."""

    def __enter__(self):
        return self

    def __exit__(self, kind, error, tb):
        if isinstance(error, ValidationFailed | NotFound):
            db.session.rollback()
            raise click.ClickException(str(error) or "not found")
        return False
