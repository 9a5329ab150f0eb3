"""Import customers from CSV or JSON Lines: each row checked like the API checks a POST.

A row is written whole (the customer and its user) or not at all, and a row whose email or
code already belongs to a customer of the account is skipped, so running a file again
creates nothing. Rows are written in batches, one flush each; a batch the database refuses
is split until the refused rows stand alone, and those go through the API's own
``customers.create_customer``. The caller commits after each batch it is given back.
"""

import csv
import functools
import json
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from typing import IO

from flask import current_app
from marshmallow import RAISE, Schema, ValidationError, fields
from marshmallow.validate import Length, OneOf
from sqlalchemy import event, or_, select
from sqlalchemy.exc import DataError, IntegrityError

from freshcom_customers import identifiers, schemas
from freshcom_customers.errors import FieldError, ValidationFailed, invalid
from freshcom_customers.extensions import db
from freshcom_customers.models import CUSTOMER_STATUSES, Account, Customer
from freshcom_customers.services import customers, passwords
from freshcom_customers.services.database import flush

FORMATS = ("csv", "jsonl")
BATCH_SIZE = 500
FIELDS = (
    "status",
    "code",
    "name",
    "first_name",
    "last_name",
    "email",
    "phone_number",
    "label",
    "caption",
    "description",
    "custom_data",
    "username",
    "password",
    "password_hash",
)
# Written by an export, ignored by an import, as the API ignores read-only attributes.
READ_ONLY_FIELDS = ("id", "email_verified", "inserted_at", "updated_at")
_LOGIN_FIELDS = ("username", "password", "password_hash")


class ImportFileError(Exception):
    """The file cannot be imported at all (an unknown column, a record the csv module cannot read)."""


@dataclass(frozen=True)
class Row:
    """One record of the file: its first line, its fields (snake_case) and what was wrong reading it."""

    line: int
    fields: dict
    unreadable: str | None = None  # the line is not a row at all
    errors: tuple[FieldError, ...] = ()  # a cell that could not be read


@dataclass(frozen=True)
class Failure:
    line: int
    reason: str


@dataclass
class BatchResult:
    """What became of one batch of rows; last_line is the last line of the file it read."""

    last_line: int
    created: int = 0
    skipped: int = 0
    failures: list[Failure] = field(default_factory=list)


def _text(max_length: int):
    return fields.String(allow_none=True, validate=Length(max=max_length))


class RowSchema(Schema):
    """Types and lengths of a row: the API's CustomerSchema (a test keeps them equal), plus a hash."""

    status = fields.String(validate=OneOf(CUSTOMER_STATUSES))
    code = _text(64)
    name = _text(255)
    first_name = _text(255)
    last_name = _text(255)
    email = fields.Email(allow_none=True, validate=Length(max=254))
    phone_number = _text(32)
    label = _text(64)
    caption = _text(255)
    description = _text(10_000)
    custom_data = fields.Dict(keys=fields.String())
    username = fields.String(validate=Length(min=3, max=254))
    password = fields.String()
    password_hash = fields.String(validate=Length(max=255))


@functools.lru_cache(maxsize=64)
def _schema(names: frozenset[str]) -> RowSchema:
    """A schema of only the fields a row has: marshmallow visits every declared field otherwise.

    The rows of a file share a few sets of fields, so a handful of schemas serve them all.
    """
    return RowSchema(only=names & RowSchema._declared_fields.keys())


# Reading files


def read_rows(stream: IO[str], file_format: str) -> Iterator[Row]:
    """Read the rows of a CSV (with a header) or JSON Lines text stream, with their line numbers."""
    return _read_csv(stream) if file_format == "csv" else _read_jsonl(stream)


def _read_jsonl(stream: IO[str]) -> Iterator[Row]:
    for line, text in enumerate(stream, 1):
        if not text.strip():
            continue
        try:
            record = json.loads(text.rstrip("\r\n"))
        except json.JSONDecodeError as e:
            yield Row(line, {}, unreadable=_json_problem(e))
            continue
        if not isinstance(record, dict):
            yield Row(line, {}, unreadable="A line must be a JSON object.")
            continue
        yield Row(line, {schemas.underscore(key): value for key, value in record.items()})


def _read_csv(stream: IO[str]) -> Iterator[Row]:
    reader = csv.reader(stream)
    header = [schemas.underscore(name.strip()) for name in next(reader, [])]
    _check_header(header)
    read_so_far = reader.line_num
    for values in _csv_records(reader):
        line, read_so_far = read_so_far + 1, reader.line_num
        if not any(values):
            continue
        if len(values) != len(header):
            yield Row(line, {}, unreadable=f"{len(values)} values for {len(header)} columns.")
            continue
        # An empty cell is an absent field.
        yield _csv_row(line, {name: value for name, value in zip(header, values, strict=True) if value != ""})


