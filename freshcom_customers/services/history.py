"""A customer's history (API.md 12): what happened to it, newest first, and who did it.

Changes of the customer's rows are told by services/changes.py in their own flush. What leaves
no row changed is recorded here: a login, a failed login, sessions ended.

A failed login is written whether or not the username names a customer: one INSERT ... SELECT
finds the customer, or NULL, so an unknown username costs what a known one does (the same
statement, a row written, a commit), and the answer's timing tells nothing. Housekeeping
deletes the rows of no customer after the retention. The row survives the request, which
fails: the request's session is rolled back first, so nothing else it held is committed.

No row holds personal data but the network a login came from (the /24 or /48, as sessions
keep it), which an erasure clears; the rows themselves stay, so staff can still see what
happened to an erased customer.
"""

import uuid

from sqlalchemy import insert, literal, select, update

from freshcom_customers import identifiers
from freshcom_customers.errors import NotFound
from freshcom_customers.extensions import db
from freshcom_customers.models import Account, Customer, CustomerEvent, User
from freshcom_customers.models.base import utcnow
from freshcom_customers.services import actors, database
from freshcom_customers.services.database import as_uuid


def record(
    customer: Customer,
    what: str,
    *,
    actor: actors.Actor | None = None,
    ip_address: str | None = None,
    details: dict | None = None,
) -> None:
    """Add what happened to customer (logged_in, sessions_ended) to its history; actor: the current one's."""
    line = line_of(customer.account_id, customer.id, what, actor or actors.current(), ip_address, details)
    db.session.add(CustomerEvent(**line))


def line_of(account_id, customer_id, what: str, actor: actors.Actor, ip_address=None, details=None) -> dict:
    """One history row's values (services/changes.py inserts them in bulk, record() as a model)."""
    return {
        "account_id": account_id,
        "customer_id": customer_id,
        "event": what,
        "actor": actor.kind,
        "actor_id": actor.id,
        "ip_address": ip_address,
        "details": details,
        "occurred_at": utcnow(),
    }


def login_failed(account_id: str | None, username: str, ip_address: str | None, method: str) -> None:
    """Record a failed login of the account's user named username, known or not, and commit it."""
    db.session.rollback()
    customer = (
        select(Customer.id)
        .join(User, User.id == Customer.user_id)
        .where(User.account_id == as_uuid(account_id), User.username == identifiers.canonical(username))
        .scalar_subquery()
    )
    db.session.execute(
        insert(CustomerEvent).from_select(
            ["account_id", "customer_id", "event", "actor", "ip_address", "details", "occurred_at"],
            select(
                literal(as_uuid(account_id), CustomerEvent.account_id.type),
                customer,
                literal("login_failed"),
                literal("anonymous"),
                literal(ip_address, CustomerEvent.ip_address.type),
                literal({"method": method}, CustomerEvent.details.type),
                literal(utcnow(), CustomerEvent.occurred_at.type),
            ),
        )
    )
    db.session.commit()


def of_customer(account: Account, customer_id, *, page: int, size: int):
    """The customer's history, newest first: (rows, total). An erased customer's stays readable;
    NotFound when the account has neither the customer nor any history of it."""
    key = as_uuid(customer_id)
    if key is None:
        raise NotFound("customer")
    query = select(CustomerEvent).where(
        CustomerEvent.account_id == account.id, CustomerEvent.customer_id == key
    )
    total = database.count(query)
    customer = db.session.get(Customer, key) if total == 0 else None
    if total == 0 and (customer is None or customer.account_id != account.id):
        raise NotFound("customer")
    return database.one_page(query, CustomerEvent.id.desc(), page=page, size=size), total


def forget_networks(customer_id: uuid.UUID) -> None:
    """Clear the networks of the customer's history (an erasure); the rows stay."""
    db.session.execute(
        update(CustomerEvent)
        .where(CustomerEvent.customer_id == customer_id, CustomerEvent.ip_address.is_not(None))
        .values(ip_address=None)
        .execution_options(synchronize_session=False)
    )
