"""Everything held about one customer, for its own export (API.md 10, docs/decisions.md).

The rows are gathered here and written by the face through allowlists of fields, so no hash
(password, refresh token, one-time token) can reach the file. The email history is what the
database keeps of the mail sent to the customer: the one-time tokens' records (purpose, the
address sent to, when, until when, when used), which live until they are used, replaced by a
newer one or purged by housekeeping; the pending email is on the user. Mail itself is not
stored, so a notice (a changed password) leaves no row.
"""

from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import selectinload

from freshcom_customers.extensions import db
from freshcom_customers.models import (
    Address,
    Customer,
    CustomerEvent,
    LoginSession,
    OneTimeToken,
    Order,
    Passkey,
    User,
)
from freshcom_customers.observability import security_events


@dataclass(frozen=True)
class CustomerData:
    """A customer's rows, each part in the order it happened."""

    customer: Customer
    user: User | None
    addresses: list[Address]
    orders: list[Order]
    sessions: list[LoginSession]
    passkeys: list[Passkey]
    emails: list[OneTimeToken]
    history: list[CustomerEvent]


def export_customer_data(customer: Customer) -> CustomerData:
    """Gather every row held about the customer; record the export, by ids only."""
    data = CustomerData(
        customer=customer,
        user=customer.user,
        addresses=_rows(Address, Address.customer_id == customer.id),
        orders=_rows(Order, Order.customer_id == customer.id),
        sessions=_sessions(customer),
        passkeys=_rows(Passkey, Passkey.user_id == customer.user_id) if customer.user_id else [],
        # Only what was mailed: a texted code or a WebAuthn challenge has no address.
        emails=_rows(OneTimeToken, _owned_by(OneTimeToken, customer) & OneTimeToken.email.is_not(None)),
        history=db.session.scalars(
            select(CustomerEvent).where(CustomerEvent.customer_id == customer.id).order_by(CustomerEvent.id)
        ).all(),
    )
    security_events.record(
        "customer_data_exported",
        account_id=str(customer.account_id),
        customer_id=str(customer.id),
        user_id=str(customer.user_id) if customer.user_id else None,
    )
    return data


def _owned_by(model, customer: Customer):
    """Rows of the customer, or of its user (sessions and one-time tokens may belong to either)."""
    owners = [model.customer_id == customer.id]
    if customer.user_id is not None:
        owners.append(model.user_id == customer.user_id)
    return or_(*owners)


def _rows(model, condition) -> list:
    return db.session.scalars(select(model).where(condition).order_by(model.inserted_at, model.id)).all()


def _sessions(customer: Customer) -> list[LoginSession]:
    query = (
        select(LoginSession)
        .where(_owned_by(LoginSession, customer))
        .options(selectinload(LoginSession.client))
        .order_by(LoginSession.created_at, LoginSession.id)
    )
    return db.session.scalars(query).all()
