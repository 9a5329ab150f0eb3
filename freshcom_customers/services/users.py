"""Users: creation, authentication, suspension. Standard users are staff; managed ones have one account."""

from sqlalchemy import select

from freshcom_customers.errors import InvalidCredentials
from freshcom_customers.extensions import db
from freshcom_customers.models import Account, AccountMembership, RefreshToken, User
from freshcom_customers.orm import utcnow
from freshcom_customers.services import accounts, passwords


def normalize(value: str | None) -> str | None:
    """Usernames and emails are compared trimmed and case-insensitively, so store them so."""
    return value.strip().lower() if value is not None else None


def create_standard_user(email: str, password: str, *, default_account: Account) -> User:
    passwords.check_policy(password)
    user = User(
        username=normalize(email),
        email=normalize(email),
        password_hash=passwords.hash_password(password),
        default_account=default_account,
    )
    db.session.add(user)
    return user


def create_managed_user(account: Account, *, username: str, password: str, role: str, **profile) -> User:
    passwords.check_policy(password)
    user = User(
        account=account,
        username=normalize(username),
        email=normalize(profile.pop("email", None)),
        password_hash=passwords.hash_password(password),
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
    user = db.session.scalar(
        select(User).where(
            User.username == normalize(username),
            User.account_id == account.id if account else User.account_id.is_(None),
        )
    )
    if user is None:
        passwords.dummy_verify()
        raise InvalidCredentials()
    ok, new_hash = passwords.verify(password, user.password_hash)
    if not ok or not user.is_active:
        raise InvalidCredentials()
    if new_hash:
        user.password_hash = new_hash
    return user


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


def reactivate(user: User) -> None:
    """Let the user log in again; tokens from before the suspension stay dead."""
    user.status = "active"


def revoke_sessions(user: User) -> None:
    """Revoke every refresh token of the user and invalidate their access tokens."""
    user.token_generation += 1
    db.session.execute(
        RefreshToken.__table__.update()
        .where(RefreshToken.user_id == user.id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def login(account_reference: str | None, username: str, password: str) -> tuple[User, Account]:
    """Authenticate for a token: a managed user of the referenced account, else a standard
    user for their default account. Unknown accounts fail like wrong passwords, at equal cost.
    """
    account = None
    if account_reference is not None:
        account = accounts.find_by_reference(account_reference)
        if account is None:
            passwords.dummy_verify()
            raise InvalidCredentials()
    user = authenticate(account, username, password)
    account = account or user.default_account
    if account is None:
        raise InvalidCredentials()
    return user, account
