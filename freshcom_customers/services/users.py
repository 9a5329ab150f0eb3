"""Users: creation, authentication, suspension. Standard users are staff; managed ones have one account."""

import uuid
from contextlib import contextmanager

from sqlalchemy import select

from freshcom_customers import identifiers
from freshcom_customers.errors import (
    AccessDenied,
    FieldError,
    InvalidCredentials,
    Taken,
    ValidationFailed,
    WrongPassword,
    invalid,
)
from freshcom_customers.extensions import db
from freshcom_customers.models import (
    MANAGED_ROLES,
    STAFF_ROLES,
    Account,
    AccountMembership,
    Customer,
    RefreshToken,
    User,
)
from freshcom_customers.models.base import utcnow
from freshcom_customers.observability import security_events
from freshcom_customers.services import accounts, customers, one_time_tokens, passwords
from freshcom_customers.services.database import flush, get_in_account

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
    """Add a managed user; password_hash, a hash the CryptContext verifies, is for imports."""
    if password_hash is None:
        passwords.check_policy(password)
        password_hash = passwords.hash_password(password)
    else:
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
    user = db.session.scalar(
        select(User).where(
            User.username == identifiers.canonical(username),
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
    account_id = str(user.account_id) if user.account_id else None  # None: a standard (staff) user
    security_events.record("user_suspended", user_id=str(user.id), account_id=account_id)


def reactivate(user: User) -> None:
    """Let the user log in again; tokens from before the suspension stay dead."""
    user.status = "active"


def revoke_sessions(user: User) -> None:
    """Revoke every refresh token of the user and invalidate their access tokens."""
    user.token_generation += 1
    revoke_refresh_tokens(user)


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


# Managing users through the API. A customer user is one face of its customer: its changes
# go through services.customers, so both rows follow the same rules.

USER_STATUSES = ("active", "suspended")
# Owners are standard users made by `flask accounts create`; no one grants the role.
ASSIGNABLE_ROLES = tuple(role for role in STAFF_ROLES if role != "owner")
# customer < read_only < ... < administrator < owner: no one grants or manages a higher role.
_RANK = {role: rank for rank, role in enumerate(MANAGED_ROLES)}
_CUSTOMER_STATUS = {"active": "registered", "suspended": "suspended"}
_PROFILE_FIELDS = ("name", "first_name", "last_name", "phone_number")


def create_user(account: Account, attrs: dict, *, by_role: str) -> User:
    """Create a managed user: a guest registers a customer user (with its customer), staff a staff user."""
    if by_role == "guest":
        return _register_customer_user(account, attrs)
    _require_staff_fields(attrs)
    _check_grantable(attrs["role"], by_role)
    user = create_managed_user(
        account,
        username=attrs.get("username") or attrs["email"],
        password=attrs["password"],
        role=attrs["role"],
        status=attrs.get("status", "active"),
        email=attrs.get("email"),
        **{field: attrs[field] for field in _PROFILE_FIELDS if field in attrs},
    )
    _derive_name(user, attrs)
    with username_clash_on_email(attrs):
        flush()
    return user


def get_managed_user(account: Account, user_id) -> User:
    """The managed user of account with this id; NotFound for standard users and other accounts'."""
    return get_in_account(User, account, user_id, "user")


def update_user(user: User, attrs: dict, *, by_role: str) -> User:
    """Apply staff's partial update; a role or status change ends the user's access tokens."""
    _check_outranked(user, by_role)
    if "password" in attrs:
        raise invalid("password", "invalid", "Change a password with PATCH /v1/user or a password reset.")
    customer = _customer_of(user)
    if customer is not None:
        _update_customer_user(customer, attrs)
        return user
    role = attrs.get("role", user.role)
    if role != user.role:
        _check_grantable(role, by_role)
        user.role = role
        user.token_generation += 1  # access tokens carry the role; refresh tokens read it afresh
    if attrs.get("status", user.status) != user.status:
        if attrs["status"] == "suspended":
            suspend(user)
        else:
            reactivate(user)
    _apply_profile(user, attrs)
    with username_clash_on_email(attrs):
        flush()
    return user


def update_own_user(user: User, attrs: dict, *, role: str, session_family: uuid.UUID | None = None) -> User:
    """Apply the caller's partial update to their own user; role and status are staff's to change.

    A new password needs the current one and ends the user's other sessions: every refresh
    token family but session_family, the caller's own.
    """
    if attrs.get("role", role) != role or attrs.get("status", user.status) != user.status:
        raise AccessDenied("Your own role and status are changed by staff.")
    customer = _customer_of(user)
    if "password" in attrs:
        change_password(user, attrs.get("current_password"), attrs["password"], keep_family=session_family)
    if customer is not None:
        _update_customer_user(customer, attrs, by_customer=True)
        return user
    _apply_profile(user, attrs)
    with username_clash_on_email(attrs):
        flush()
    return user


def change_password(
    user: User, current_password: str | None, new_password: str, *, keep_family: uuid.UUID | None = None
) -> None:
    """Set a new password after checking the current one; revoke every other refresh token family.

    keep_family, the caller's session, stays; the other families' access tokens die with
    them (they carry their family). Without keep_family every session ends.
    """
    if not current_password or not passwords.verify(current_password, user.password_hash)[0]:
        raise WrongPassword()
    passwords.check_policy(new_password)
    user.password_hash = passwords.hash_password(new_password)
    revoke_refresh_tokens(user, except_family=keep_family)
    one_time_tokens.discard("password_reset", user=user)  # a reset link must not undo it


def revoke_refresh_tokens(user: User, *, except_family: uuid.UUID | None = None) -> None:
    """Revoke every refresh token of the user, in every family (but except_family), live and test."""
    # Flush first, through flush(): the UPDATE would autoflush pending changes anyway, and
    # a unique violation among them (a taken email in the same request) must become Taken.
    flush()
    query = RefreshToken.__table__.update().where(
        RefreshToken.user_id == user.id, RefreshToken.revoked_at.is_(None)
    )
    if except_family is not None:
        query = query.where(RefreshToken.family_id != except_family)
    db.session.execute(query.values(revoked_at=utcnow()))


def delete_user(user: User, *, by_role: str) -> None:
    """Delete a managed user; a customer user goes with its customer, whose orders are kept."""
    _check_outranked(user, by_role)
    customer = _customer_of(user)
    if customer is not None:
        customers.delete_customer(customer)
        return
    db.session.delete(user)
    flush()


def _register_customer_user(account: Account, attrs: dict) -> User:
    if attrs.get("role", "customer") != "customer":
        raise AccessDenied("A guest may only create customer users.")
    fields = {k: v for k, v in attrs.items() if k in (*customers.PROFILE_FIELDS, "username", "password")}
    status = _CUSTOMER_STATUS[attrs.get("status", "active")]
    return customers.create_customer(account, {**fields, "status": status}, by_guest=True).user


def _update_customer_user(customer: Customer, attrs: dict, *, by_customer: bool = False) -> None:
    """Change a customer user through its customer, which copies the profile back to the user."""
    if attrs.get("role", "customer") != "customer":
        raise invalid("role", "invalid", "A customer's user keeps the customer role.")
    changes = {k: v for k, v in attrs.items() if k in (*customers.PROFILE_FIELDS, "username")}
    if "status" in attrs:
        changes["status"] = _CUSTOMER_STATUS[attrs["status"]]
    with username_clash_on_email(attrs):
        customers.update_customer(customer, changes, by_customer=by_customer)


@contextmanager
def username_clash_on_email(attrs: dict):
    """Report a taken username on email when the client sent none: it came from the email."""
    try:
        yield
    except Taken as e:
        if e.errors[0].field == "username" and not attrs.get("username"):
            raise Taken("email") from e
        raise


def _apply_profile(user: User, attrs: dict) -> None:
    """Set a staff or standard user's profile; a username that was the email follows it."""
    old_email = user.email
    for field in _PROFILE_FIELDS:
        if field in attrs:
            setattr(user, field, attrs[field])
    _derive_name(user, attrs)
    if "email" in attrs:
        user.email = email_address(attrs["email"])
    if user.email != old_email:
        mark_email_unverified(user)
    if attrs.get("username"):
        user.username = canonical_username(attrs["username"])
    elif user.email and username_was_email(user, old_email):
        user.username = canonical_username(user.email)


def mark_email_unverified(user: User) -> None:
    """A new address is unproven until its owner follows a verification link."""
    user.email_verified = False
    user.email_verified_at = None


def _derive_name(user: User, attrs: dict) -> None:
    if "name" not in attrs and ({"first_name", "last_name"} & attrs.keys()):
        user.name = " ".join(p for p in (user.first_name, user.last_name) if p) or None


def _require_staff_fields(attrs: dict) -> None:
    missing = [field for field in ("password", "role") if not attrs.get(field)]
    if not (attrs.get("username") or attrs.get("email")):
        missing.append("username")
    if missing:
        raise ValidationFailed(
            *(FieldError(f, "required", f"{f.capitalize()} is required.") for f in missing)
        )


def _check_grantable(role: str, by_role: str) -> None:
    if role not in ASSIGNABLE_ROLES:
        raise invalid("role", "inclusion", f"Role must be one of: {', '.join(ASSIGNABLE_ROLES)}.")
    if _RANK[role] > _RANK[by_role]:
        raise AccessDenied(f"The {by_role} role may not grant the {role} role.")


def _check_outranked(user: User, by_role: str) -> None:
    if _RANK.get(user.role, 0) > _RANK[by_role]:
        raise AccessDenied(f"The {by_role} role may not manage a user with the {user.role} role.")


def _customer_of(user: User) -> Customer | None:
    return db.session.scalar(select(Customer).where(Customer.user_id == user.id))
