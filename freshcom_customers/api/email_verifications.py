"""Email verification: /v1/email_verification_tokens and /v1/email_verifications."""

from flask import request
from marshmallow import Schema, fields

from freshcom_customers import schemas
from freshcom_customers.api import bp, jsonapi
from freshcom_customers.api.access import STAFF, caller
from freshcom_customers.extensions import db
from freshcom_customers.oauth2 import require_oauth
from freshcom_customers.services import email_verifications, users

# Staff who may send a verification email to another user of their account.
VERIFICATION_SENDERS = ("administrator", "developer", "owner", "support_specialist")


class EmailVerificationSchema(Schema):
    token = fields.String(required=True)


@bp.post("/email_verification_tokens")
@require_oauth()
def create_email_verification_token():
    principal = caller(*STAFF, "customer")
    user_id = _named_user_id()
    if user_id is None or user_id == str(principal.user.id):
        user = principal.user
    else:
        user = users.get_managed_user(caller(*VERIFICATION_SENDERS).account, user_id)
    email_verifications.send_verification(user)
    db.session.commit()
    return jsonapi.no_content()


@bp.post("/email_verifications")
def create_email_verification():
    """Any caller: the token in the body is the whole credential."""
    attrs = schemas.load(EmailVerificationSchema(), jsonapi.read_attributes("EmailVerification"))
    email_verifications.verify_email(attrs["token"])
    db.session.commit()
    return jsonapi.no_content()


def _named_user_id() -> str | None:
    """The id in data.relationships.user, lower case; None when the request names no user."""
    if not request.content_length:
        return None  # no body: the caller means themselves
    jsonapi.read_attributes("EmailVerificationToken")  # the envelope's checks: 415, 400, 409
    user_id = jsonapi.read_relationship("user", "User").get("user")
    return user_id.lower() if user_id else None
