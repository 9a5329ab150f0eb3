"""Returning guests: registering with a guest customer's email, proven by a link sent to it (API.md 9).

A guest who bought before and registers later keeps its customer: same id, same orders. But
whoever registers chooses the password, so the guest's email must prove it first: the
registration is kept, hashed, on a one-time token mailed to that address, and nothing else
changes until the link is used. Someone who registers another person's email only sends that
person an email.
"""

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select

from freshcom_customers import identifiers
from freshcom_customers.errors import NotFound, Taken, invalid
from freshcom_customers.extensions import db
from freshcom_customers.models import Account, Customer
from freshcom_customers.services import customers, mail, one_time_tokens, passwords, users

PURPOSE = "registration_confirmation"
LIFETIME = timedelta(hours=24)
# What the registration brings to the guest: the person's own profile. The merchant's fields
# (code, label, caption, description, custom data) stay as the guest had them.
CARRIED_FIELDS = tuple(field for field in customers.PROFILE_FIELDS if field != "email")


@dataclass(frozen=True)
class PendingRegistration:
    """A confirmation sent: its id (the one-time token's, never the customer's) and where it went."""

    id: uuid.UUID
    email: str


def register(account: Account, attrs: dict) -> Customer | PendingRegistration:
    """A guest token's POST /v1/customers: a new customer, or, on a guest's email, a confirmation."""
    guest = None
    if attrs.get("status") == "registered" and attrs.get("email"):
        guest = _guest_with_email(account, attrs["email"])
    if guest is None:
        return customers.create_customer(account, attrs, by_guest=True)
    return request_confirmation(guest, attrs)


def request_confirmation(guest: Customer, attrs: dict) -> PendingRegistration:
    """Check the registration as if it were made now, keep it on a token, and mail the link to the guest."""
    if guest.status != "guest":
        raise invalid("status", "invalid", "Only a guest customer can be registered this way.")
    if not guest.email:
        raise invalid("email", "required", "A guest without an email cannot register itself; staff can.")
    if "email" in attrs and identifiers.canonical(attrs["email"] or "") != guest.email_key:
        raise invalid("email", "invalid", "A guest registers with the email it bought with.")
    account = db.session.get(Account, guest.account_id)
    _check_registration(account, guest, attrs)
    payload = {
        "password_hash": passwords.hash_password(attrs["password"]),
        "username": users.canonical_username(attrs["username"]) if attrs.get("username") else None,
        "profile": {field: attrs[field] for field in CARRIED_FIELDS if field in attrs},
    }
    token_id = uuid.uuid4()
    token = one_time_tokens.issue(
        PURPOSE, customer=guest, email=guest.email, lifetime=LIFETIME, payload=payload, token_id=token_id
    )
    mail.send(
        "registration_confirmation",
        guest.email,
        account=account,
        link=mail.storefront_link("/confirm-registration", token=token),
        email=guest.email,
    )
    return PendingRegistration(token_id, guest.email)


def confirm(account: Account, token_value: str) -> Customer:
    """Register the token's guest with the registration it carries; its email is now verified."""
    try:
        token = one_time_tokens.consume(PURPOSE, token_value)
    except NotFound as e:
        raise _invalid_token() from e
    guest = token.customer
    # The guest must still be the one the link was mailed to: same account, a guest, same address.
    if (
        guest is None
        or guest.account_id != account.id
        or guest.status != "guest"
        or guest.email != token.email
    ):
        raise _invalid_token()
    registration = token.payload
    changes = {
        **registration["profile"],
        "status": "registered",
        "password_hash": registration["password_hash"],
        "username": registration["username"],
    }
    try:
        customers.update_customer(guest, changes)
    except Taken as e:  # someone took the username since the link was sent
        raise invalid(
            "token", "taken", "The username of this registration has been taken since; register again."
        ) from e
    customers.mark_email_verified(guest.user)
    return guest


def _guest_with_email(account: Account, email: str) -> Customer | None:
    return db.session.scalar(
        select(Customer).where(
            Customer.account_id == account.id,
            Customer.email_key == identifiers.canonical(email),
            Customer.status == "guest",
        )
    )


def _check_registration(account: Account, guest: Customer, attrs: dict) -> None:
    """What the registration would be refused for now is refused before any email leaves."""
    if not attrs.get("password"):
        raise invalid("password", "required", "Password is required to register.")
    passwords.check_policy(attrs["password"])
    if users.username_taken(account.id, attrs.get("username") or guest.email):
        raise Taken("username" if attrs.get("username") else "email")


def _invalid_token():
    return invalid("token", "invalid", "The confirmation link is invalid, used or expired.")
