"""What a flush changed, told in the same transaction to the customer's history and to the
webhook outbox (API.md 12).

A listener on every session's after_flush reads the customers, users and orders the flush
wrote, with the history of their attributes, and inserts history rows, webhook events and one
delivery per endpoint that wants each event, through the flush's own connection. A change
that rolls back (a request that fails, an import row refused in its savepoint) takes its
events with it; one that commits cannot lose them. Every path that changes a customer (both
faces, the CLI, the import) is covered without calling anything.

Some changes are not told by their columns alone; the service that makes them says what they
were with mark() before the flush: a password changed or reset (a rehash on login is neither),
a customer erased rather than deleted.

The events' data is each resource as the API shows it, snapshotted when the change was made;
the API says how (show_as), since a service may not import a face. Who made the change comes
from actors.current().
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import event, insert, inspect, select
from sqlalchemy.orm import Session

from freshcom_customers.models import (
    Customer,
    CustomerEvent,
    Order,
    User,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from freshcom_customers.models.base import utcnow
from freshcom_customers.services import actors, webhooks

_MARKS = "changes.marks"
# Columns whose change is no news: bookkeeping the API does not show as a change.
# user_id is set by a registration, which is its own event.
_UNTOLD = {"updated_at", "inserted_at", "email_key", "user_id"}
_SHAPES: dict[type, Callable[[object], dict]] = {}


def show_as(model: type, shape: Callable[[object], dict]) -> None:
    """How the API shows a model's rows: an event's data is shape(row), taken at the change."""
    _SHAPES[model] = shape


def mark(session: Session, row, what: str) -> None:
    """Say what the next flush's change of row is: password_changed, password_reset or erased."""
    session.info.setdefault(_MARKS, {})[(type(row), row.id)] = what


@dataclass
class _Told:
    """What one flush tells: history rows, and webhook events by account."""

    history: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)

    def remember(self, account_id, customer_id, what: str, actor: actors.Actor, details=None) -> None:
        self.history.append(
            {
                "account_id": account_id,
                "customer_id": customer_id,
                "event": what,
                "actor": actor.kind,
                "actor_id": actor.id,
                "details": details,
                "occurred_at": utcnow(),
            }
        )

    def announce(self, account_id, event_type: str, ordering_key, data: dict) -> None:
        self.events.append(
            {"account_id": account_id, "type": event_type, "ordering_key": str(ordering_key), "data": data}
        )


def _after_flush(session: Session, _context) -> None:
    rows = [*session.new, *session.dirty, *session.deleted]
    if not any(isinstance(row, (Customer, User, Order)) for row in rows):
        return
    marks = session.info.pop(_MARKS, {})
    told, actor = _Told(), actors.current(session)
    for row in session.new:
        if isinstance(row, Customer):
            told.remember(row.account_id, row.id, "created", actor)
            told.announce(row.account_id, "customer.created", row.id, _shown(row))
        elif isinstance(row, Order):
            told.announce(row.account_id, "order.created", row.customer_id or row.id, _shown(row))
    for row in session.dirty:
        if isinstance(row, Customer):
            _customer_changed(row, told, actor)
        elif isinstance(row, User) and row.account_id is not None:
            _user_changed(session, row, marks.get((User, row.id)), told, actor)
        elif isinstance(row, Order) and (changed := _changed(row)):
            key = _before(row, "customer_id") if "customer_id" in changed else row.customer_id
            told.announce(row.account_id, "order.updated", key or row.id, _shown(row))
    for row in session.deleted:
        if isinstance(row, Customer):
            what = marks.get((Customer, row.id), "deleted")
            told.remember(row.account_id, row.id, what, actor)
            told.announce(row.account_id, "customer.deleted", row.id, {"id": str(row.id), "type": "Customer"})
        elif isinstance(row, Order):
            key = row.customer_id or _before(row, "customer_id") or row.id
            told.announce(row.account_id, "order.deleted", key, {"id": str(row.id), "type": "Order"})
    _write(session, told)


# A status change is its own event, not an update.
def _transition(old: str | None, new: str) -> str | None:
    if new == "suspended":
        return "suspended"
    if old == "suspended":
        return "reactivated"
    if old == "guest" and new == "registered":
        return "registered"
    return None


