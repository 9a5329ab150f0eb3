"""Email verification: /v1/email_verification_tokens and /v1/email_verifications."""

from flask import request
from marshmallow import Schema, fields

from freshcom_customers.api import bp, jsonapi
from freshcom_customers.api.access import STAFF, caller, user_caller
from freshcom_customers.api.jsonapi import BODY_ERRORS, ERRORS, TOKEN_ERRORS
from freshcom_customers.extensions import db
from freshcom_customers.http.contracts import BEARER
from freshcom_customers.oauth2 import require_oauth
from freshcom_customers.services import actors, email_verifications, users

# Staff who may send a verification email to another user of their account.
VERIFICATION_SENDERS = ("administrator", "developer", "owner", "support_specialist")


class EmailVerificationSchema(Schema):
    token = fields.String(required=True)


class EmailVerificationTokenSchema(Schema):
    """No attributes: a relationship names the user, or the caller means themselves."""


@bp.post("/email_verification_tokens")
@jsonapi.contract(
    "Email a verification token to the caller, or (staff) to the user named",
    tag="Email verification",
    responses={204: None, 404: ERRORS, **TOKEN_ERRORS, **BODY_ERRORS},
    security=BEARER,
    body=jsonapi.body(
        "EmailVerificationToken",
        EmailVerificationTokenSchema(),
        relationships=(("user", "User"),),
        required=False,
    ),
)
@require_oauth()
def create_email_verification_token():
    principal = caller(*STAFF, "customer")
    user_id = _named_user_id()
    if user_id is None or (principal.user is not None and user_id == str(principal.user.id)):
        user = user_caller(*STAFF, "customer").user  # the caller means themselves: a user
    else:
        user = users.get_managed_user(caller(*VERIFICATION_SENDERS).account, user_id)
    email_verifications.send_verification(user)
    db.session.commit()
    return jsonapi.no_content()


@bp.post("/email_verifications")
@jsonapi.contract(
    "Verify an email with the token it was sent",
    tag="Email verification",
    responses={204: None, **BODY_ERRORS},
    body=jsonapi.body("EmailVerification", EmailVerificationSchema()),
)
def create_email_verification():
    """Any caller: the token in the body is the whole credential."""
    attrs = jsonapi.load()
    actors.act_as(actors.CUSTOMER)  # whoever holds the link proved the address: the user itself
    email_verifications.verify_email(attrs["token"])
    db.session.commit()
    return jsonapi.no_content()


def _named_user_id() -> str | None:
    """The id in data.relationships.user, lower case; None when the request names no user."""
    if not request.content_length:
        return None  # no body: the caller means themselves
    jsonapi.load()  # the envelope's checks: 415, 400, 409
    user_id = jsonapi.read_relationship("user").get("user")
    return user_id.lower() if user_id else None
