"""Export the customers of an account, streamed, as plain dicts of the fields an import reads back.

A customer's addresses come with it, as a list of plain dicts, read a batch of customers at a time.
"""

from collections.abc import Iterator

from sqlalchemy import select

from freshcom_customers.extensions import db
from freshcom_customers.models import Account, Address, Customer, User
from freshcom_customers.services import addresses

# The API's Customer attributes, then the login an import needs to recreate a registered customer.
_COLUMNS = (
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
_COLUMN_FIELDS = tuple(column.key for column in _COLUMNS)
FIELDS = (*_COLUMN_FIELDS, "addresses")
# Each address's: the API's Address attributes and its id.
ADDRESS_FIELDS = ("id", *addresses.FIELDS, "inserted_at", "updated_at")
STREAM_BATCH = 1000


def fields(*, password_hashes: bool = False) -> tuple[str, ...]:
    """The fields of each exported customer, in order (snake_case)."""
    return (*_COLUMN_FIELDS, "password_hash", "addresses") if password_hashes else FIELDS


def export_customers(account: Account, *, password_hashes: bool = False) -> Iterator[dict]:
    """Yield every customer of the account, oldest first, as a dict of its fields (see fields()).

    Rows are streamed from the database in batches, so memory stays flat however many
    there are. Password hashes only when asked: the file then needs the care of a backup.
    """
    columns = (*_COLUMNS, User.password_hash) if password_hashes else _COLUMNS
    query = (
        select(*columns)
        .outerjoin(User, Customer.user_id == User.id)
        .where(Customer.account_id == account.id)
        .order_by(Customer.inserted_at, Customer.id)
        .execution_options(yield_per=STREAM_BATCH)
    )
    names = (*_COLUMN_FIELDS, "password_hash") if password_hashes else _COLUMN_FIELDS
    for rows in db.session.execute(query).partitions():
        books = _addresses_of([row.id for row in rows])
        for row in rows:
            yield {**dict(zip(names, row, strict=True)), "addresses": books.get(row.id, [])}


def _addresses_of(customer_ids: list) -> dict:
    """The addresses of these customers as plain dicts, oldest first, by customer id: one query."""
    columns = [getattr(Address, name) for name in ADDRESS_FIELDS]
    query = (
        select(Address.customer_id, *columns)
        .where(Address.customer_id.in_(customer_ids))
        .order_by(Address.customer_id, Address.inserted_at, Address.id)
    )
    books = {}
    for customer_id, *values in db.session.execute(query):
        books.setdefault(customer_id, []).append(dict(zip(ADDRESS_FIELDS, values, strict=True)))
    return books
