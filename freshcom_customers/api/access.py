"""Who may call what on the native face. Roles come from the access token."""

from contextlib import AbstractContextManager, nullcontext

from authlib.integrations.flask_oauth2 import current_token

from freshcom_customers.errors import AccessDenied
from freshcom_customers.http import throttling
from freshcom_customers.models import STAFF_ROLES, User
from freshcom_customers.services import actors, logins, step_up
from freshcom_customers.services.access_tokens import Principal

STAFF = frozenset(STAFF_ROLES)
# Staff who manage customers; read_only and goods_specialist only read them.
CUSTOMER_MANAGERS = STAFF - {"read_only", "goods_specialist"}


def caller(*roles: str) -> Principal:
    """The authenticated caller, if their role is one of roles; AccessDenied if not."""
    principal = current_token._get_current_object()
    if principal.role not in roles:
        raise AccessDenied(f"The {principal.role} role may not do this.")
    actors.act_as(actor_of(principal))
    return principal


def actor_of(principal: Principal) -> actors.Actor:
    """Who the caller is in a customer's history: a client, a staff user, or the customer itself."""
    if principal.is_machine:
        return actors.Actor("client", principal.machine_client_id)
    if principal.role in STAFF:
        return actors.Actor("staff", principal.user.id if principal.user else None)
    return actors.CUSTOMER


def user_caller(*roles: str) -> Principal:
    """The authenticated caller, as caller() does, when the route needs a user: a machine
    client's token (API.md 12) has a role but no user, and is refused here."""
    principal = caller(*roles)
    if principal.user is None:
        raise AccessDenied("This needs a user's token; a client's token has no user.")
    return principal


def is_guest() -> bool:
    """Whether the caller holds a guest token (a storefront visitor, who may self-register)."""
    return current_token.role == "guest"


# A user's own changes that may need its current password (API.md 5, 9 and 11).
STEP_UP_FIELDS = ("password", "email", "auth_method", "phone_number")


def current_password_guard(user: User, attrs: dict) -> AbstractContextManager:
    """Around a change of the caller's own password, email or second factor: a wrong
    currentPassword is a failed login."""
    if not any(field in attrs for field in STEP_UP_FIELDS):
        return nullcontext()
    return step_up_guard(user)


def step_up_guard(user: User) -> AbstractContextManager:
    """Around a step-up (services/step_up.py): a wrong currentPassword counts as a failed login."""
    return logins.Login(throttling.current(), throttling.client_ip()).current_password(user)


def require_step_up(principal: Principal, attrs: dict, *, fresh_login: bool = False) -> None:
    """The caller's proof for a sensitive change (services/step_up.require), in its session;
    a wrong currentPassword in attrs counts as a failed login."""
    with step_up_guard(principal.user):
        step_up.require(
            principal.user, attrs.get("current_password"), principal.family_id, fresh_login=fresh_login
        )


def own_customer_id(principal: Principal):
    """Whose rows (orders, addresses) the caller sees: its own customer's for a customer token,
    None (all of the account's) for staff."""
    if principal.role != "customer":
        return None
    if principal.customer_id is None:
        # Not issued today (the grant refuses a customer user without a customer), but None
        # would mean "every row" to the services.
        raise AccessDenied("This customer token names no customer.")
    return principal.customer_id
