"""What the command groups share: the account or client an operator names, clean errors, durations."""

import json

import click

from freshcom_customers.config import duration
from freshcom_customers.errors import NotFound, ValidationFailed
from freshcom_customers.extensions import db
from freshcom_customers.models import Account, Client
from freshcom_customers.services import accounts

ACCOUNT_HELP = "The account: its id (a live account or its test twin) or the live account's handle."


def account(reference: str) -> Account:
    """The account with this id (a UUID or aid-<mode>-<uuid>) or handle; a one-line error if none."""
    found = accounts.find_by_reference(reference)
    if found is None:
        raise click.ClickException(f"no account with id or handle {reference!r}")
    return found


def client(of: Account, client_id: str | None) -> Client:
    """The account's client with this id, or its default client when client_id is None."""
    try:
        return accounts.get_client(of, client_id)
    except NotFound:
        raise click.ClickException(f"no client with id {client_id!r} serves account {str(of.id)!r}") from None


def echo_json(value) -> None:
    click.echo(json.dumps(value))


class domain_errors:
    """Turn domain errors into a clean CLI error instead of a traceback."""

    def __enter__(self):
        return self

    def __exit__(self, kind, error, tb):
        if isinstance(error, ValidationFailed | NotFound):
            db.session.rollback()
            raise click.ClickException(str(error) or "not found")
        return False


class Duration(click.ParamType):
    """Seconds, or a number with s, m, h or d (90, 15m, 24h, 7d), as FRESHCOM_ durations are written."""

    name = "duration"
    _kind = duration(minimum=0)

    def convert(self, value, param, ctx) -> int:
        if isinstance(value, int):
            return value
        try:
            return self._kind.parse(value)
        except ValueError:
            self.fail(f"{value!r} is not a duration: seconds, or a number with s, m, h or d", param, ctx)
