"""The files of `flask customers import|export`: CSV and JSON Lines, camelCase columns, line numbers.

Reading turns each record into a services.customer_import.Row: the line it starts on and its
values in snake_case, checked for shape and type by RowSchema (the API's customer attributes
plus a password hash), or what was wrong with them. A column map reads another platform's
export instead (COLUMN_MAPS: Medusa's and Saleor's customer tables). Writing turns the plain
dicts of services.customer_export into records with the API's names and JSON values.
"""

import csv
import functools
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC
from typing import IO

from marshmallow import RAISE, ValidationError, fields
from marshmallow.validate import Length

from freshcom_customers import schemas
from freshcom_customers.errors import FieldError
from freshcom_customers.services import customer_export
from freshcom_customers.services.customer_import import Failure, Row

READ_FORMATS = ("csv", "jsonl")
WRITE_FORMATS = ("jsonl", "csv")
# Written by an export, ignored by an import, as the API ignores read-only attributes.
READ_ONLY_FIELDS = ("id", "email_verified", "inserted_at", "updated_at")
_TIMESTAMPS = ("inserted_at", "updated_at")


class ImportFileError(Exception):
    """The file cannot be imported at all (an unknown column, a record the csv module cannot read)."""


class RowSchema(schemas.CustomerInputSchema):
    """Types and lengths of a row: the API's customer attributes, plus the hash of a password."""

    password_hash = fields.String(validate=Length(max=255))


FIELDS = tuple(RowSchema().fields)


@dataclass(frozen=True)
class ColumnMap:
    """Another platform's customer columns, as its export names them, onto ours.

    Its other columns are ignored (its tables hold more than a customer); status_of derives our
    status from the row as read, and a hash in the form the platform stores for "no password"
    is no hash at all.
    """

    columns: dict[str, str]
    status_of: Callable[[dict], str]
    no_password: Callable[[str], bool] = lambda value: False

    def apply(self, record: dict) -> tuple[dict, tuple[FieldError, ...]]:
        """The record's values under our names, and what was wrong with the ones it derives from."""
        values = {
            ours: record[theirs] for theirs, ours in self.columns.items() if record.get(theirs) is not None
        }
        if isinstance(values.get("password_hash"), str) and self.no_password(values["password_hash"]):
            del values["password_hash"]
        try:
            values["status"] = self.status_of(record)
        except ValueError as e:
            return values, (FieldError(*e.args),)
        return values, ()


def _flag(record: dict, column: str, default: bool) -> bool:
    """A boolean column as JSON (true), PostgreSQL's CSV (t) or a spreadsheet (TRUE, 1) writes it."""
    value = record.get(column)
    if value is None or value == "":
        return default
    text = str(value).lower()
    if text in ("true", "t", "1", "yes"):
        return True
    if text in ("false", "f", "0", "no"):
        return False
    raise ValueError(column, "invalid", "Must be true or false.")


# docs/decisions.md ("Import and export") gives the query that exports each of these.
COLUMN_MAPS = {
    # Medusa v2: the customer table, and the hash its emailpass auth provider keeps in
    # provider_identity.provider_metadata->>'password' (scrypt-kdf, base64), exported as "password".
    "medusa": ColumnMap(
        columns={
            "email": "email",
            "first_name": "first_name",
            "last_name": "last_name",
            "phone": "phone_number",
            "metadata": "custom_data",
            "password": "password_hash",
        },
        status_of=lambda record: "registered" if _flag(record, "has_account", False) else "guest",
    ),
    # Saleor: the account_user table (customers, not staff); password in Django's format, or
    # Django's "unusable password" ("!" and random text) for a customer who never set one.
    "saleor": ColumnMap(
        columns={
            "email": "email",
            "first_name": "first_name",
            "last_name": "last_name",
            "note": "description",
            "metadata": "custom_data",
            "password": "password_hash",
        },
        status_of=lambda record: "registered" if _flag(record, "is_active", True) else "suspended",
        no_password=lambda value: value.startswith("!"),
    ),
}


@functools.lru_cache(maxsize=64)
def _schema(names: frozenset[str]) -> RowSchema:
    """A schema of only the fields a row has: marshmallow visits every declared field otherwise.

    The rows of a file share a few sets of fields, so a handful of schemas serve them all. The
    fields keep their declared order, so a row's errors come in the same order on every run.
    """
    return RowSchema(only=tuple(name for name in FIELDS if name in names))


# Reading


def read_rows(stream: IO[str], file_format: str, column_map: ColumnMap | None = None) -> Iterator[Row]:
    """Read the rows of a CSV (with a header) or JSON Lines text stream, with their line numbers.

    With a column map, the columns are another platform's, mapped onto ours.
    """
    if file_format == "csv":
        return _read_csv(stream, column_map)
    return _read_jsonl(stream, column_map)


def _read_jsonl(stream: IO[str], column_map: ColumnMap | None) -> Iterator[Row]:
    for line, text in enumerate(stream, 1):
        if not text.strip():
            continue
        try:
            record = json.loads(text.rstrip("\r\n"))
        except json.JSONDecodeError as e:
            yield Row(line, {}, problem=_json_problem(e))
            continue
        if not isinstance(record, dict):
            yield Row(line, {}, problem="A line must be a JSON object.")
            continue
        values, errors = _mapped(
            {schemas.underscore(key): value for key, value in record.items()}, column_map
        )
        yield _row(line, values, *errors)


