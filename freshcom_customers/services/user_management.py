"""Managing users through the API (/v1/users, /v1/user): who may create, change or delete whom.

A customer's user is one face of its customer: its changes go through services.customers,
which keeps both rows in step. Staff and standard users are changed here, on the primitives
of services.users.
"""

import uuid

from freshcom_customers.errors import AccessDenied, FieldError, ValidationFailed, invalid
from freshcom_customers.extensions import db
from freshcom_customers.models import MANAGED_ROLES, STAFF_ROLES, Account, Customer, User
from freshcom_customers.services import customers, email_changes, second_factors, step_up, users
from freshcom_customers.services.database import flush

# Owners are standard users made by `flask accounts create`; no one grants the role.
ASSIGNABLE_ROLES = tuple(role for role in STAFF_ROLES if role != "owner")
# customer < read_only < ... < administrator < owner: no one grants or manages a higher role.
_RANK = {role: rank for rank, role in enumerate(MANAGED_ROLES)}
_PROFILE_FIELDS = ("name", "first_name", "last_name", "phone_number")


def create_user(account: Account, attrs: dict, *, by_role: str) -> User:
    """Create a managed user: a guest registers a customer user (with its customer), staff a staff user.

    Every user starts simple: a second factor is set up by the user, with its proof (API.md 11).
    """
    if attrs.get("auth_method", "simple") != "simple":
        raise invalid("auth_method", "inclusion", "A new user is simple; it turns two-factor on itself.")
    if by_role == "guest":
        return customers.register_customer_user(account, attrs)
    _require_staff_fields(attrs)
    _check_grantable(attrs["role"], by_role)
    user = users.create_managed_user(
        account,
        username=attrs.get("username") or attrs["email"],
        password=attrs["password"],
        role=attrs["role"],
        status=attrs.get("status", "active"),
        email=attrs.get("email"),
        **{field: attrs[field] for field in _PROFILE_FIELDS if field in attrs},
    )
    _derive_name(user, attrs)
    with users.username_clash_on_email(attrs):
        flush()
    return user


def update_user(user: User, attrs: dict, *, by_role: str) -> User:
    """Apply staff's partial update; a role or status change ends the user's access tokens."""
    _check_outranked(user, by_role)
    if "password" in attrs:
        raise invalid("password", "invalid", "Change a password with PATCH /v1/user or a password reset.")
    second_factors.change_auth_method(user, attrs, session_id=None, by_staff=True)
    customer = customers.of_user(user)
    if customer is not None:
        customers.update_customer_user(customer, attrs)
        return user
    role = attrs.get("role", user.role)
    if role != user.role:
        _check_grantable(role, by_role)
        user.role = role
        user.token_generation += 1  # access tokens carry the role; refresh tokens read it afresh
    if attrs.get("status", user.status) != user.status:
        if attrs["status"] == "suspended":
            users.suspend(user)
        else:
            users.reactivate(user)
    _apply_profile(user, attrs)
    with users.username_clash_on_email(attrs):
        flush()
    return user


def update_own_user(user: User, attrs: dict, *, role: str, session_family: uuid.UUID | None = None) -> User:
    """Apply the caller's partial update to their own user; role and status are staff's to change.

    A new password needs the current one (or a second factor proven in session_family
    minutes ago) and ends the user's other sessions: every refresh token family but
    session_family, the caller's own. A change of authMethod or of a tfa_sms phone goes through
    services/second_factors.
    """
    if attrs.get("role", role) != role or attrs.get("status", user.status) != user.status:
        raise AccessDenied("Your own role and status are changed by staff.")
    customer = customers.of_user(user)
    # A second factor proven minutes ago stands for the current password (API.md 11).
    stepped_up = ("password" in attrs or "email" in attrs) and step_up.recent(user, session_family)
    phone_proven = second_factors.change_auth_method(user, attrs, session_id=session_family)
    # Checks the current password: before it changes.
    attrs = email_changes.hold_back(attrs, user=user, stepped_up=stepped_up)
    if "password" in attrs:
        users.change_password(
            user,
            attrs.get("current_password"),
            attrs["password"],
            keep_family=session_family,
            stepped_up=stepped_up,
        )
    if customer is not None:
        customers.update_customer_user(customer, attrs, by_customer=True, sms_phone_proven=phone_proven)
        return user
    _apply_profile(user, attrs)
    with users.username_clash_on_email(attrs):
        flush()
    return user


def update_own_customer(
    customer: Customer, attrs: dict, *, login_link_recent: bool | None = None
) -> Customer:
    """Apply a customer's partial update of itself: not its status, and a new email waits for its link.

    login_link_recent is the Chec face's proof for a new email (services.email_changes.hold_back).
    """
    if customer.user is not None:
        attrs = email_changes.hold_back(attrs, user=customer.user, login_link_recent=login_link_recent)
    else:
        attrs = email_changes.hold_back(attrs, user=None, guest=customer, login_link_recent=login_link_recent)
    return customers.update_customer(customer, attrs, by_customer=True)


def delete_user(user: User, *, by_role: str) -> None:
    """Delete a managed user; a customer user goes with its customer, whose orders are kept."""
    _check_outranked(user, by_role)
    customer = customers.of_user(user)
    if customer is not None:
        customers.delete_customer(customer)
        return
    db.session.delete(user)
    flush()


def _apply_profile(user: User, attrs: dict) -> None:
    """Set a staff or standard user's profile; a username that was the email follows it."""
    for field in _PROFILE_FIELDS:
        if field in attrs:
            setattr(user, field, attrs[field])
    _derive_name(user, attrs)
    if "email" in attrs:
        users.change_email(user, attrs["email"])
    if attrs.get("username"):
        user.username = users.canonical_username(attrs["username"])


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