def _csv_records(reader) -> Iterator[list[str]]:
    try:
        yield from reader
    except csv.Error as e:
        raise ImportFileError(f"line {reader.line_num}: {e}") from e


def _check_header(header: list[str]) -> None:
    unknown = [name for name in header if name not in FIELDS + READ_ONLY_FIELDS]
    if unknown:
        raise ImportFileError(
            f"Unknown columns: {', '.join(unknown)}. Known: {', '.join(schemas.camelize(f) for f in FIELDS)}."
        )
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise ImportFileError(f"Repeated columns: {', '.join(schemas.camelize(f) for f in repeated)}.")


def _csv_row(line: int, values: dict) -> Row:
    """customData is JSON text in a CSV cell."""
    if "custom_data" not in values:
        return Row(line, values)
    try:
        values["custom_data"] = json.loads(values.pop("custom_data"))
    except json.JSONDecodeError as e:
        return Row(line, values, errors=(FieldError("custom_data", "invalid", _json_problem(e)),))
    return Row(line, values)


def _json_problem(error: json.JSONDecodeError) -> str:
    return f"Not valid JSON: {error.msg} at character {error.pos + 1}."


def import_customers(
    account: Account, rows: Iterable[Row], *, batch_size: int = BATCH_SIZE, workers: int | None = None
) -> Iterator[BatchResult]:
    """Import rows into account batch by batch; yield each batch's result for the caller to commit.

    Plain passwords are hashed on `workers` threads (default: one per CPU).
    """
    seen = _FileKeys()
    with ThreadPoolExecutor(workers or os.cpu_count() or 1, thread_name_prefix="import-hash") as pool:
        for batch in _batches(rows, batch_size):
            yield _import_batch(account, batch, seen, pool)


def _import_batch(account: Account, batch: list[Row], seen: "_FileKeys", pool) -> BatchResult:
    result = BatchResult(last_line=batch[-1].line)
    checked = []
    for row in batch:
        if row.unreadable:
            result.failures.append(Failure(row.line, row.unreadable))
            continue
        try:
            checked.append((row.line, _checked(row, seen)))
        except ValidationFailed as e:
            result.failures.append(Failure(row.line, _reason(e)))
    existing = _existing_keys(account, [attrs for _, attrs in checked])
    new = [(line, attrs) for line, attrs in checked if not (_keys(attrs) & existing)]
    result.skipped = len(checked) - len(new)
    _hash_passwords([attrs for _, attrs in new if "password" in attrs], pool)
    result.created, failures = _write(account, new)
    result.failures = sorted(result.failures + failures, key=lambda failure: failure.line)
    return result


def _checked(row: Row, seen: "_FileKeys") -> dict:
    """The row's attributes, checked as the API checks them, or ValidationFailed."""
    values = {k: v for k, v in row.fields.items() if v is not None and k not in READ_ONLY_FIELDS}
    errors = [*seen.claim(row.line, values), *row.errors]
    try:
        attrs = _schema(frozenset(values)).load(values, unknown=RAISE)
    except ValidationError as e:
        errors += schemas.field_errors(e.messages)
        attrs = {}
    if errors:
        raise ValidationFailed(*errors)
    _check_login(attrs)
    return attrs


def _check_login(attrs: dict) -> None:
    """An imported row must be findable again, and bring its password only when it registers."""
    if not (attrs.get("email") or attrs.get("code")):
        raise invalid("email", "required", "An imported customer needs an email or a code.")
    given = [f for f in _LOGIN_FIELDS if attrs.get(f)]
    if given and attrs.get("status", "guest") == "guest":
        title = "A guest has no login; set status to registered or suspended."
        raise ValidationFailed(*(FieldError(f, "invalid", title) for f in given))
    if "password" in attrs and "password_hash" in attrs:
        raise invalid("password_hash", "invalid", "Give a password or its hash, not both.")
    if "password" in attrs:
        passwords.check_policy(attrs["password"])
    if "password_hash" in attrs:
        passwords.check_hash(attrs["password_hash"])


class _FileKeys:
    """The emails and codes of the file's rows so far, with their lines: a repeat is a duplicate.

    Every row claims its keys, even one that fails, so a repeat fails the same way on every run.
    """

    def __init__(self):
        self.lines = {"email": {}, "code": {}}

    def claim(self, line: int, values: dict) -> list[FieldError]:
        errors = []
        for name, lines in self.lines.items():
            key = _key(name, values.get(name))
            if key is None:
                continue
            first = lines.setdefault(key, line)
            if first != line:
                errors.append(FieldError(name, "taken", f"Also on line {first} of the file."))
        return errors


