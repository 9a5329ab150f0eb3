"""Export the customers of an account, streamed, as plain dicts of the fields an import reads back."""

from collections.abc import Iterator

from sqlalchemy import select

from freshcom_customers.extensions import db
from freshcom_customers.models import Account, Customer, User

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
FIELDS = tuple(column.key for column in _COLUMNS)
STREAM_BATCH = 1000


def fields(*, password_hashes: bool = False) -> tuple[str, ...]:
    """The fields of each exported customer, in order (snake_case)."""
    return (*FIELDS, "password_hash") if password_hashes else FIELDS


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
    names = fields(password_hashes=password_hashes)
    for row in db.session.execute(query):
        yield dict(zip(names, row, strict=True))
