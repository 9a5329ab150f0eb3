"""What a transaction changed, told in it to the customer's history and to the webhook outbox
(API.md 12).

A listener on every session's after_flush reads the customers, users and orders the flush
wrote, with the history of their attributes, and inserts history rows, webhook events and one
delivery per endpoint that wants each event, through the flush's own connection. A change
that rolls back (a request that fails, an import row refused in its savepoint) takes its
events with it; one that commits cannot lose them. Every path that changes a customer (both
faces, the CLI, the import) is covered without calling anything.

A service may flush one change in steps (a registration, then its email verified). What a
transaction told is remembered until it ends (_Transaction): a later flush refreshes the
event that already shows the resource instead of adding one, merges the customer's "updated"
line, and drops an update that came to nothing. A status change (registered, suspended,
reactivated) stays its own event.

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

from sqlalchemy import delete, insert, inspect, select, update
from sqlalchemy import event as sqlalchemy_event
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
from freshcom_customers.services import actors, history, webhooks

_MARKS = "changes.marks"
_TRANSACTION = "changes.transaction"
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
class _Transaction:
    """What the transaction has told so far: a change its services flush in steps (a
    registration, then its email verified) is told once, as it stands at the end."""

    created: set = field(default_factory=set)  # customers created in it
    originals: dict = field(default_factory=dict)  # customer id -> {field: value before it}
    updated_rows: dict = field(default_factory=dict)  # customer id -> its "updated" row, by whom
    carriers: dict = field(default_factory=dict)  # resource id -> (event id, type, timestamp)
    updates: dict = field(default_factory=dict)  # customer id -> its customer.updated event id


@dataclass
class _Told:
    """What one flush tells: new history rows and events, and changes to those told before."""

    history: list[dict] = field(default_factory=list)
    history_fields: dict = field(default_factory=dict)  # "updated" row id -> fields, [] to drop
    events: list[dict] = field(default_factory=list)
    refreshed: dict = field(default_factory=dict)  # event id -> the update it now shows
    dropped: set = field(default_factory=set)  # event ids

    def remember(self, account_id, customer_id, what: str, actor: actors.Actor, details=None) -> None:
        self.history.append(history.line_of(account_id, customer_id, what, actor, details=details))

    def announce(self, account_id, event_type: str, ordering_key, data: dict) -> None:
        self.events.append(
            {"account_id": account_id, "type": event_type, "ordering_key": str(ordering_key), "data": data}
        )

    def carried(self, resource_id: str) -> dict | None:
        """The event of this flush that already shows the resource, if any."""
        return next((e for e in reversed(self.events) if e["data"].get("id") == resource_id), None)


def _transaction(session: Session) -> _Transaction:
    return session.info.setdefault(_TRANSACTION, _Transaction())


def _forget(session: Session, *_) -> None:
    session.info.pop(_TRANSACTION, None)


def _after_flush(session: Session, _context) -> None:
    # session.dirty walks the identity map: each set is read once.
    new, dirty, deleted = list(session.new), list(session.dirty), list(session.deleted)
    if not any(isinstance(row, (Customer, User, Order)) for row in (*new, *dirty, *deleted)):
        return
    marks = session.info.get(_MARKS, {})  # each one taken by the flush of its row
    told, tx, actor = _Told(), _transaction(session), actors.current(session)
    for row in new:
        if isinstance(row, Customer):
            tx.created.add(row.id)
            told.remember(row.account_id, row.id, "created", actor)
            told.announce(row.account_id, "customer.created", row.id, _shown(row))
        elif isinstance(row, Order):
            told.announce(row.account_id, "order.created", row.customer_id or row.id, _shown(row))
    for row in dirty:
        if isinstance(row, Customer):
            _customer_changed(row, told, tx, actor)
        elif isinstance(row, User) and row.account_id is not None:
            _user_changed(session, row, marks.pop((User, row.id), None), told, actor)
        elif isinstance(row, Order) and (changed := _changed(row)):
            key = _before(row, "customer_id") if "customer_id" in changed else row.customer_id
            _updated(told, tx, row.account_id, "order.updated", key or row.id, _shown(row), True)
    for row in deleted:
        if isinstance(row, Customer):
            what = marks.pop((Customer, row.id), "deleted")
            told.remember(row.account_id, row.id, what, actor)
            told.announce(row.account_id, "customer.deleted", row.id, {"id": str(row.id), "type": "Customer"})
        elif isinstance(row, Order):
            key = row.customer_id or _before(row, "customer_id") or row.id
            told.announce(row.account_id, "order.deleted", key, {"id": str(row.id), "type": "Order"})
    _write(session, told, tx)


# A status change is its own event, not an update.
def _transition(old: str | None, new: str) -> str | None:
    if new == "suspended":
        return "suspended"
    if old == "suspended":
        return "reactivated"
    if old == "guest" and new == "registered":
        return "registered"
    return None


def _customer_changed(customer: Customer, told: _Told, tx: _Transaction, actor: actors.Actor) -> None:
    changed = _changed(customer)
    if not changed:
        return
    account_id, data = customer.account_id, _shown(customer)
    if "status" in changed and (what := _transition(_before(customer, "status"), customer.status)):
        told.remember(account_id, customer.id, what, actor)
        told.announce(account_id, f"customer.{what}", customer.id, data)
    changed.discard("status")
    if customer.id in tx.created:  # still being made: its customer.created shows it
        _updated(told, tx, account_id, "customer.updated", customer.id, data, False)
        return
    originals = tx.originals.setdefault(customer.id, {})
    for name in changed:
        originals.setdefault(name, _before(customer, name))
    net = {name for name, value in originals.items() if getattr(customer, name) != value}
    if "email" in changed and customer.user_id is None:  # a user's new email is told with the user
        told.remember(account_id, customer.id, "email_changed", actor)
    row_id, by = tx.updated_rows.get(customer.id, (None, None))
    if row_id is not None and by == actor:
        told.history_fields[row_id] = sorted(net - {"email"})
    elif fields := sorted(changed - {"email"} if row_id is not None else net - {"email"}):
        told.remember(account_id, customer.id, "updated", actor, {"fields": fields})
    _updated(told, tx, account_id, "customer.updated", customer.id, data, bool(net))


def _updated(told: _Told, tx: _Transaction, account_id, event_type: str, key, data: dict, news: bool) -> None:
    """Tell that a resource changed: in the event that already shows it in this flush or
    transaction, refreshed; else in a new event_type event if news (a net change). An update
    event of this transaction that turns out to change nothing is dropped."""
    resource_id = data["id"]
    if told.carried(resource_id) is not None:
        told.carried(resource_id)["data"] = data
        return
    if resource_id in tx.carriers:
        event_id = tx.carriers[resource_id][0]
        if not news and tx.updates.get(resource_id) == event_id:
            told.dropped.add(event_id)
            del tx.carriers[resource_id], tx.updates[resource_id]
        else:
            told.refreshed[event_id] = {
                "account_id": account_id,
                "type": event_type,
                "ordering_key": str(key),
                "data": data,
            }
        return
    if news:
        told.announce(account_id, event_type, key, data)


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


def _write(session: Session, told: _Told, tx: _Transaction) -> None:
    connection = session.connection()
    _write_history(connection, told, tx)
    for event_id, event in told.refreshed.items():
        _, event_type, timestamp = tx.carriers[event["data"]["id"]]
        payload = {"type": event_type, "timestamp": timestamp, "data": event["data"]}
        refreshed = connection.execute(
            update(WebhookEvent).where(WebhookEvent.id == event_id).values(payload=payload)
        )
        if refreshed.rowcount == 0:  # gone (an erasure's, a savepoint's): told anew
            tx.carriers.pop(event["data"]["id"])
            told.events.append(event)
    if told.dropped:
        connection.execute(delete(WebhookDelivery).where(WebhookDelivery.event_id.in_(told.dropped)))
        connection.execute(delete(WebhookEvent).where(WebhookEvent.id.in_(told.dropped)))
    for event in told.events:
        if event["type"].endswith(".deleted"):
            tx.carriers.pop(event["data"]["id"], None)
    if told.events:
        _write_events(connection, told.events, tx)


def _write_history(connection, told: _Told, tx: _Transaction) -> None:
    if told.history:
        ids = connection.execute(
            insert(CustomerEvent).returning(CustomerEvent.id, sort_by_parameter_order=True), told.history
        ).scalars()
        for row_id, row in zip(ids, told.history, strict=True):
            if row["event"] == "updated":
                tx.updated_rows[row["customer_id"]] = (row_id, actors.Actor(row["actor"], row["actor_id"]))
    for row_id, fields in told.history_fields.items():
        if fields:
            details = {"fields": fields}
            connection.execute(
                update(CustomerEvent).where(CustomerEvent.id == row_id).values(details=details)
            )
        else:
            connection.execute(delete(CustomerEvent).where(CustomerEvent.id == row_id))
            tx.updated_rows = {key: value for key, value in tx.updated_rows.items() if value[0] != row_id}


def _write_events(connection, events: list[dict], tx: _Transaction) -> None:
    """Insert the events an enabled endpoint of their account wants, with one delivery each."""
    accounts = {event["account_id"] for event in events}
    endpoints = connection.execute(
        select(WebhookEndpoint.id, WebhookEndpoint.account_id, WebhookEndpoint.events).where(
            WebhookEndpoint.account_id.in_(accounts), WebhookEndpoint.enabled.is_(True)
        )
    ).all()
    wanted = []
    for event in events:
        ids = [
            e.id for e in endpoints if e.account_id == event["account_id"] and _wants(e.events, event["type"])
        ]
        if ids:
            wanted.append((event, ids))
    if not wanted:
        return
    now, retry_for = utcnow(), webhooks.retry_period()
    rows = [_event_row(event, now) for event, _ in wanted]
    event_ids = connection.execute(
        insert(WebhookEvent).returning(WebhookEvent.id, sort_by_parameter_order=True), rows
    ).scalars()
    deliveries = []
    for event_id, row, (event, endpoint_ids) in zip(event_ids, rows, wanted, strict=True):
        resource_id = event["data"]["id"]
        if not event["type"].endswith(".deleted"):
            tx.carriers[resource_id] = (event_id, event["type"], row["payload"]["timestamp"])
        if event["type"].endswith(".updated"):
            tx.updates[resource_id] = event_id
        deliveries += [
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
            for endpoint_id in endpoint_ids
        ]
    connection.execute(insert(WebhookDelivery), deliveries)


def _wants(types: list[str], event_type: str) -> bool:
    return "*" in types or event_type in types


def _event_row(event: dict, now: datetime) -> dict:
    return {
        "message_id": f"msg_{uuid.uuid4().hex}",
        "account_id": event["account_id"],
        "ordering_key": event["ordering_key"],
        "type": event["type"],
        "occurred_at": now,
        "payload": {
            "type": event["type"],
            "timestamp": now.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "data": event["data"],
        },
    }


sqlalchemy_event.listen(Session, "after_flush", _after_flush)
sqlalchemy_event.listen(Session, "after_commit", _forget)
# A savepoint's rollback too: what it told may be gone, so nothing is folded into it.
sqlalchemy_event.listen(Session, "after_soft_rollback", _forget)
