"""User primitives: creation, authentication, roles, suspension, sessions and passwords.

Standard users are staff (through memberships); managed users belong to one account. Who may
create or change which user through the API is services/user_management.py; a customer's
user is kept in step with its customer by services/customers.py.
"""

import uuid
from contextlib import contextmanager

from sqlalchemy import select, update

from freshcom_customers import identifiers
from freshcom_customers.errors import InvalidCredentials, Taken, WrongPassword, invalid
from freshcom_customers.extensions import db
from freshcom_customers.models import Account, AccountMembership, LoginSession, RefreshToken, User
from freshcom_customers.models.base import utcnow
from freshcom_customers.observability import security_events
from freshcom_customers.services import changes, mail, one_time_tokens, passwords
from freshcom_customers.services.database import flush, get_in_account

USER_STATUSES = ("active", "suspended")
# Both columns hold 254 characters, and NFKC or case folding can lengthen a value ("ß" → "ss").
_STORED_LENGTH = User.__table__.c.username.type.length


def canonical_username(value: str) -> str:
    """The username as it is stored and compared: its canonical form (freshcom_customers/identifiers.py)."""
    username = identifiers.canonical(value)
    _check_stored_length("username", username)
    return username


def email_address(value: str | None) -> str | None:
    """The email as it is stored and mail is sent to (NFKC, lower case, trimmed); None when blank."""
    address = identifiers.email_address(value) or None
    _check_stored_length("email", address, identifiers.canonical(address))
    return address


def username_was_email(user: User, email: str | None) -> bool:
    """Whether the user's username is this email, as people read them (the default username)."""
    return email is not None and identifiers.canonical(user.username) == identifiers.canonical(email)


def _check_stored_length(field: str, *values: str | None) -> None:
    if any(value is not None and len(value) > _STORED_LENGTH for value in values):
        title = f"{field.capitalize()} must be at most {_STORED_LENGTH} characters once normalised."
        raise invalid(field, "length", title)


def create_standard_user(email: str, password: str, *, default_account: Account) -> User:
    passwords.check_policy(password)
    user = User(
        username=canonical_username(email),
        email=email_address(email),
        password_hash=passwords.hash_password(password),
        default_account=default_account,
    )
    db.session.add(user)
    return user


def create_managed_user(
    account: Account,
    *,
    username: str,
    password: str | None,
    role: str,
    password_hash: str | None = None,
    **profile,
) -> User:
    """Add a managed user; password_hash, a hash the CryptContext verifies, is for imports.

    With neither, the user has no password yet: no login works until it sets one (an invitation).
    """
    if password is not None:
        passwords.check_policy(password)
        password_hash = passwords.hash_password(password)
    elif password_hash is not None:
        passwords.check_hash(password_hash)
    user = User(
        account=account,
        username=canonical_username(username),
        email=email_address(profile.pop("email", None)),
        password_hash=password_hash,
        role=role,
        **profile,
    )
    db.session.add(user)
    return user


def authenticate(account: Account | None, username: str, password: str) -> User:
    """Return the active user with these credentials: managed in account, or standard if None.

    Every failure is the same InvalidCredentials, and an unknown username costs one hash
    verify like a wrong password does.
    """
    user = user_named(account, username)
    if user is None:
        passwords.dummy_verify()
        raise InvalidCredentials()
    ok, new_hash = passwords.verify(password, user.password_hash)
    if not ok or not user.is_active:
        raise InvalidCredentials()
    if new_hash:
        user.password_hash = new_hash
    return user


def user_named(account: Account | None, username: str) -> User | None:
    """The managed user of account (a standard user when None) with this username, as people
    read it; None if none."""
    return db.session.scalar(
        select(User).where(
            User.username == identifiers.canonical(username),
            User.account_id == account.id if account else User.account_id.is_(None),
        )
    )


def username_taken(account_id: uuid.UUID | None, username: str, *, other_than: User | None = None) -> bool:
    """Whether another user of the account (None: a standard user) has this username, as people read it."""
    query = select(User.id).where(
        User.username == identifiers.canonical(username),
        User.account_id == account_id if account_id else User.account_id.is_(None),
    )
    if other_than is not None:
        query = query.where(User.id != other_than.id)
    return db.session.scalar(query) is not None


def change_email(user: User, address: str | None) -> None:
    """Set a staff or standard user's email; a username that was the email follows it."""
    old_email = user.email
    user.email = email_address(address)
    if user.email != old_email:
        mark_email_unverified(user)
        user.pending_email = None  # a change that waited for its link is overtaken
    if user.email and username_was_email(user, old_email):
        user.username = canonical_username(user.email)


def verify_password(user: User, password: str | None) -> bool:
    """Whether password is the user's current one (a user without a password has none to give)."""
    return bool(password) and passwords.verify(password, user.password_hash)[0]