def _read_csv(stream: IO[str], column_map: ColumnMap | None) -> Iterator[Row]:
    reader = csv.reader(stream)
    header = [schemas.underscore(name.strip()) for name in next(reader, [])]
    _check_header(header, column_map)
    read_so_far = reader.line_num
    for values in _csv_records(reader):
        line, read_so_far = read_so_far + 1, reader.line_num
        if not any(values):
            continue
        if len(values) != len(header):
            yield Row(line, {}, problem=f"{len(values)} values for {len(header)} columns.")
            continue
        # An empty cell is an absent field.
        values, errors = _mapped(
            {name: value for name, value in zip(header, values, strict=True) if value != ""}, column_map
        )
        yield _csv_row(line, values, *errors)


def _csv_records(reader) -> Iterator[list[str]]:
    try:
        yield from reader
    except csv.Error as e:
        raise ImportFileError(f"line {reader.line_num}: {e}") from e


def _mapped(values: dict, column_map: ColumnMap | None) -> tuple[dict, tuple[FieldError, ...]]:
    return column_map.apply(values) if column_map else (values, ())


def _check_header(header: list[str], column_map: ColumnMap | None = None) -> None:
    if column_map:
        if "email" not in header:
            raise ImportFileError("No email column, which the column map reads.")
        return
    unknown = [name for name in header if name not in FIELDS + READ_ONLY_FIELDS]
    if unknown:
        raise ImportFileError(
            f"Unknown columns: {', '.join(unknown)}. Known: {', '.join(schemas.camelize(f) for f in FIELDS)}."
        )
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise ImportFileError(f"Repeated columns: {', '.join(schemas.camelize(f) for f in repeated)}.")


def _csv_row(line: int, values: dict, *errors: FieldError) -> Row:
    """customData is JSON text in a CSV cell."""
    if "custom_data" not in values:
        return _row(line, values, *errors)
    try:
        values["custom_data"] = json.loads(values.pop("custom_data"))
    except json.JSONDecodeError as e:
        return _row(line, values, *errors, FieldError("custom_data", "invalid", _json_problem(e)))
    return _row(line, values, *errors)


def _row(line: int, values: dict, *errors: FieldError) -> Row:
    """The row with its values as RowSchema loads them, or as read with what was wrong with them."""
    # A null is an absent field.
    values = {k: v for k, v in values.items() if v is not None and k not in READ_ONLY_FIELDS}
    try:
        loaded = _schema(frozenset(values)).load(values, unknown=RAISE)
    except ValidationError as e:
        return Row(line, values, (*errors, *schemas.field_errors(e.messages)))
    return Row(line, values, errors) if errors else Row(line, loaded)


def _json_problem(error: json.JSONDecodeError) -> str:
    return f"Not valid JSON: {error.msg} at character {error.pos + 1}."


def reason(failure: Failure) -> str:
    """Why a row failed: "field: title; …" with fields named as in the API (camelCase)."""
    return failure.problem or "; ".join(f"{schemas.camelize(e.field)}: {e.title}" for e in failure.errors)


# Writing


def columns(*, password_hashes: bool = False) -> tuple[str, ...]:
    """The columns of an export: customer_export's fields, camelCase."""
    return tuple(map(schemas.camelize, customer_export.fields(password_hashes=password_hashes)))


def records(customers: Iterable[dict]) -> Iterator[dict]:
    """Each exported customer as a file's record, with the API's names and JSON values."""
    return map(_record, customers)


def _record(customer: dict) -> dict:
    """camelCase keys; the id as text and timestamps in ISO 8601 UTC with a Z, as the API shows them."""
    plain = {**customer, "id": str(customer["id"])}
    for key in _TIMESTAMPS:
        plain[key] = plain[key].astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    return {schemas.camelize(key): value for key, value in plain.items()}


def write_customers(
    customers: Iterable[dict], stream: IO[str], file_format: str, *, password_hashes: bool = False
) -> int:
    """Write exported customers as JSON Lines or CSV; return how many."""
    if file_format == "csv":
        return write_csv(records(customers), stream, columns(password_hashes=password_hashes))
    return write_jsonl(records(customers), stream)


def write_jsonl(records: Iterable[dict], stream: IO[str]) -> int:
    """Write one JSON object a line, without the fields that are null; return how many."""
    count = 0
    for record in records:
        stream.write(json.dumps({k: v for k, v in record.items() if v is not None}, ensure_ascii=False))
        stream.write("\n")
        count += 1
    return count


def write_csv(records: Iterable[dict], stream: IO[str], fieldnames: tuple[str, ...]) -> int:
    """Write a header and a row per record, customData as JSON text; return how many."""
    writer = csv.DictWriter(stream, fieldnames=fieldnames)
    writer.writeheader()
    count = 0
    for record in records:
        writer.writerow({**record, "customData": json.dumps(record["customData"], ensure_ascii=False)})
        count += 1
    return count
