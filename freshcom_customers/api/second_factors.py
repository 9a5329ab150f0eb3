"""Two-factor set-up (API.md 11): phone verification codes and authenticator-app enrolment."""

from types import SimpleNamespace

from flask import url_for
from marshmallow import Schema, fields
from marshmallow.validate import Length

from freshcom_customers.api import bp, jsonapi
from freshcom_customers.api.access import STAFF, require_step_up, user_caller
from freshcom_customers.api.jsonapi import BODY_ERRORS, ERRORS, TOKEN_ERRORS
from freshcom_customers.extensions import db
from freshcom_customers.http import throttling
from freshcom_customers.http.contracts import BEARER
from freshcom_customers.oauth2 import require_oauth
from freshcom_customers.services import second_factors, totp

USERS = ("customer", *STAFF)


class PhoneVerificationCodeSchema(Schema):
    phone_number = fields.String(required=True, validate=Length(max=32))


class TotpEnrollmentSchema(Schema):
    secret = fields.String(dump_only=True, metadata={"description": "Base32, for typing into an app."})
    otpauth_uri = fields.String(
        dump_only=True, metadata={"description": "otpauth://totp/..., for a QR code."}
    )
    recovery_codes = fields.List(fields.String(), dump_only=True, metadata={"description": "Shown once."})
    code = fields.String(load_only=True, validate=Length(max=64))
    current_password = fields.String(load_only=True, allow_none=True)


ENROLMENT_SCHEMA = TotpEnrollmentSchema()
ENROLMENT_DOCUMENT, _ = jsonapi.documents("TotpEnrollment", ENROLMENT_SCHEMA)


@bp.post("/phone_verification_codes")
@jsonapi.contract(
    "Text a code to a phone number, to prove it before turning tfa_sms on",
    tag="Two-factor",
    responses={204: None, 429: ERRORS, 503: ERRORS, **TOKEN_ERRORS, **BODY_ERRORS},
    security=BEARER,
    body=jsonapi.body("PhoneVerificationCode", PhoneVerificationCodeSchema()),
)
@require_oauth()
@throttling.limit_per_ip("phone_verification")
def create_phone_verification_code():
    principal = user_caller(*USERS)
    second_factors.send_phone_code(principal.user, jsonapi.load()["phone_number"])
    db.session.commit()
    return jsonapi.no_content()


@bp.post("/totp_enrollments")
@jsonapi.contract(
    "Start setting up an authenticator app: a new secret and its otpauth URI",
    tag="Two-factor",
    responses={201: ENROLMENT_DOCUMENT, 429: ERRORS, **TOKEN_ERRORS, **BODY_ERRORS},
    security=BEARER,
    body=jsonapi.body("TotpEnrollment", TotpEnrollmentSchema(), required=False),
)
@require_oauth()
def create_totp_enrollment():
    principal = user_caller(*USERS)
    attrs = jsonapi.load_if_sent()
    user = principal.user
    require_step_up(principal, attrs, fresh_login=True)
    secret, uri = totp.start_enrolment(user, issuer=principal.account.name)
    db.session.commit()
    enrolment = SimpleNamespace(id="current", secret=secret, otpauth_uri=uri)
    location = url_for("api.confirm_totp_enrollment")
    return jsonapi.document(
        jsonapi.resource("TotpEnrollment", enrolment, ENROLMENT_SCHEMA),
        status=201,
        headers={"Location": location},
    )


@bp.patch("/totp_enrollments/current")
@jsonapi.contract(
    "Confirm the authenticator with a current code: authMethod becomes tfa_totp, with recovery codes",
    tag="Two-factor",
    responses={200: ENROLMENT_DOCUMENT, **TOKEN_ERRORS, **BODY_ERRORS},
    security=BEARER,
    body=jsonapi.body("TotpEnrollment", TotpEnrollmentSchema(), partial=True),
)
@require_oauth()
def confirm_totp_enrollment():
    principal = user_caller(*USERS)
    attrs = jsonapi.load("current")
    user = principal.user
    if user.auth_method != "simple":  # replacing a second factor: the step-up of API.md 11
        require_step_up(principal, attrs)
    codes = totp.confirm(user, attrs.get("code"))
    db.session.commit()
    enrolment = SimpleNamespace(id="current", recovery_codes=codes)
    return jsonapi.document(jsonapi.resource("TotpEnrollment", enrolment, ENROLMENT_SCHEMA))
