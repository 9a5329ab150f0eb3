"""Rows for service-level tests, built directly and flushed in the test's session.

Plain functions rather than factory_boy: there are three of them, each reads top to bottom,
and they add rows to whatever session the `session` fixture has put in place (a rolled-back
transaction). They write rows as the services would leave them, without going through the
services, so a test of a rule builds its world in a line and then calls the one service it
is about. Every password is PASSWORD unless a test names another.
"""

import itertools

from freshcom_customers import identifiers
from freshcom_customers.extensions import db
from freshcom_customers.models import Account, Customer, User
from freshcom_customers.services import passwords
from freshcom_customers.services.database import flush

PASSWORD = "factory-password-1"
# A customer's status and the status of its user (a guest has none).
USER_STATUS = {"registered": "active", "suspended": "suspended"}
PROFILE_FIELDS = ("email", "phone_number", "name", "first_name", "last_name")

_numbers = itertools.count(1)


def account(name: str = "Acme", handle: str | None = None) -> Account:
    """A live account and its test twin; return the live one."""
    live = Account(name=name, handle=handle, mode="live")
    db.session.add_all([live, Account(name=name, mode="test", live_account=live)])
    flush()
    return live


def customer(of: Account, status: str = "guest", password: str = PASSWORD, **fields) -> Customer:
    """A customer of the account; a registered or suspended one has its user, in step with it."""
    if status != "guest":
        fields.setdefault("email", f"customer-{next(_numbers)}@example.test")
    row = Customer(account_id=of.id, status=status, custom_data={}, **fields)
    if status != "guest":
        profile = {field: getattr(row, field) for field in PROFILE_FIELDS}
        row.user = _managed_user(
            of, row.email, password, role="customer", status=USER_STATUS[status], **profile
        )
    db.session.add(row)
    flush()
    return row


def staff_user(of: Account, role: str = "manager", password: str = PASSWORD, **fields) -> User:
    """A managed staff user of the account, active unless fields say otherwise."""
    fields.setdefault("username", f"staff-{next(_numbers)}")
    user = _managed_user(of, fields.pop("username"), password, role=role, **fields)
    db.session.add(user)
    flush()
    return user


def _managed_user(of: Account, username: str, password: str, **fields) -> User:
    return User(
        account=of,
        username=identifiers.canonical(username),
        password_hash=passwords.hash_password(password),
        **fields,
    )
