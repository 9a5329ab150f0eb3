"""Command line: flask customers import FILE --account ID, flask customers export --account ID."""

import io
import json
import sys
from contextlib import contextmanager
from pathlib import Path

import click

from freshcom_customers.cli import customer_files, shared
from freshcom_customers.extensions import db
from freshcom_customers.http import schema
from freshcom_customers.services import customer_export, customer_import

customers_cli = click.Group("customers", help="Import and export the customers of an account.")

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
@click.pass_context
@schema.required
def import_customers(ctx, file, account_id, file_format, workers):
    """Import customers from a CSV file with a header, or JSON Lines.

    Each row is checked like POST /v1/customers and written whole or not at all; a row that
    fails is reported on stderr as "line N: reason" and the others are imported. A row whose
    email or code already belongs to a customer of the account is skipped, so running a file
    again creates nothing. Prints {"created", "skipped", "failed"}; exits 1 if a row failed.
    """
    account = _account(account_id)
    file_format = file_format or _format_of(file)
    counts = {"created": 0, "skipped": 0, "failed": 0}
    with _text_input(file) as stream, _progress(file) as bar:
        rows = customer_files.read_rows(stream, file_format)
        for batch in _file_errors(customer_import.import_customers(account, rows, workers=workers)):
            db.session.commit()
            counts["created"] += batch.created
            counts["skipped"] += batch.skipped
            counts["failed"] += len(batch.failures)
            for failure in batch.failures:
                click.echo(f"{bar.clear_line}line {failure.line}: {customer_files.reason(failure)}", err=True)
            bar.update(batch.last_line - bar.pos)
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
    with click.progressbar(length=_count_lines(file), label="Importing", file=sys.stderr) as bar:
        yield _Progress(bar)


def _count_lines(file: str) -> int:
    with open(file, "rb") as stream:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: stream.read(1 << 20), b""))
