"""Email verification: a single-use link to the user's address; following it marks the address verified."""

from datetime import timedelta

from sqlalchemy import select

from freshcom_customers.errors import NotFound, invalid
from freshcom_customers.extensions import db
from freshcom_customers.models import Customer, User
from freshcom_customers.models.base import utcnow
from freshcom_customers.services import mail, one_time_tokens

PURPOSE = "email_verification"
LIFETIME = timedelta(hours=24)


def send_verification(user: User) -> None:
    """Email the user a link that proves they receive mail at their current address."""
    if not user.email:
        raise invalid("email", "required", "The user has no email address to verify.")
    token = one_time_tokens.issue(PURPOSE, user=user, email=user.email, lifetime=LIFETIME)
    where = f" at {user.account.name}" if user.account else ""
    mail.send_link(
        user.email,
        kind="email_verification",
        subject="Verify your email address",
        intro=f"Please confirm that {user.email} is your email address{where}.",
        action="Verify my email address",
        link=mail.storefront_link("/verify-email", token=token),
        outro="The link works once, for 24 hours. If you did not ask for it, ignore this email.",
    )


def verify_email(token_value: str) -> User:
    """Mark the token's user, and its customer, verified, if the address is still the one it went to."""
    try:
        token = one_time_tokens.consume(PURPOSE, token_value)
    except NotFound as e:
        raise _invalid_token() from e
    user = token.user
    if user is None or user.email != token.email:
        raise _invalid_token()
    user.email_verified, user.email_verified_at = True, utcnow()
    customer = db.session.scalar(select(Customer).where(Customer.user_id == user.id))
    if customer is not None and customer.email == token.email:
        customer.email_verified = True
    return user


def _invalid_token():
    return invalid("token", "invalid", "The verification link is invalid, used or expired.")