def _key(name: str, value) -> str | None:
    """The value a unique constraint compares: an email's canonical form (email_key), blank codes none."""
    if not isinstance(value, str):
        return None
    return (identifiers.canonical(value) if name == "email" else value) or None


def _keys(attrs: dict) -> set:
    return {(name, key) for name in ("email", "code") if (key := _key(name, attrs.get(name)))}


def _existing_keys(account: Account, rows: list[dict]) -> set:
    """The (field, value) keys of these rows that already belong to customers of the account."""
    keys = set().union(*map(_keys, rows))
    if not keys:
        return set()
    emails = [key for name, key in keys if name == "email"]
    codes = [key for name, key in keys if name == "code"]
    found = db.session.execute(
        select(Customer.email_key, Customer.code).where(
            Customer.account_id == account.id, or_(Customer.email_key.in_(emails), Customer.code.in_(codes))
        )
    )
    return {pair for email, code in found for pair in (("email", email), ("code", code)) if pair[1]}


def _hash_passwords(rows: list[dict], pool: ThreadPoolExecutor) -> None:
    """Replace each plain password by its hash, computed on the pool's threads in parallel.

    argon2-cffi releases the GIL while it hashes, so the threads can use every core.
    """
    hash_in_app = functools.partial(_hash_password, current_app._get_current_object())
    for attrs, password_hash in zip(rows, pool.map(hash_in_app, [r["password"] for r in rows]), strict=True):
        attrs["password_hash"] = password_hash
        del attrs["password"]


def _hash_password(app, password: str) -> str:
    with app.app_context():
        return passwords.hash_password(password)


# Writing


def _write(account: Account, rows: list[tuple[int, dict]]) -> tuple[int, list[Failure]]:
    """Write rows, each whole or not at all; return how many were created and the failures.

    The rows are staged with customers.add_customer and flushed together in a savepoint.
    When the database refuses the flush, the batch is split in two and each half written
    again, down to single rows, which go through customers.create_customer as the API does.
    """
    if len(rows) <= 1:
        return _write_row(account, *rows[0]) if rows else (0, [])
    failures = []
    try:
        # No autoflush: a lazy load must not flush the batch row by row.
        with db.session.begin_nested(), db.session.no_autoflush, _Attached(db.session()) as attached:
            for line, attrs in rows:
                try:
                    customers.add_customer(account, attrs)
                except ValidationFailed as e:
                    attached.forget()  # a refused row leaves nothing behind
                    failures.append(Failure(line, _reason(e)))
                attached.clear()
            flush()
        return len(rows) - len(failures), failures
    except (ValidationFailed, IntegrityError, DataError):
        refused = {failure.line for failure in failures}
        rows = [(line, attrs) for line, attrs in rows if line not in refused]
        created_first, failed_first = _write(account, rows[: len(rows) // 2])
        created_second, failed_second = _write(account, rows[len(rows) // 2 :])
        return created_first + created_second, failures + failed_first + failed_second


def _write_row(account: Account, line: int, attrs: dict) -> tuple[int, list[Failure]]:
    """Write one row exactly as POST /v1/customers would, in a savepoint of its own."""
    try:
        with db.session.begin_nested():
            customers.create_customer(account, attrs)
        return 1, []
    except ValidationFailed as e:
        return 0, [Failure(line, _reason(e))]
    except (IntegrityError, DataError) as e:
        return 0, [Failure(line, f"The database refused the row: {str(e.orig).splitlines()[0]}")]


class _Attached:
    """The objects a session gains while a row is staged, so that a refused row can be undone."""

    def __init__(self, session):
        self.session = session
        self.objects = []

    def __enter__(self):
        event.listen(self.session, "after_attach", self._record)
        return self

    def __exit__(self, *exc_info):
        event.remove(self.session, "after_attach", self._record)

    def _record(self, session, instance):
        self.objects.append(instance)

    def clear(self):
        self.objects.clear()

    def forget(self):
        for instance in self.objects:
            if instance in self.session:
                self.session.expunge(instance)
        self.clear()


# Helpers


def _batches(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    rows = iter(rows)
    while batch := list(islice(rows, size)):
        yield batch


def _reason(error: ValidationFailed) -> str:
    """field: title; … with fields named as in the API (camelCase)."""
    return "; ".join(f"{schemas.camelize(e.field)}: {e.title}" for e in error.errors)
