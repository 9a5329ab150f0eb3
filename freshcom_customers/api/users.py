"""Users: /v1/users, /v1/users/:id and the caller's own /v1/user."""

from flask import url_for
from marshmallow import Schema, fields
from marshmallow.validate import Length, OneOf

from freshcom_customers import schemas
from freshcom_customers.api import bp, jsonapi
from freshcom_customers.api.access import STAFF, caller, current_password_guard, is_guest, user_caller
from freshcom_customers.api.jsonapi import BODY_ERRORS, ERRORS, TOKEN_ERRORS
from freshcom_customers.extensions import db
from freshcom_customers.http import throttling
from freshcom_customers.http.contracts import BEARER
from freshcom_customers.models import AUTH_METHODS, MANAGED_ROLES, User
from freshcom_customers.oauth2 import require_oauth
from freshcom_customers.services import changes, user_management, users

# Who manages an account's managed users (API.md 5; owners too, as they outrank both).
USER_MANAGERS = ("developer", "administrator", "owner")


def _text(max_length: int):
    return fields.String(allow_none=True, validate=Length(max=max_length))


class Role(fields.String):
    """A role; Freshcom's clients may send it camelCased (supportSpecialist), so both are documented."""

    def __init__(self, roles: tuple[str, ...], **kwargs):
        spellings = list(dict.fromkeys([*roles, *map(schemas.camelize, roles)]))
        super().__init__(validate=OneOf(roles), metadata={"enum": spellings}, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        return schemas.underscore(super()._deserialize(value, attr, data, **kwargs))


class UserSchema(Schema):
    status = fields.String(validate=OneOf(users.USER_STATUSES))
    username = fields.String(validate=Length(min=3, max=254))
    email = fields.Email(allow_none=True, validate=Length(max=254))
    name = _text(255)
    first_name = _text(255)
    last_name = _text(255)
    phone_number = _text(32)
    role = Role(MANAGED_ROLES)
    email_verified = fields.Boolean(dump_only=True)
    email_verified_at = jsonapi.Timestamp(dump_only=True)
    pending_email = fields.String(dump_only=True)  # a new email waiting for its link (API.md 9)
    inserted_at = jsonapi.Timestamp(dump_only=True)
    updated_at = jsonapi.Timestamp(dump_only=True)
    auth_method = fields.String(validate=OneOf(AUTH_METHODS))  # API.md 11
    password = fields.String(load_only=True)
    current_password = fields.String(load_only=True, allow_none=True)
    phone_verification_code = fields.String(load_only=True, validate=Length(max=16))


SCHEMA = UserSchema()


def serialize(user, role: str | None = None) -> dict:
    """The User resource; role overrides the stored one (a standard user's comes from a membership)."""
    data = jsonapi.resource(
        "User", user, SCHEMA, {"account": jsonapi.relationship("Account", user.account_id)}
    )
    if role is not None:
        data["attributes"]["role"] = role
    return data


changes.show_as(User, serialize)  # a webhook event's data (API.md 12)


DOCUMENT, _ = jsonapi.documents("User", SCHEMA)


@bp.post("/users")
@jsonapi.contract(
    "Create a managed user (staff) or a customer user (guest)",
    tag="Users",
    responses={201: DOCUMENT, 429: ERRORS, **TOKEN_ERRORS, **BODY_ERRORS},
    security=BEARER,
    body=jsonapi.body("User", UserSchema()),
)
@require_oauth()
@throttling.limit_per_ip("registration", only_if=is_guest)
def create_user():
    principal = caller("guest", *USER_MANAGERS)
    attrs = jsonapi.load()
    user = user_management.create_user(principal.account, attrs, by_role=principal.role)
    db.session.commit()
    location = url_for("api.get_user", user_id=user.id)
    return jsonapi.document(serialize(user), status=201, headers={"Location": location})


@bp.get("/user")
@jsonapi.contract(
    "The caller's user", tag="Users", responses={200: DOCUMENT, **TOKEN_ERRORS}, security=BEARER
)
@require_oauth()
def get_current_user():
    principal = user_caller("customer", *STAFF)
    return jsonapi.document(serialize(principal.user, principal.role))


@bp.patch("/user")
@jsonapi.contract(
    "Update the caller's user; a new password needs currentPassword",
    tag="Users",
    responses={200: DOCUMENT, 429: ERRORS, **TOKEN_ERRORS, **BODY_ERRORS},
    security=BEARER,
    body=jsonapi.body("User", UserSchema(), partial=True),
)
@require_oauth()
def update_current_user():
    principal = user_caller("customer", *STAFF)
    attrs = jsonapi.load(principal.user.id)
    with current_password_guard(principal.user, attrs):
        user_management.update_own_user(
            principal.user, attrs, role=principal.role, session_family=principal.family_id
        )
    db.session.commit()
    return jsonapi.document(serialize(principal.user, principal.role))


@bp.get("/users/<user_id>")
@jsonapi.contract(
    "Read a managed user of the account",
    tag="Users",
    responses={200: DOCUMENT, 404: ERRORS, **TOKEN_ERRORS},
    security=BEARER,
)
@require_oauth()
def get_user(user_id):
    principal = caller(*USER_MANAGERS)
    return jsonapi.document(serialize(users.get_managed_user(principal.account, user_id)))


@bp.patch("/users/<user_id>")
@jsonapi.contract(
    "Update a managed user of the account",
    tag="Users",
    responses={200: DOCUMENT, 404: ERRORS, **TOKEN_ERRORS, **BODY_ERRORS},
    security=BEARER,
    body=jsonapi.body("User", UserSchema(), partial=True),
)
@require_oauth()
def update_user(user_id):
    principal = caller(*USER_MANAGERS)
    user = users.get_managed_user(principal.account, user_id)
    attrs = jsonapi.load(user_id)
    user_management.update_user(user, attrs, by_role=principal.role)
    db.session.commit()
    return jsonapi.document(serialize(user))


@bp.delete("/users/<user_id>")
@jsonapi.contract(
    "Delete a managed user of the account",
    tag="Users",
    responses={204: None, 404: ERRORS, 422: ERRORS, **TOKEN_ERRORS},
    security=BEARER,
)
@require_oauth()
def delete_user(user_id):
    principal = caller(*USER_MANAGERS)
    user_management.delete_user(users.get_managed_user(principal.account, user_id), by_role=principal.role)
    db.session.commit()
    return jsonapi.no_content()
