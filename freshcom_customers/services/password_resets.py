"""Password reset by email: a single-use link valid for one hour, then a new password."""

from datetime import timedelta

from sqlalchemy import select

from freshcom_customers import identifiers
from freshcom_customers.errors import FieldError, NotFound, ValidationFailed
from freshcom_customers.extensions import db
from freshcom_customers.models import Account, User
from freshcom_customers.services import (
    changes,
    customers,
    invitations,
    mail,
    one_time_tokens,
    passwords,
    users,
)

PURPOSE = "password_reset"
LIFETIME = timedelta(hours=1)


def request_reset(account: Account | None, username: str) -> None:
    """Email a reset link to the active user with this username: managed in account, or standard.

    The username matches as people read it (its canonical form); the link goes to the address
    the user stored, never to the look-alike that was typed.

    Says nothing about whether the user exists: an unknown one gets no email and no error,
    and costs the same: its transaction writes a token and deletes it, and its email is
    rendered and sent nowhere; the email itself leaves after the response (services.mail).
    """
    user = db.session.scalar(
        select(User).where(
            User.username == identifiers.canonical(username),
            User.account_id == account.id if account else User.account_id.is_(None),
        )
    )
    known = user is not None and user.is_active and bool(user.email)
    if known:
        token = one_time_tokens.issue(PURPOSE, user=user, email=user.email, lifetime=LIFETIME)
    else:
        token = one_time_tokens.issue_for_no_one(PURPOSE)
    mail.send(
        "password_reset",
        user.email if known else username,
        account=account,
        link=mail.storefront_link("/reset-password", token=token),
        username=user.username if known else username,
        deliver=known,
    )


def reset_password(token_value: str | None, new_password: str) -> User:
    """Set the password of the reset token's user and end all of the user's sessions.

    A bad token and a bad password are reported together; either one leaves the token
    unused, since the request's transaction is rolled back.
    """
    problems, user = [], None
    try:
        user = _user_of_token(token_value)
    except NotFound:
        code = "invalid" if token_value else "required"
        problems.append(FieldError("reset_token", code, "The reset link is invalid, used or expired."))
    try:
        passwords.check_policy(new_password, field="value")
    except ValidationFailed as e:
        problems.extend(e.errors)
    if problems:
        raise ValidationFailed(*problems)
    invited = user.password_hash is None
    user.password_hash = passwords.hash_password(new_password)
    changes.mark(db.session, user, "password_reset")
    users.revoke_sessions(user)
    for purpose in (PURPOSE, invitations.PURPOSE):  # the other links would set it again
        one_time_tokens.discard(purpose, user=user)
    if invited:  # the first password, chosen through a link to the address: it is proven
        customers.mark_email_verified(user)
    else:
        users.tell_password_changed(user, how="reset")
    return user


def _user_of_token(token_value: str | None) -> User:
    """The user of a reset link, or of an invitation (services.invitations), which is used the same way."""
    if not token_value:
        raise NotFound("one-time token")
    token = one_time_tokens.consume((PURPOSE, invitations.PURPOSE), token_value)
    user = token.user
    # The link was sent to an address; once the user's email changes, it no longer counts.
    if user is None or not user.is_active or user.email != token.email:
        raise NotFound("one-time token")
    return user
