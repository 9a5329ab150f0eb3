"""Command line: flask users create-staff."""

import click

from freshcom_customers.cli import shared
from freshcom_customers.extensions import db
from freshcom_customers.http import schema
from freshcom_customers.services import user_management

users_cli = click.Group("users", help="Create the users of an account.")


@users_cli.command("create-staff")
@click.option("--account", "account_reference", required=True, help=shared.ACCOUNT_HELP)
@click.option("--email", required=True, help="The user's email; their username too, unless --username.")
@click.option(
    "--role",
    required=True,
    type=click.Choice(user_management.ASSIGNABLE_ROLES),
    help="The staff role (owners are made by accounts create).",
)
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="The user's password; asked for (twice, not shown) when not given.",
)
@click.option("--username", help="A username other than the email.")
@click.option("--name", help="The user's full name.")
@schema.required
def create_staff(account_reference, email, role, password, username, name):
    """Create a managed staff user of the account, as its owner could through POST /v1/users.

    The user logs in with the password grant and the scope aid:<account id>. Prints
    {"id", "accountId", "username", "email", "role"} as JSON.
    """
    account = shared.account(account_reference)
    attrs = {"email": email, "password": password, "role": role, "username": username, "name": name}
    with shared.domain_errors():
        user = user_management.create_user(
            account, {key: value for key, value in attrs.items() if value is not None}, by_role="owner"
        )
    db.session.commit()
    shared.echo_json(
        {
            "id": str(user.id),
            "accountId": str(account.id),
            "username": user.username,
            "email": user.email,
            "role": user.role,
        }
    )
