"""Email verification: a single-use link to the user's address; following it marks the address verified."""

from datetime import timedelta

from freshcom_customers.errors import NotFound, invalid
from freshcom_customers.models import User
from freshcom_customers.services import customers, email_changes, mail, one_time_tokens

PURPOSE = "email_verification"
LIFETIME = timedelta(hours=24)


def send_verification(user: User) -> None:
    """Email the user a link that proves they receive mail at their current address."""
    if not user.email:
        raise invalid("email", "required", "The user has no email address to verify.")
    token = one_time_tokens.issue(PURPOSE, user=user, email=user.email, lifetime=LIFETIME)
    mail.send(
        "email_verification",
        user.email,
        account=user.account,
        link=mail.storefront_link("/verify-email", token=token),
        email=user.email,
    )


def verify_email(token_value: str) -> User | None:
    """Mark the token's user, and its customer, verified, if the address is still the one it went to.

    A link sent to a new address makes it the email of the user (its pending_email) or of the
    guest that asked for it (services.email_changes).
    """
    try:
        token = one_time_tokens.consume(PURPOSE, token_value)
    except NotFound as e:
        raise _invalid_token() from e
    user, guest = token.user, token.customer
    if user is None and guest is not None and guest.status == "guest":
        email_changes.apply_to_guest(guest, token.email)
        return None
    if user is not None and user.pending_email is not None and token.email == user.pending_email:
        email_changes.apply(user)
        return user
    if user is None or user.email != token.email:
        raise _invalid_token()
    customers.mark_email_verified(user)  # and its customer, whose email is the user's
    return user


def _invalid_token():
    return invalid("token", "invalid", "The verification link is invalid, used or expired.")
