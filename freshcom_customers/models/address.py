"""A customer's address book (API.md 10): at most one default shipping and one default billing address."""

import uuid
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from freshcom_customers.models.base import Timestamped, db

MAX_ADDRESSES = 50  # a customer's; the 51st is refused


class Address(Timestamped, db.Model):
    __tablename__ = "addresses"
    __table_args__ = (
        # One default of each kind per customer, whoever writes: two requests setting
        # different defaults at once leave exactly one.
        Index(
            "uq_addresses_default_shipping",
            "customer_id",
            unique=True,
            sqlite_where=text("is_default_shipping"),
            postgresql_where=text("is_default_shipping"),
        ),
        Index(
            "uq_addresses_default_billing",
            "customer_id",
            unique=True,
            sqlite_where=text("is_default_billing"),
            postgresql_where=text("is_default_billing"),
        ),
        # A customer's addresses in order (include=addresses, the customer's list); staff's
        # list of the account, newest first.
        Index("ix_addresses_customer_id_inserted_at_id", "customer_id", "inserted_at", "id"),
        Index("ix_addresses_account_id_inserted_at_id", "account_id", "inserted_at", "id"),
        CheckConstraint("length(country_code) = 2", name="country_code"),
    )

    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    name: Mapped[str | None] = mapped_column(String(255))
    company: Mapped[str | None] = mapped_column(String(255))
    line_one: Mapped[str | None] = mapped_column(String(255))
    line_two: Mapped[str | None] = mapped_column(String(255))
    city: Mapped[str | None] = mapped_column(String(255))
    province: Mapped[str | None] = mapped_column(String(255))
    postal_code: Mapped[str | None] = mapped_column(String(32))
    country_code: Mapped[str] = mapped_column(String(2))  # ISO 3166-1 alpha-2, upper case
    phone_number: Mapped[str | None] = mapped_column(String(32))
    is_default_shipping: Mapped[bool] = mapped_column(default=False)
    is_default_billing: Mapped[bool] = mapped_column(default=False)
    custom_data: Mapped[dict[str, Any]] = mapped_column(default=dict)