def _customer_changed(customer: Customer, told: _Told, actor: actors.Actor) -> None:
    changed = _changed(customer)
    account_id, data = customer.account_id, _shown(customer)
    if "status" in changed and (what := _transition(_before(customer, "status"), customer.status)):
        told.remember(account_id, customer.id, what, actor)
        told.announce(account_id, f"customer.{what}", customer.id, data)
        changed.discard("status")
    if not changed:
        return
    if "email" in changed and customer.user_id is None:  # a user's new email is told with the user
        told.remember(account_id, customer.id, "email_changed", actor)
    if fields := sorted(changed - {"email"}):
        told.remember(account_id, customer.id, "updated", actor, {"fields": fields})
    told.announce(account_id, "customer.updated", customer.id, data)


def _user_changed(session: Session, user: User, mark_: str | None, told: _Told, actor: actors.Actor) -> None:
    said = []
    if "email" in _changed(user):
        said.append(("email_changed", "user.email_changed"))
    if mark_ in ("password_changed", "password_reset"):
        said.append((mark_, "user.password_changed"))
    if not said:
        return
    customer_id = session.connection().scalar(select(Customer.id).where(Customer.user_id == user.id))
    if customer_id is None:
        return  # a staff user: the history and the events are customers'
    for what, event_type in said:
        told.remember(user.account_id, customer_id, what, actor)
        told.announce(user.account_id, event_type, customer_id, _shown(user))


def _changed(row) -> set[str]:
    """The names of row's columns the flush changed, bookkeeping aside."""
    state = inspect(row)
    return {
        attr.key
        for attr in state.mapper.column_attrs
        if attr.key not in _UNTOLD and state.attrs[attr.key].history.has_changes()
    }


def _before(row, key: str):
    deleted = inspect(row).attrs[key].history.deleted
    return deleted[0] if deleted else None


def _shown(row) -> dict:
    shape = _SHAPES.get(type(row))
    if shape is None:  # the API registers every shape at start; a bare model says its id
        return {"id": str(row.id), "type": type(row).__name__}
    return shape(row)


def _write(session: Session, told: _Told) -> None:
    connection = session.connection()
    if told.history:
        connection.execute(insert(CustomerEvent), told.history)
    if not told.events:
        return
    accounts = {event["account_id"] for event in told.events}
    endpoints = connection.execute(
        select(WebhookEndpoint.id, WebhookEndpoint.account_id, WebhookEndpoint.events).where(
            WebhookEndpoint.account_id.in_(accounts), WebhookEndpoint.enabled.is_(True)
        )
    ).all()
    wanted = [
        (
            event,
            [
                e.id
                for e in endpoints
                if e.account_id == event["account_id"] and _wants(e.events, event["type"])
            ],
        )
        for event in told.events
    ]
    wanted = [(event, ids) for event, ids in wanted if ids]
    if not wanted:
        return
    now, retry_for = utcnow(), webhooks.retry_period()
    rows = [_event_row(event, now) for event, _ in wanted]
    ids = connection.execute(
        insert(WebhookEvent).returning(WebhookEvent.id, sort_by_parameter_order=True), rows
    ).scalars()
    deliveries = [
        {
            "id": uuid.uuid4(),
            "endpoint_id": endpoint_id,
            "event_id": event_id,
            "ordering_key": event["ordering_key"],
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "give_up_at": now + retry_for,
            "inserted_at": now,
            "updated_at": now,
        }
        for event_id, (event, endpoint_ids) in zip(ids, wanted, strict=True)
        for endpoint_id in endpoint_ids
    ]
    connection.execute(insert(WebhookDelivery), deliveries)


def _wants(events: list[str], event_type: str) -> bool:
    return "*" in events or event_type in events


def _event_row(event: dict, now: datetime) -> dict:
    return {
        "message_id": f"msg_{uuid.uuid4().hex}",
        "account_id": event["account_id"],
        "type": event["type"],
        "occurred_at": now,
        "payload": {
            "type": event["type"],
            "timestamp": now.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "data": event["data"],
        },
    }


event.listen(Session, "after_flush", _after_flush)
