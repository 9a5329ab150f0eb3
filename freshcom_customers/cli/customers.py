"""Command line: flask customers import, export and invite, each for one account."""

import io
import json
import sys
from contextlib import contextmanager
from pathlib import Path

import click

from freshcom_customers.cli import customer_files, shared
from freshcom_customers.errors import NotFound, ValidationFailed
from freshcom_customers.extensions import db
from freshcom_customers.http import schema
from freshcom_customers.services import customer_export, customer_import, customers, database, invitations
from freshcom_customers.services.mail import outbox

customers_cli = click.Group("customers", help="Import, export and invite the customers of an account.")
# How long a batch of invitations may take to reach the mail server before the command gives up.
SEND_TIMEOUT = 600

EXTENSIONS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


@customers_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option("--account", "account_id", required=True, help=shared.ACCOUNT_HELP)
@click.option(
    "--format",
    "file_format",
    type=click.Choice(customer_files.READ_FORMATS),
    help="Default: from FILE's name.",
)
@click.option(
    "--workers", type=click.IntRange(min=1), help="Threads hashing plain passwords; default one per CPU."
)
@click.option(
    "--columns",
    "column_map",
    type=click.Choice(tuple(customer_files.COLUMN_MAPS)),
    help="Read an export of another platform's customer table (docs/decisions.md).",
)
@click.pass_context
@schema.required
def import_customers(ctx, file, account_id, file_format, workers, column_map):
    """Import customers from a CSV file with a header, or JSON Lines.

    Each row is checked like POST /v1/customers and written whole or not at all; a row that
    fails is reported on stderr as "line N: reason" and the others are imported. A row whose
    email or code already belongs to a customer of the account is skipped, so running a file
    again creates nothing. Prints {"created", "skipped", "failed"}, and "vacuumSeconds" when it
    made the tables ready for searches (PostgreSQL, 1,000 customers created or more); exits 1
    if a row failed.
    passwordHash takes argon2, bcrypt, scrypt, PBKDF2, Django's and Werkzeug's hashes.
    """
    account = _account(account_id)
    file_format = file_format or _format_of(file)
    counts = {"created": 0, "skipped": 0, "failed": 0}
    with _text_input(file) as stream, _progress(file) as bar:
        rows = customer_files.read_rows(stream, file_format, customer_files.COLUMN_MAPS.get(column_map))
        for batch in _file_errors(customer_import.import_customers(account, rows, workers=workers)):
            db.session.commit()
            counts["created"] += batch.created
            counts["skipped"] += batch.skipped
            counts["failed"] += len(batch.failures)
            for failure in batch.failures:
                click.echo(f"{bar.clear_line}line {failure.line}: {customer_files.reason(failure)}", err=True)
            bar.update(batch.last_line - bar.pos)
    if counts["created"] >= customer_import.SETTLE_AFTER:
        seconds = database.settle(customer_import.WRITTEN_TABLES)
        if seconds is not None:
            counts["vacuumSeconds"] = seconds
    click.echo(json.dumps(counts))
    if counts["failed"]:
        ctx.exit(1)


@customers_cli.command("export")
@click.option("--account", "account_id", required=True, help=shared.ACCOUNT_HELP)
@click.option(
    "--format",
    "file_format",
    type=click.Choice(customer_files.WRITE_FORMATS),
    default="jsonl",
    show_default=True,
    help="JSON Lines or CSV with a header.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, allow_dash=True),
    default="-",
    help="The file to write; - (the default) is stdout.",
)
@click.option("--include-password-hashes", is_flag=True, help="Let an import elsewhere keep their logins.")
@schema.required
def export_customers(account_id, file_format, output, include_password_hashes):
    """Write every customer of the account as JSON Lines (default) or CSV, oldest first.

    The fields are the ones `flask customers import` reads; password hashes only with
    --include-password-hashes (keep such a file like a database backup).
    """
    account = _account(account_id)
    customers = customer_export.export_customers(account, password_hashes=include_password_hashes)
    with _text_output(output) as stream:
        count = customer_files.write_customers(
            customers, stream, file_format, password_hashes=include_password_hashes
        )
    click.echo(f"{count} customers exported", err=True)


