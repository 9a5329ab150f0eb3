"""What the merchant's other systems hear (API.md 12): webhook endpoints, the outbox, deliveries,
and each customer's history.

Events and history rows are written in the transaction of the change that causes them
(services/changes.py). Their ids are sequence numbers, so "in order" and "newest first" are an
ORDER BY on one column. Neither has a foreign key to its customer: both outlive an erasure.
"""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from freshcom_customers.models.base import JSONType, Timestamped, db, utcnow

# SQLite makes only an INTEGER PRIMARY KEY an alias of its rowid, which it numbers itself.
SEQUENCE = BigInteger().with_variant(Integer(), "sqlite")

WEBHOOK_EVENTS = (
    "customer.created",
    "customer.updated",
    "customer.registered",
    "customer.suspended",
    "customer.reactivated",
    "customer.deleted",
    "user.password_changed",
    "user.email_changed",
    "order.created",
    "order.updated",
    "order.deleted",
)
DELIVERY_STATUSES = ("pending", "succeeded", "failed")
# What a customer's history tells (API.md 12), and who did it.
HISTORY_EVENTS = (
    "created",
    "updated",
    "registered",
    "suspended",
    "reactivated",
    "email_changed",
    "password_changed",
    "password_reset",
    "logged_in",
    "login_failed",
    "sessions_ended",
    "deleted",
    "erased",
)
ACTORS = ("staff", "client", "customer", "system", "anonymous")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


class WebhookEndpoint(Timestamped, db.Model):
    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index("ix_webhook_endpoints_account_id_inserted_at", "account_id", "inserted_at"),)

    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str | None] = mapped_column(String(255))
    # The event types it wants, or ["*"] for all of them.
    events: Mapped[list[str]] = mapped_column(JSONType)
    enabled: Mapped[bool] = mapped_column(default=True)
    # The signing secret (whsec_...), encrypted with the data keys (services/data_keys.py): the
    # worker needs it in clear to sign, so it cannot be hashed; it is shown once, at creation.
    secret_ciphertext: Mapped[str] = mapped_column(Text)


class WebhookEvent(db.Model):
    """One change, as the outbox holds it until every endpoint that wanted it has it."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        CheckConstraint(_one_of("type", WEBHOOK_EVENTS), name="type"),
        {"sqlite_autoincrement": True},  # SQLite too never gives a deleted row's number again
    )

    id: Mapped[int] = mapped_column(SEQUENCE, primary_key=True, autoincrement=True)
    # webhook-id: the same for every endpoint and every attempt, so receivers can drop repeats.
    message_id: Mapped[str] = mapped_column(String(40), unique=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(40))
    # The customer it is about (an order's customer, or the order), as its deliveries' order
    # key: an erasure deletes the customer's events, whose data is personal.
    ordering_key: Mapped[str] = mapped_column(String(40), index=True)
    # The JSON body sent, built when the change was made: {"type", "timestamp", "data"}.
    payload: Mapped[dict[str, Any]]
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookDelivery(Timestamped, db.Model):
    """One event for one endpoint: its attempts so far, and what comes next."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        CheckConstraint(_one_of("status", DELIVERY_STATUSES), name="status"),
        # The worker's queue: what is due, and what goes before it in its endpoint and key.
        Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            "event_id",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        Index(
            "ix_webhook_deliveries_order",
            "endpoint_id",
            "ordering_key",
            "event_id",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        Index("ix_webhook_deliveries_endpoint_id_event_id", "endpoint_id", "event_id"),
        Index("ix_webhook_deliveries_event_id", "event_id"),
    )

    endpoint_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(SEQUENCE, ForeignKey("webhook_events.id", ondelete="CASCADE"))
    # The customer the event is about (or the order, when it has no customer): one key's events
    # go to one endpoint in the order they happened.
    ordering_key: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=utcnow)
    # Retries stop here: 3 days after the event, or after a manual retry.
    give_up_at: Mapped[datetime]
    # A worker's claim: no other worker takes the delivery before lease_until.
    lease_token: Mapped[uuid.UUID | None]
    lease_until: Mapped[datetime | None]
    last_attempt_at: Mapped[datetime | None]
    response_code: Mapped[int | None]
    duration_ms: Mapped[int | None]
    response_body: Mapped[str | None] = mapped_column(String(1024))
    error: Mapped[str | None] = mapped_column(String(255))

    event: Mapped[WebhookEvent] = relationship()


class CustomerEvent(db.Model):
    """One line of a customer's history. No personal data but the network a login came from,
    which an erasure clears."""

    __tablename__ = "customer_events"
    __table_args__ = (
        Index("ix_customer_events_customer_id_id", "customer_id", "id"),
        Index("ix_customer_events_occurred_at", "occurred_at"),
        CheckConstraint(_one_of("event", HISTORY_EVENTS), name="event"),
        CheckConstraint(_one_of("actor", ACTORS), name="actor"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(SEQUENCE, primary_key=True, autoincrement=True)
    account_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    # None for a failed login of no known customer (services/history.py says why it is written).
    customer_id: Mapped[uuid.UUID | None]
    event: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(16))
    # The staff user's or the client's id; the customer's own id is the row's customer_id.
    actor_id: Mapped[uuid.UUID | None]
    ip_address: Mapped[str | None] = mapped_column(String(64))  # the /24 or /48, as sessions keep it
    details: Mapped[dict[str, Any] | None]
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
