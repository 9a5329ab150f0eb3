"""Password reset: /v1/password_reset_tokens and /v1/password."""

from authlib.integrations.flask_oauth2 import current_token
from flask import request
from marshmallow import Schema, fields
from marshmallow.validate import Length

from freshcom_customers.api import bp, jsonapi
from freshcom_customers.api.jsonapi import BODY_ERRORS, ERRORS
from freshcom_customers.extensions import db
from freshcom_customers.http import contracts, throttling
from freshcom_customers.http.contracts import BEARER, Param
from freshcom_customers.oauth2 import require_oauth
from freshcom_customers.services import actors, password_resets


class PasswordResetTokenSchema(Schema):
    username = fields.String(required=True, validate=Length(min=1, max=254))


class PasswordSchema(Schema):
    value = fields.String(required=True)
    reset_token = fields.String(load_only=True)


@bp.post("/password_reset_tokens")
@jsonapi.contract(
    "Email a password reset token; 204 whether or not the user exists",
    tag="Passwords",
    responses={204: None, 401: ERRORS, 429: ERRORS, **BODY_ERRORS},
    security=BEARER,
    optional_auth=True,
    body=jsonapi.body("PasswordResetToken", PasswordResetTokenSchema()),
    description="A guest token selects its account's managed users; no token, standard users.",
)
@throttling.limit_per_ip("password_reset")
@require_oauth(optional=True)
def create_password_reset_token():
    """204 whether or not the user exists. A token selects its account's managed users."""
    attrs = jsonapi.load()
    password_resets.request_reset(_token_account(), attrs["username"])
    db.session.commit()
    return jsonapi.no_content()


@bp.patch("/password")
@jsonapi.contract(
    "Set a new password with a reset token",
    tag="Passwords",
    responses={204: None, **BODY_ERRORS},
    body=jsonapi.body("Password", PasswordSchema()),
    query=(Param("resetToken", aliases=("reset_token",)),),
)
def reset_password():
    attrs = jsonapi.load()
    token = contracts.arg("resetToken") or attrs.get("reset_token")
    actors.act_as(actors.CUSTOMER)  # whoever holds the link proved the address: the user itself
    password_resets.reset_password(token, attrs["value"])
    db.session.commit()
    return jsonapi.no_content()


def _token_account():
    """The bearer token's account, None when no token was sent.

    Without a token Authlib leaves current_token as it was, which within one app context
    (several requests of a test) may be an earlier request's.
    """
    return current_token.account if "Authorization" in request.headers else None