@customers_cli.command("invite")
@click.argument("customer_ids", nargs=-1, metavar="[CUSTOMER_ID]...")
@click.option("--account", "account_id", required=True, help=shared.ACCOUNT_HELP)
@click.option(
    "--all-without-password",
    is_flag=True,
    help="Invite every registered customer of the account who has no password yet.",
)
@click.pass_context
@schema.required
def invite_customers(ctx, customer_ids, account_id, all_without_password):
    """Email registered customers without a password an invitation to choose one (valid 7 days).

    Name customers by id, or give --all-without-password (imported customers, say). A new
    invitation replaces a customer's earlier one. Invitations are committed and sent a batch
    at a time, and the command waits for each batch to reach the mail server. A customer that
    cannot be invited is reported on stderr as "ID: reason". Prints {"invited", "failed",
    "emails_failed"}; exits 1 if anything failed.
    """
    account = _account(account_id)
    if bool(customer_ids) == all_without_password:
        raise click.UsageError("Name customers by id, or give --all-without-password; not both.")
    if all_without_password:
        total, batches = invitations.count_without_password(account), invitations.without_password(account)
    else:
        total, batches = len(customer_ids), [customer_ids]
    counts = {"invited": 0, "failed": 0, "emails_failed": 0}
    failed_before = outbox.failed
    with _progress_bar(total, "Inviting") as bar:
        for batch in batches:
            for customer in batch:
                problem = _invite(account, customer)
                counts["failed" if problem else "invited"] += 1
                if problem:
                    click.echo(f"{bar.clear_line}{problem}", err=True)
            db.session.commit()
            if not outbox.wait(SEND_TIMEOUT):
                raise click.ClickException(
                    "The mail server took more than 10 minutes for one batch; stopped."
                )
            bar.update(len(batch))
    counts["emails_failed"] = outbox.failed - failed_before
    click.echo(json.dumps(counts))
    if counts["failed"] or counts["emails_failed"]:
        ctx.exit(1)


def _invite(account, customer) -> str | None:
    """Invite the customer (or the customer with this id); what went wrong, or None."""
    if isinstance(customer, str):
        try:
            customer = customers.get_customer(account, customer)
        except NotFound:
            return f"{customer}: no customer of this account has this id"
    try:
        invitations.invite(customer)
    except ValidationFailed as e:
        return f"{customer.id}: {'; '.join(error.title for error in e.errors)}"
    return None


def _account(reference: str):
    """The account to read or write; a usage error when there is none (the command cannot start)."""
    try:
        return shared.account(reference)
    except click.ClickException as e:
        raise click.BadParameter(e.message, param_hint="--account") from None


def _format_of(file: str) -> str:
    file_format = EXTENSIONS.get(Path(file).suffix.lower())
    if file_format is None:
        raise click.BadParameter("Name the format with --format csv or --format jsonl.", param_hint="FILE")
    return file_format


def _file_errors(batches):
    """Stop cleanly, keeping the batches committed so far, when the file itself is unusable."""
    try:
        yield from batches
    except customer_files.ImportFileError as e:
        db.session.rollback()
        raise click.BadParameter(str(e), param_hint="FILE") from None
    except UnicodeDecodeError:
        db.session.rollback()
        raise click.BadParameter("The file is not UTF-8 text.", param_hint="FILE") from None


@contextmanager
def _text_input(file: str):
    # newline="" lets the csv module read line breaks inside quoted cells; utf-8-sig drops
    # the byte order mark spreadsheets put first.
    if file == "-":
        stream = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8-sig", newline="")
        try:
            yield stream
        finally:
            stream.detach()  # leave stdin open
    else:
        with open(file, encoding="utf-8-sig", newline="") as stream:
            yield stream


@contextmanager
def _text_output(output: str):
    if output == "-":
        yield sys.stdout
    else:
        with open(output, "w", encoding="utf-8", newline="") as stream:
            yield stream


class _Progress:
    """A progress bar in lines of the file, on stderr, drawn only when stderr is a terminal."""

    def __init__(self, bar):
        self.bar = bar
        self.pos = 0
        # Erase the bar before a message, so that messages do not run into it.
        self.clear_line = "\r\x1b[K" if bar else ""

    def update(self, steps: int) -> None:
        self.pos += steps
        if self.bar:
            self.bar.update(steps)


@contextmanager
def _progress(file: str):
    if file == "-" or not sys.stderr.isatty():
        yield _Progress(None)
        return
    with _progress_bar(_count_lines(file), "Importing") as bar:
        yield bar


@contextmanager
def _progress_bar(length: int, label: str):
    if not sys.stderr.isatty():
        yield _Progress(None)
        return
    with click.progressbar(length=length, label=label, file=sys.stderr) as bar:
        yield _Progress(bar)


def _count_lines(file: str) -> int:
    with open(file, "rb") as stream:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: stream.read(1 << 20), b""))
