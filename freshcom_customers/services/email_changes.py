"""Email change (API.md 9): a person's own change proves the password, then the new address proves itself.

Until the link sent to the new address is used, the address waits as the user's
pending_email: the email, and a username that follows it, stay as they were, so a stolen
session cannot move an account to another mailbox by itself. When the link is used
(POST /v1/email_verifications), the change applies and the old address is told, with no link.
Staff changes apply at once (services.customers, services.user_management).
"""

from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import select

from freshcom_customers import identifiers
from freshcom_customers.errors import Taken, WrongPassword, invalid
from freshcom_customers.extensions import db
from freshcom_customers.models import Account, Customer, User
from freshcom_customers.services import customers, mail, one_time_tokens, users

# The link is a verification link of the new address, used where every such link is.
PURPOSE = "email_verification"
LIFETIME = timedelta(hours=24)


def hold_back(
    attrs: dict,
    *,
    user: User | None,
    guest: Customer | None = None,
    login_link_recent: bool | None = None,
    stepped_up: bool = False,
) -> dict:
    """A person's own update: a new email is mailed a link and waits; return the other changes.

    The person is a user, or a guest customer (on the Chec face, which logs guests in too). The
    proof is attrs' current_password (the caller counts a wrong one like a failed login:
    services.logins.Login.current_password); on the Chec face, which has no passwords,
    login_link_recent says whether its session began with a login link minutes ago;
    stepped_up, that the user's session proved a second factor minutes ago (services/step_up).
    A user's new address waits as its pending_email; a guest's, on the link alone.
    """
    if "email" not in attrs:
        return attrs
    others = {field: value for field, value in attrs.items() if field != "email"}
    address = users.email_address(attrs["email"])
    if address is None:
        return attrs  # no address to prove: the rules of the update say whether it may go
    current = user.email if user is not None else guest.email
    if identifiers.canonical(address) == identifiers.canonical(current or ""):
        if user is not None:
            user.pending_email = None  # the same address: nothing to confirm, and no change waits
        one_time_tokens.discard(PURPOSE, user=user, customer=guest)
        return others
    if login_link_recent is False:
        title = "Log in again with a login link to change your email: it proves the address for 15 minutes."
        raise invalid("email", "stale_login", title)
    proven = stepped_up or users.verify_password(user, attrs.get("current_password"))
    if login_link_recent is None and not proven:
        raise WrongPassword()
    _check_free(address, user=user, guest=guest)
    if user is not None:
        user.pending_email = address
    token = one_time_tokens.issue(PURPOSE, user=user, customer=guest, email=address, lifetime=LIFETIME)
    mail.send(
        "email_change_confirmation",
        address,
        account=_account((user or guest).account_id),
        link=mail.storefront_link("/verify-email", token=token),
        new_email=address,
    )
    return others


def apply(user: User) -> None:
    """The user's pending address proved itself: it becomes the email (and a username that followed it)."""
    old_email, new_email = user.email, user.pending_email
    user.pending_email = None
    customer = customers.of_user(user)
    with _taken_since():
        if customer is not None:
            customers.update_customer(customer, {"email": new_email})
        else:
            users.change_email(user, new_email)
    customers.mark_email_verified(user)
    _tell(old_email, new_email, user.account_id)


def apply_to_guest(guest: Customer, new_email: str) -> None:
    """A guest's new address proved itself: it becomes the guest's email."""
    old_email = guest.email
    with _taken_since():
        customers.update_customer(guest, {"email": new_email})
    guest.email_verified = True
    _tell(old_email, new_email, guest.account_id)


@contextmanager
def _taken_since():
    try:
        yield
    except Taken as e:  # someone took the address since the link was sent
        raise invalid("token", "taken", "This email has been taken since the link was sent.") from e


def _tell(old_email: str | None, new_email: str, account_id) -> None:
    """The old address hears of the change, with no link that could undo it."""
    if old_email:
        account = _account(account_id)
        mail.send("email_changed_notice", old_email, account=account, new_email_hint=hint(new_email))


def _account(account_id) -> Account | None:
    """The account an email speaks for; None for a standard (staff) user's, which speaks for the service."""
    return db.session.get(Account, account_id) if account_id else None


def hint(address: str) -> str:
    """The address as a notice shows it: enough for its owner to recognise, not to write to."""
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}•••@{domain}"


def _check_free(address: str, *, user: User | None, guest: Customer | None) -> None:
    """Refuse an address another customer of the account has, or a username that following it would take."""
    customer = guest or customers.of_user(user)
    if customer is not None:
        key = identifiers.canonical(address)
        holder = select(Customer.id).where(
            Customer.account_id == customer.account_id, Customer.id != customer.id
        )
        if db.session.scalar(holder.where(Customer.email_key == key)) is not None:
            raise Taken("email")
    following = user is not None and users.username_was_email(user, user.email)
    if following and users.username_taken(user.account_id, address, other_than=user):
        raise Taken("email")
