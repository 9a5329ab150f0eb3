"""The files of `flask customers import|export`: CSV and JSON Lines, camelCase columns, line numbers.

Reading turns each record into a services.customer_import.Row: the line it starts on and its
values in snake_case, checked for shape and type by RowSchema (the API's customer attributes
plus a password hash and addresses), or what was wrong with them. A customer's addresses are
a nested array of address objects in JSON Lines, and the shipping*/billing* columns of its
default ones in CSV (ADDRESS_COLUMNS). A column map reads another platform's
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
from freshcom_customers.services import addresses, customer_export
from freshcom_customers.services.customer_import import Failure, Row

READ_FORMATS = ("csv", "jsonl")
WRITE_FORMATS = ("jsonl", "csv")
# Written by an export, ignored by an import, as the API ignores read-only attributes.
READ_ONLY_FIELDS = ("id", "email_verified", "inserted_at", "updated_at")
_TIMESTAMPS = ("inserted_at", "updated_at")


class ImportFileError(Exception):
    """The file cannot be imported at all (an unknown column, a record the csv module cannot read)."""


class RowSchema(schemas.CustomerInputSchema):
    """Types and lengths of a row: the API's customer attributes, the hash of a password, addresses.

    An address's values are checked by the import's rules, as the API checks them.
    """

    password_hash = fields.String(validate=Length(max=255))
    addresses = fields.List(fields.Dict(keys=fields.String()))


FIELDS = tuple(RowSchema().fields)
# An address as a CSV has it: its text, in a column per default address (shippingCity, billingCity).
ADDRESS_TEXT = (*addresses.ADDRESS_LINES, "phone_number")
ADDRESS_COLUMNS = tuple(f"{kind}_{field}" for kind in ("shipping", "billing") for field in ADDRESS_TEXT)
# The columns a CSV may have: addresses come in ADDRESS_COLUMNS.
CSV_FIELDS = (*(name for name in FIELDS if name != "addresses"), *ADDRESS_COLUMNS)
_ADDRESS_READ_ONLY = ("id", "inserted_at", "updated_at")


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
        yield _row(line, *_nested_addresses(values), *errors)


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


def _nested_addresses(values: dict) -> tuple[dict, ...]:
    """The values with each address's keys snake_case, read-only ones dropped; then any unknown keys."""
    book = values.get("addresses")
    if not isinstance(book, list) or not all(isinstance(address, dict) for address in book):
        return (values,)  # RowSchema says what is wrong
    values["addresses"], errors = [], []
    for number, address in enumerate(book, 1):
        address = {schemas.underscore(key): value for key, value in address.items()}
        unknown = [key for key in address if key not in (*addresses.FIELDS, *_ADDRESS_READ_ONLY)]
        errors += [
            FieldError("addresses", "invalid", f"Address {number}: unknown field {schemas.camelize(key)}.")
            for key in unknown
        ]
        values["addresses"].append({k: v for k, v in address.items() if k in addresses.FIELDS})
    return (values, *errors)


def _csv_addresses(values: dict) -> dict:
    """The values with the shipping*/billing* columns made addresses: one, when the two are the same."""
    book = {}
    for kind in ("shipping", "billing"):
        address = {
            field: values.pop(f"{kind}_{field}") for field in ADDRESS_TEXT if f"{kind}_{field}" in values
        }
        if address:
            book[kind] = address
    if book.get("shipping") is not None and book.get("shipping") == book.get("billing"):
        book = {"shipping": {**book.pop("shipping"), "is_default_billing": True}}
    for kind, address in book.items():
        address[f"is_default_{kind}"] = True
    if book:
        values["addresses"] = list(book.values())
    return values


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
    unknown = [name for name in header if name not in CSV_FIELDS + READ_ONLY_FIELDS]
    if unknown:
        known = ", ".join(schemas.camelize(f) for f in CSV_FIELDS)
        raise ImportFileError(f"Unknown columns: {', '.join(unknown)}. Known: {known}.")
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise ImportFileError(f"Repeated columns: {', '.join(schemas.camelize(f) for f in repeated)}.")


def _csv_row(line: int, values: dict, *errors: FieldError) -> Row:
    """customData is JSON text in a CSV cell; the default addresses are columns."""
    values = _csv_addresses(values)
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
    """The columns of a CSV export: customer_export's fields, the default addresses' for addresses."""
    names = [name for name in customer_export.fields(password_hashes=password_hashes) if name != "addresses"]
    return tuple(map(schemas.camelize, (*names, *ADDRESS_COLUMNS)))


def records(customers: Iterable[dict]) -> Iterator[dict]:
    """Each exported customer as a file's record, with the API's names and JSON values.

    Its addresses are a list of such records, or None when it has none.
    """
    return map(_record, customers)


def _record(customer: dict) -> dict:
    """camelCase keys; ids as text and timestamps in ISO 8601 UTC with a Z, as the API shows them."""
    plain = _plain(customer)
    if "addresses" in plain:
        plain["addresses"] = [_plain(address) for address in plain["addresses"]] or None
    return plain


def _plain(row: dict) -> dict:
    plain = {**row, "id": str(row["id"])}
    for key in _TIMESTAMPS:
        plain[key] = plain[key].astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    return {schemas.camelize(key): value for key, value in plain.items()}


def write_customers(
    customers: Iterable[dict], stream: IO[str], file_format: str, *, password_hashes: bool = False
) -> int:
    """Write exported customers as JSON Lines or CSV; return how many."""
    if file_format == "csv":
        flat = map(_default_address_columns, records(customers))
        return write_csv(flat, stream, columns(password_hashes=password_hashes))
    return write_jsonl(records(customers), stream)


def _default_address_columns(record: dict) -> dict:
    """The record with its default addresses in the shipping*/billing* columns; the others are left out."""
    book = record.pop("addresses", None) or []
    for kind in ("shipping", "billing"):
        default = next((a for a in book if a[schemas.camelize(f"is_default_{kind}")]), None)
        for field in ADDRESS_TEXT:
            record[schemas.camelize(f"{kind}_{field}")] = (
                default.get(schemas.camelize(field)) if default else None
            )
    return record


def write_jsonl(records: Iterable[dict], stream: IO[str]) -> int:
    """Write one JSON object a line, without the fields that are null, its addresses' too; return how many."""
    count = 0
    for record in records:
        if record.get("addresses"):
            record = {**record, "addresses": [_without_nulls(a) for a in record["addresses"]]}
        stream.write(json.dumps(_without_nulls(record), ensure_ascii=False))
        stream.write("\n")
        count += 1
    return count


def _without_nulls(record: dict) -> dict:
    return {k: v for k, v in record.items() if v is not None}


def write_csv(records: Iterable[dict], stream: IO[str], fieldnames: tuple[str, ...]) -> int:
    """Write a header and a row per record, customData as JSON text; return how many."""
    writer = csv.DictWriter(stream, fieldnames=fieldnames)
    writer.writeheader()
    count = 0
    for record in records:
        writer.writerow({**record, "customData": json.dumps(record["customData"], ensure_ascii=False)})
        count += 1
    return count
