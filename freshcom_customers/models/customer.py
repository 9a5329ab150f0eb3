"""Customers of an account; a registered or suspended one has exactly one managed user."""

import uuid
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from freshcom_customers import identifiers
from freshcom_customers.models.base import Timestamped, db
from freshcom_customers.models.user import User

CUSTOMER_STATUSES = ("guest", "registered", "suspended")


class Customer(Timestamped, db.Model):
    __tablename__ = "customers"
    __table_args__ = (
        # Emails are compared by their canonical form (freshcom_customers/identifiers.py):
        # unique as people read them. filter[email] finds its one row through this index.
        UniqueConstraint("account_id", "email_key"),
        UniqueConstraint("account_id", "code"),
        # Every list query filters on the account first; each sort and filter has its index,
        # ending in id, the tie-breaker, so a page is read in index order without sorting.
        Index("ix_customers_account_id_inserted_at_id", "account_id", "inserted_at", "id"),
        Index("ix_customers_account_id_updated_at_id", "account_id", "updated_at", "id"),
        Index("ix_customers_account_id_name_id", "account_id", "name", "id"),
        Index("ix_customers_account_id_status_inserted_at_id", "account_id", "status", "inserted_at", "id"),
        Index("ix_customers_account_id_label_inserted_at_id", "account_id", "label", "inserted_at", "id"),
        CheckConstraint("status IN ('guest', 'registered', 'suspended')", name="status"),
    )

    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), unique=True
    )
    status: Mapped[str] = mapped_column(String(16), default="guest")
    code: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(255))
    first_name: Mapped[str | None] = mapped_column(String(255))
    last_name: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(254))  # where mail goes: as typed, lower case
    email_key: Mapped[str | None] = mapped_column(String(254))  # canonical(email), set with it
    phone_number: Mapped[str | None] = mapped_column(String(32))
    label: Mapped[str | None] = mapped_column(String(64))
    caption: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    custom_data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    email_verified: Mapped[bool] = mapped_column(default=False)

    user: Mapped[User | None] = relationship()

    @validates("email")
    def _set_email_key(self, _field, email):
        self.email_key = identifiers.canonical(email)
        return email


class CustomerCount(db.Model):
    """How many customers an account has per status and label, kept exact by triggers.

    Counting a million index entries takes over 100 ms, so list totals read these rows
    instead. Database triggers (migration 0003) maintain them on every insert, update and
    delete of customers, whoever writes: the API, an import or plain SQL. A migration that
    recreates the customers table (Alembic's SQLite batch mode does) must recreate them.
    """

    __tablename__ = "customer_counts"

    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    label: Mapped[str] = mapped_column(String(64), primary_key=True)  # '' for no label
    count: Mapped[int] = mapped_column(BigInteger)
