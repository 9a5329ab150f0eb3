"""Invitations (API.md 9): a customer staff created, or imported, without a password chooses one.

The link goes to the customer's address and works for seven days, once; the newest one
counts. It is used like a reset link (PATCH /v1/password?resetToken=), which sets the first
password and, as the link proved the address, marks it verified.
"""

from collections.abc import Iterator
from datetime import timedelta

from sqlalchemy import func, select

from freshcom_customers.errors import invalid
from freshcom_customers.extensions import db
from freshcom_customers.models import Account, Customer, User
from freshcom_customers.services import mail, one_time_tokens

PURPOSE = "invitation"
LIFETIME = timedelta(days=7)


def invite(customer: Customer) -> None:
    """Email the registered customer, who has no password yet, a link to choose one."""
    user = customer.user
    if customer.status != "registered" or user is None:
        raise invalid("status", "invalid", "Only a registered customer can be invited.")
    if user.password_hash is not None:
        title = "This customer has a password already; a password reset is what it needs."
        raise invalid("password", "invalid", title)
    token = one_time_tokens.issue(PURPOSE, user=user, email=user.email, lifetime=LIFETIME)
    mail.send(
        "invitation",
        user.email,
        account=db.session.get(Account, customer.account_id),
        link=mail.storefront_link("/set-password", token=token),
        email=user.email,
        username=user.username,
    )


def without_password(account: Account, batch_size: int = 500) -> Iterator[list[Customer]]:
    """The account's registered customers whose user has no password yet, a batch at a time, by id.

    Each batch starts after the last id of the one before, so the caller may commit in between.
    """
    last_id = None
    while True:
        query = _without_password(select(Customer), account).order_by(Customer.id).limit(batch_size)
        if last_id is not None:
            query = query.where(Customer.id > last_id)
        batch = db.session.scalars(query).all()
        if not batch:
            return
        yield batch
        last_id = batch[-1].id


def count_without_password(account: Account) -> int:
    return db.session.scalar(_without_password(select(func.count(Customer.id)), account))


def _without_password(query, account: Account):
    return (
        query.join(User, Customer.user_id == User.id)
        .where(Customer.account_id == account.id, Customer.status == "registered")
        .where(User.password_hash.is_(None))
    )
