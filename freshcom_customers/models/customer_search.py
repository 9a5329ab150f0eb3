"""The words search= looks for: one row per customer and search term, kept with the customer.

search= matches the beginnings of words in a customer's code, name, email and phone number.
Each of those values is stored as its suffixes that start a word ("yuki.tanaka@shop.test"
gives "yuki.tanaka@shop.test", "tanaka@shop.test", "shop.test" and "test"), so a search
for "tanaka", "tanaka@shop" or "shop.test" is a prefix range over one B-tree index, and its
exact count an index-only scan: a million customers can be counted in tens of milliseconds,
which a trigram index cannot do (it must recheck every match in the table). A customer
with several terms in the range is counted once without a DISTINCT: see shared_prefix.

Numbers are compared by their digits ("604-555-0123", "(604) 555 0123" and "6045550123" are
one term), so a phone number matches however it was typed.

The terms are written in the same flush as the customer (insert and change), and removed
with it by the foreign key's ON DELETE CASCADE. Code that writes customers with plain SQL
must write their terms too (bench/customer_lists.py does).
"""

import re
import uuid

from sqlalchemy import (
    ForeignKey,
    Index,
    PrimaryKeyConstraint,
    SmallInteger,
    Text,
    delete,
    event,
    insert,
    inspect,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from freshcom_customers.models.base import db
from freshcom_customers.models.customer import Customer

SEARCHED_FIELDS = ("code", "name", "email", "phone_number")
# A prefix range ends below this: no stored term continues a prefix with a greater character.
_TOP = "\U0010ffff"
_WORD_START = re.compile(r"(?<![^\W_])[^\W_]")  # a letter or digit not after another one
_NUMBER = re.compile(r"[\d\s().+/-]*\d[\d\s().+/-]*")


class CustomerSearchTerm(db.Model):
    __tablename__ = "customer_search_terms"
    __table_args__ = (
        # The search index: an account's terms in order, each with its customers, and with
        # shared_prefix, so that a search's total is counted from the index alone.
        Index(
            "ix_customer_search_terms_account_id_term_customer_id",
            "account_id",
            "term",
            "customer_id",
            postgresql_include=["shared_prefix"],
        ),
        # A check of one customer's words (services/customers._has_term) is a probe of this
        # key; carrying the account lets a probe filtered by account read the index alone.
        PrimaryKeyConstraint("customer_id", "term", postgresql_include=["account_id"]),
    )

    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    # Byte order ("C") on PostgreSQL, so that a prefix is one range of the index.
    term: Mapped[str] = mapped_column(Text().with_variant(Text(collation="C"), "postgresql"))
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    # How many leading characters this term shares with the customer's previous term in byte
    # order. A customer with several terms in a search's range is counted at the first only:
    # the others share at least the search's length with the term before them.
    shared_prefix: Mapped[int] = mapped_column(SmallInteger)


def normalize(word: str) -> str:
    """Lower case; a number (digits with phone punctuation) becomes its digits."""
    word = word.strip().lower()
    if _NUMBER.fullmatch(word):
        return re.sub(r"\D", "", word)
    return word


def terms_of(values) -> set[str]:
    """The search terms of some values: every suffix that starts a word, normalized."""
    terms = set()
    for value in values:
        if value:
            terms.update(normalize(value[m.start() :]) for m in _WORD_START.finditer(value))
    terms.discard("")
    return terms


def term_rows(values) -> list[tuple[str, int]]:
    """The terms of some values in byte order, each with its shared_prefix."""
    rows, previous = [], ""
    for term in sorted(terms_of(values)):  # code point order is UTF-8's byte order
        rows.append((term, _shared_length(previous, term)))
        previous = term
    return rows


def _shared_length(a: str, b: str) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def search_keys(search: str | None) -> list[str]:
    """The prefixes a search needs, one per word; a customer must match all of them.

    A word is looked for from its first letter or digit, as every term starts with one.
    """
    keys = []
    for word in (search or "").split():
        start = _WORD_START.search(word)
        key = normalize(word[start.start() :]) if start else ""
        if key and key not in keys:
            keys.append(key)
    return keys


def prefix_range(column, key: str):
    return (column >= key) & (column < key + _TOP)


@event.listens_for(Session, "after_flush")
def _write_terms(session, flush_context):
    """Write the terms of the customers this flush inserted or whose searched fields changed.

    In after_flush the session still lists what was new and dirty before the flush, and the
    statements run in the flush's transaction: the terms land or fail with the customer.
    """
    changed = [
        customer
        for customer in session.dirty
        if isinstance(customer, Customer)
        and any(inspect(customer).attrs[field].history.has_changes() for field in SEARCHED_FIELDS)
    ]
    new = [customer for customer in session.new if isinstance(customer, Customer)]
    if not changed and not new:
        return
    connection = session.connection()
    if changed:
        ids = [customer.id for customer in changed]
        connection.execute(delete(CustomerSearchTerm).where(CustomerSearchTerm.customer_id.in_(ids)))
    rows = [
        {"customer_id": customer.id, "account_id": customer.account_id, "term": term, "shared_prefix": shared}
        for customer in new + changed
        for term, shared in term_rows(getattr(customer, field) for field in SEARCHED_FIELDS)
    ]
    if rows:
        connection.execute(insert(CustomerSearchTerm), rows)
