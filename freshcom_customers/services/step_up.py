"""The proof a signed-in user gives before a sensitive change (API.md 11, "Step-up").

Turning two-factor off, changing the second factor, removing a passkey, changing the email or
the password needs the current password, or a second factor (a code, a recovery code, a
passkey) proven in the same session within WINDOW. Adding a passkey or an authenticator app
also accepts a login of that session within WINDOW: the password was given moments ago.

The session is the caller's refresh-token family (its access token carries it); a session
that is not the user's, or has ended, proves nothing.
"""

import uuid
from datetime import timedelta

from sqlalchemy import select

from freshcom_customers.errors import WrongPassword
from freshcom_customers.extensions import db
from freshcom_customers.models import LoginSession, User
from freshcom_customers.models.base import utcnow
from freshcom_customers.services import users

WINDOW = timedelta(minutes=5)


def require(
    user: User, current_password: str | None, session_id: uuid.UUID | None, *, fresh_login: bool = False
) -> None:
    """Pass when the session proved a second factor (or, with fresh_login, logged in) within
    WINDOW, or when current_password is the user's; WrongPassword if not."""
    if recent(user, session_id, fresh_login=fresh_login):
        return
    if not users.verify_password(user, current_password):
        raise WrongPassword()


def recent(user: User, session_id: uuid.UUID | None, *, fresh_login: bool = False) -> bool:
    """Whether the user's live session proved a second factor (or, with fresh_login, began) in WINDOW."""
    if session_id is None:
        return False
    row = db.session.execute(
        select(LoginSession.created_at, LoginSession.second_factor_at).where(
            LoginSession.id == session_id, LoginSession.user_id == user.id, LoginSession.ended_at.is_(None)
        )
    ).first()
    if row is None:
        return False
    since = utcnow() - WINDOW
    return (row.second_factor_at is not None and row.second_factor_at > since) or (
        fresh_login and row.created_at > since
    )
