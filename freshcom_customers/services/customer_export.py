"""Export the customers of an account, streamed, with the field names an import reads."""

import csv
import json
from collections.abc import Iterator
from datetime import UTC
from typing import IO

from sqlalchemy import select

from freshcom_customers.extensions import db
from freshcom_customers.models import Account, Customer, User

FORMATS = ("jsonl", "csv")
# The API's Customer attributes, then the login an import needs to recreate a registered customer.
COLUMNS = (
    "id",
    "status",
    "code",
    "name",
    "firstName",
    "lastName",
    "email",
    "phoneNumber",
    "label",
    "caption",
    "description",
    "customData",
    "emailVerified",
    "insertedAt",
    "updatedAt",
    "username",
)
_CUSTOMER_COLUMNS = (
    Customer.id,
    Customer.status,
    Customer.code,
    Customer.name,
    Customer.first_name,
    Customer.last_name,
    Customer.email,
    Customer.phone_number,
    Customer.label,
    Customer.caption,
    Customer.description,
    Customer.custom_data,
    Customer.email_verified,
    Customer.inserted_at,
    Customer.updated_at,
    User.username,
)
STREAM_BATCH = 1000


def export_customers(account: Account, *, password_hashes: bool = False) -> Iterator[dict]:
    """Yield every customer of the account, oldest first, as a record an import reads back.

    Rows are streamed from the database in batches, so memory stays flat however many
    there are. Password hashes only when asked: the file then needs the care of a backup.
    """
    query = (
        select(*_CUSTOMER_COLUMNS, User.password_hash)
        .outerjoin(User, Customer.user_id == User.id)
        .where(Customer.account_id == account.id)
        .order_by(Customer.inserted_at, Customer.id)
        .execution_options(yield_per=STREAM_BATCH)
    )
    for row in db.session.execute(query):
        record = dict(zip(COLUMNS, row[:-1], strict=True))
        if password_hashes:
            record["passwordHash"] = row.password_hash
        yield _plain(record)


def columns(*, password_hashes: bool = False) -> tuple[str, ...]:
    return (*COLUMNS, "passwordHash") if password_hashes else COLUMNS


def write_jsonl(records: Iterator[dict], stream: IO[str]) -> int:
    """Write one JSON object a line, without the fields that are null; return how many."""
    count = 0
    for record in records:
        stream.write(json.dumps({k: v for k, v in record.items() if v is not None}, ensure_ascii=False))
        stream.write("\n")
        count += 1
    return count


def write_csv(records: Iterator[dict], stream: IO[str], fieldnames: tuple[str, ...]) -> int:
    """Write a header and a row per record, customData as JSON text; return how many."""
    writer = csv.DictWriter(stream, fieldnames=fieldnames)
    writer.writeheader()
    count = 0
    for record in records:
        writer.writerow({**record, "customData": json.dumps(record["customData"], ensure_ascii=False)})
        count += 1
    return count


def _plain(record: dict) -> dict:
    """JSON values: the id as text, timestamps in ISO 8601 UTC with a Z, as the API shows them."""
    record["id"] = str(record["id"])
    for key in ("insertedAt", "updatedAt"):
        record[key] = record[key].astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    return record
