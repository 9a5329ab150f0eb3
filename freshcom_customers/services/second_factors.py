"""Two-factor logins (API.md 11): the code step after a right password, and a user's authMethod.

A user's authMethod is simple (the password alone), tfa_email or tfa_sms (a six-digit code
sent by email or SMS, CODE_LIFETIME, single use) or tfa_totp (a code from an authenticator
app, or a recovery code: services/totp.py). The login use case (services/logins.py) calls
prove() only after the password is verified, so a wrong password never shows that a second
factor exists, and a wrong code counts toward the lockout like a wrong password.

A login without a code sends one (email, SMS) and asks for it; asked again within RESEND_AFTER,
it sends no second message, and the code already sent stays good.
"""

from datetime import timedelta

from freshcom_customers.errors import DomainError, InvalidCredentials, NotFound, Unavailable, invalid
from freshcom_customers.models import AUTH_METHODS, User
from freshcom_customers.models.base import utcnow
from freshcom_customers.observability import security_events
from freshcom_customers.services import mail, one_time_tokens, sms, step_up, totp, users

CODE_LIFETIME = 5 * 60
RESEND_AFTER = timedelta(seconds=30)
SMS_RETRY_AFTER = 30
SMS_PHONE_TITLE = "This phone gets the login codes: change it at PATCH /v1/user with a phoneVerificationCode."
SENT_CODES = ("tfa_email", "tfa_sms")


class SecondFactorRequired(DomainError):
    """The password was right; the login needs the code of method (none was given)."""

    def __init__(self, method: str):
        super().__init__(f"a {method} code is required")
        self.method = method


class WrongSecondFactor(InvalidCredentials):
    """The password was right but the code was not: a failed login (the lockout counts it)."""

    def __init__(self, method: str):
        super().__init__(f"wrong {method} code")
        self.method = method


def prove(user: User, code: str | None) -> None:
    """Pass a simple user, or one whose code is right; SecondFactorRequired or WrongSecondFactor if not."""
    method = user.auth_method
    if method == "simple":
        return
    code = (code or "").strip()
    if not code:
        if method in SENT_CODES:
            send_login_code(user)
        raise SecondFactorRequired(method)
    if method in SENT_CODES:
        try:
            one_time_tokens.consume_code("login_otp", user, code)
        except NotFound:
            raise WrongSecondFactor(method) from None
    elif not totp.verify(user, code):
        raise WrongSecondFactor(method)


def send_login_code(user: User) -> None:
    """Send the user a new login code by its method, unless one went out within RESEND_AFTER."""
    sent = one_time_tokens.live("login_otp", user)
    if sent is not None and sent.inserted_at > utcnow() - RESEND_AFTER:
        return
    by_email = user.auth_method == "tfa_email"
    to = user.email if by_email else user.phone_number
    if not by_email and not sms.enabled():
        raise Unavailable("SMS gateway", retry_after=SMS_RETRY_AFTER)  # taken away since the set-up
    code = one_time_tokens.issue_code(
        "login_otp", user, email=to if by_email else None, lifetime=CODE_LIFETIME
    )
    shop = mail.account_name(user.account)
    if by_email:
        mail.send("login_code", to, account=user.account, code=code, minutes=CODE_LIFETIME // 60)
    else:
        _text(to, f"{code} is your {shop} login code. It expires in {CODE_LIFETIME // 60} minutes.")


def send_phone_code(user: User, phone_number: str) -> None:
    """Text a code proving phone_number to be the user's (POST /v1/phone_verification_codes)."""
    if not sms.is_e164(phone_number):
        raise invalid("phone_number", "invalid", "A phone number in E.164 form, like +14155550100.")
    if not sms.enabled():
        raise invalid("phone_number", "unavailable", "This service sends no SMS.")
    code = one_time_tokens.issue_code(
        "phone_verification", user, email=None, lifetime=CODE_LIFETIME, payload={"phone_number": phone_number}
    )
    shop = mail.account_name(user.account)
    _text(phone_number, f"{code} is your {shop} verification code.")


def _text(to: str, message: str) -> None:
    """Send an SMS; 503 when the gateway fails, and the request's transaction, its code with it,
    is rolled back by the error handler: no code is kept that never arrived."""
    try:
        sms.send(to, message)
    except sms.SmsFailed:
        raise Unavailable("SMS gateway", retry_after=SMS_RETRY_AFTER) from None


def change_auth_method(user: User, attrs: dict, *, session_id, by_staff: bool = False) -> bool:
    """Apply attrs' auth_method, phone_number and phone_verification_code to the user's second factor.

    The user itself needs the step-up (services/step_up.py): to turn a second factor on, a
    login in the last minutes will do (else a stolen access token could lock its owner out
    with the thief's phone); to leave one or change the phone on tfa_sms, the password or a
    second factor. tfa_email needs a verified email; tfa_sms a code texted to the number;
    tfa_totp comes only from a confirmed enrolment (services/totp.py). Staff may only set
    simple (a customer who lost its phone) or tfa_email. Return whether a texted code proved
    attrs' phone number.
    """
    method = attrs.get("auth_method", user.auth_method)
    new_phone = "phone_number" in attrs and attrs["phone_number"] != user.phone_number
    if method == user.auth_method and not (method == "tfa_sms" and new_phone):
        return False
    if method not in AUTH_METHODS:
        raise invalid("auth_method", "inclusion", f"authMethod is one of {', '.join(AUTH_METHODS)}.")
    if by_staff and method == user.auth_method:  # tfa_sms, on a new phone
        raise invalid("phone_number", "second_factor", SMS_PHONE_TITLE)
    if by_staff and method not in ("simple", "tfa_email"):
        raise invalid("auth_method", "forbidden", "Only the user can set up an SMS or app second factor.")
    if method == "tfa_totp":
        raise invalid("auth_method", "enrolment", "Set up an authenticator app at /v1/totp_enrollments.")
    if method == "tfa_email" and not (user.email and user.email_verified and not attrs.get("email")):
        raise invalid("auth_method", "unverified_email", "tfa_email needs a verified email.")
    if not by_staff:  # the checks above cost no password guess
        turning_on = user.auth_method == "simple"
        step_up.require(user, attrs.get("current_password"), session_id, fresh_login=turning_on)
    if method == "tfa_sms":
        phone = attrs.get("phone_number", user.phone_number)
        _check_phone_code(user, phone, attrs.get("phone_verification_code"))
    if user.auth_method == "tfa_totp":
        totp.disable(user)
    previous, user.auth_method = user.auth_method, method
    if previous == method:  # tfa_sms on a new phone
        security_events.record("second_factor_phone_changed", **security_events.user_fields(user))
        return True
    security_events.record(
        "auth_method_changed",
        **security_events.user_fields(user),
        previous=previous,
        method=method,
        by="staff" if by_staff else "user",
    )
    if method == "simple":
        users.tell_second_factor_changed(user, "disabled")
    else:
        users.tell_second_factor_changed(user, "enabled", method=method)
    return method == "tfa_sms"


def _check_phone_code(user: User, phone: str | None, code: str | None) -> None:
    if not phone or not sms.is_e164(phone):
        raise invalid("phone_number", "invalid", "tfa_sms needs a phone number in E.164 form.")
    if not sms.enabled():
        raise invalid("auth_method", "unavailable", "This service sends no SMS.")
    try:
        token = one_time_tokens.consume_code("phone_verification", user, code)
    except NotFound:
        raise invalid("phone_verification_code", "invalid", "The code is wrong or expired.") from None
    if token.payload.get("phone_number") != phone:
        raise invalid("phone_verification_code", "invalid", "The code was sent to another number.")