def mark_email_verified(user: User) -> None:
    """The user proved it receives mail at its address."""
    user.email_verified, user.email_verified_at = True, utcnow()


def role_in(user: User, account: Account) -> str | None:
    """The user's role in account (or in the live account of a test twin), None if none."""
    if user.is_managed:
        return user.role if user.account_id in (account.id, account.live_account_id) else None
    return db.session.scalar(
        select(AccountMembership.role).where(
            AccountMembership.user_id == user.id,
            AccountMembership.account_id == account.live_id,
        )
    )


def suspend(user: User) -> None:
    """Lock the user out now: refresh tokens revoked, access tokens dead on the next request."""
    user.status = "suspended"
    revoke_sessions(user)
    security_events.record("user_suspended", **security_events.user_fields(user))


def reactivate(user: User) -> None:
    """Let the user log in again; tokens from before the suspension stay dead."""
    user.status = "active"


def revoke_sessions(user: User) -> None:
    """Revoke every refresh token of the user and invalidate their access tokens."""
    user.token_generation += 1
    revoke_refresh_tokens(user)


def get_managed_user(account: Account, user_id) -> User:
    """The managed user of account with this id; NotFound for standard users and other accounts'."""
    return get_in_account(User, account, user_id, "user")


def change_password(
    user: User,
    current_password: str | None,
    new_password: str,
    *,
    keep_family: uuid.UUID | None = None,
    stepped_up: bool = False,
) -> None:
    """Set a new password after checking the current one; revoke every other refresh token family.

    keep_family, the caller's session, stays; the other families' access tokens die with
    them (they carry their family). Without keep_family every session ends. stepped_up: the
    caller's session proved a second factor minutes ago, which stands for the current password.
    """
    if not stepped_up and not verify_password(user, current_password):
        raise WrongPassword()
    passwords.check_policy(new_password)
    user.password_hash = passwords.hash_password(new_password)
    changes.mark(db.session, user, "password_changed")
    revoke_refresh_tokens(user, except_family=keep_family)
    one_time_tokens.discard("password_reset", user=user)  # a reset link must not undo it
    tell_password_changed(user, how="changed")


def tell_password_changed(user: User, *, how: str) -> None:
    """Tell the user's address that its password was changed or reset: if it was not them, they know."""
    if user.email:
        mail.send(
            "password_changed_notice", user.email, account=user.account, username=user.username, how=how
        )


# What a second_factor_notice calls each method: "a login now needs <factor> after the password".
FACTORS = {
    "tfa_email": "a code sent by email",
    "tfa_sms": "a code sent by SMS",
    "tfa_totp": "a code from an authenticator app",
}


def tell_second_factor_changed(
    user: User, change: str, *, method: str | None = None, name: str | None = None
):
    """Tell the user's address that a second factor was turned on or off, or a passkey added or
    removed (ASVS 5.0 6.3.6): if it was not them, they know.

    change is enabled (with method), disabled, passkey_added or passkey_removed (with name).
    """
    if user.email:
        mail.send(
            "second_factor_notice",
            user.email,
            account=user.account,
            username=user.username,
            change=change,
            factor=FACTORS.get(method, ""),
            name=name or "",
        )


def revoke_refresh_tokens(user: User, *, except_family: uuid.UUID | None = None) -> None:
    """Revoke every refresh token of the user, in every family (but except_family), live and test.

    Their login sessions end with them, Chec ones too, so the user's list of sessions
    (services/sessions) stays true and its Chec JWTs die as well.
    """
    # Flush first, through flush(): the UPDATEs would autoflush pending changes anyway, and
    # a unique violation among them (a taken email in the same request) must become Taken.
    flush()
    now = utcnow()
    tokens = update(RefreshToken).where(RefreshToken.user_id == user.id, RefreshToken.revoked_at.is_(None))
    ended = update(LoginSession).where(LoginSession.user_id == user.id, LoginSession.ended_at.is_(None))
    if except_family is not None:
        tokens = tokens.where(RefreshToken.family_id != except_family)
        ended = ended.where(LoginSession.id != except_family)
    for statement in (tokens.values(revoked_at=now), ended.values(ended_at=now)):
        db.session.execute(statement.execution_options(synchronize_session=False))


def mark_email_unverified(user: User) -> None:
    """A new address is unproven until its owner follows a verification link."""
    user.email_verified = False
    user.email_verified_at = None


@contextmanager
def username_clash_on_email(attrs: dict):
    """Report a taken username on email when the client sent none: it came from the email."""
    try:
        yield
    except Taken as e:
        if e.errors[0].field == "username" and not attrs.get("username"):
            raise Taken("email") from e
        raise
