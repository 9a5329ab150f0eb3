"""Orders: a customer's purchase history, written by a checkout service or staff tool."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from freshcom_customers.models.base import JSONType, Timestamped, db
from freshcom_customers.models.customer import Customer

ORDER_STATUSES = ("cart", "opened", "closed", "cancelled")
PAYMENT_STATUSES = ("pending", "authorized", "partially_paid", "paid", "partially_refunded", "refunded")
FULFILLMENT_STATUSES = ("pending", "processing", "partially_fulfilled", "fulfilled", "returned", "discarded")


def _one_of(column: str, values: tuple[str, ...]) -> CheckConstraint:
    listed = ", ".join(f"'{v}'" for v in values)
    return CheckConstraint(f"{column} IN ({listed})", name=column)


class Order(Timestamped, db.Model):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("account_id", "code"),
        Index("ix_orders_account_id_inserted_at", "account_id", "inserted_at"),
        Index("ix_orders_account_id_status_inserted_at", "account_id", "status", "inserted_at"),
        Index("ix_orders_customer_id_inserted_at", "customer_id", "inserted_at"),
        _one_of("status", ORDER_STATUSES),
        _one_of("payment_status", PAYMENT_STATUSES),
        _one_of("fulfillment_status", FULFILLMENT_STATUSES),
    )

    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    # Orders outlive their customer: deleting it detaches them (the email is copied first).
    customer_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    code: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="opened")
    payment_status: Mapped[str] = mapped_column(String(24), default="pending")
    fulfillment_status: Mapped[str] = mapped_column(String(24), default="pending")
    currency: Mapped[str] = mapped_column(String(3))
    sub_total_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    tax_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    shipping_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    total_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    line_items: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    email: Mapped[str | None] = mapped_column(String(254))
    custom_data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    placed_at: Mapped[datetime | None]

    customer: Mapped[Customer | None] = relationship()
