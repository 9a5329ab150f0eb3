"""Session helpers: flushing with uniqueness left to the database, ids from the wire, tenancy."""

import re
import uuid

from sqlalchemy import Index, UniqueConstraint
from sqlalchemy.exc import IntegrityError

from freshcom_customers.errors import NotFound, Taken
from freshcom_customers.extensions import db

_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: (?P<columns>[\w., ]+)")


def as_uuid(value) -> uuid.UUID | None:
    """The UUID a path or body gives, or None when it is not one (then nothing can match it)."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def get_in_account(model, account, row_id, name: str):
    """The account's row of model with this id; NotFound(name) for a malformed id or another tenant's."""
    row_id = as_uuid(row_id)
    row = db.session.get(model, row_id) if row_id else None
    if row is None or row.account_id != account.id:
        raise NotFound(name)
    return row


def flush() -> None:
    """Flush the session; raise Taken(field) when a unique constraint refuses a row."""
    try:
        db.session.flush()
    except IntegrityError as e:
        field = _unique_field(e)
        if field is None:
            raise
        raise Taken(field) from e


def _unique_field(error: IntegrityError) -> str | None:
    by_name, by_columns = _unique_keys()
    # PostgreSQL names the constraint; SQLite names its columns.
    name = getattr(getattr(error.orig, "diag", None), "constraint_name", None)
    if name:
        return by_name.get(name)
    match = _SQLITE_UNIQUE.search(str(error.orig))
    if match:
        return by_columns.get(tuple(c.strip() for c in match["columns"].split(",")))
    return None


def _unique_keys():
    """Map each unique constraint and index, by name and by columns, to the field it guards."""
    by_name, by_columns = {}, {}
    for table in db.metadata.tables.values():
        for item in [*table.constraints, *table.indexes]:
            if isinstance(item, UniqueConstraint) or (isinstance(item, Index) and item.unique):
                columns = [c.name for c in item.columns]
                field = columns[-1]  # the others scope it: (account_id, email) guards email
                by_name[item.name] = field
                by_columns[tuple(f"{table.name}.{c}" for c in columns)] = field
    return by_name, by_columns
