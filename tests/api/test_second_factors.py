"""Two-factor set-up over the native API (API.md 11): phone verification codes, the caller's
authMethod on PATCH /v1/user, authenticator-app enrolment, the phone of a tfa_sms user, and
staff's support reset. Every change is a security event."""

import logging
import re
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from sqlalchemy import select

from freshcom_customers.models import Customer, LoginSession, RecoveryCode, User
from freshcom_customers.services import access_tokens, sms, totp, users
from tests.conftest import REGISTRATION, assert_no_content, errors_of
from tests.logcapture import app_records

ROY, PASSWORD = REGISTRATION["email"], REGISTRATION["password"]
PHONE, OTHER_PHONE = "+14155550100", "+447700900123"
SIX_DIGITS = re.compile(r"\b([0-9]{6})\b")
SECURITY = "freshcom_customers.security"
CODE = "/data/attributes/phoneVerificationCode"
CURRENT_PASSWORD = "/data/attributes/currentPassword"
AUTH_METHOD = "/data/attributes/authMethod"
PHONE_NUMBER = "/data/attributes/phoneNumber"


@pytest.fixture(autouse=True)
def empty_outbox():
    sms.outbox.clear()
    yield
    sms.outbox.clear()


class Clock:
    """totp's clock: a fixed instant in the middle of a 30-second step, moved on by hand."""

    def __init__(self, monkeypatch):
        self.now = datetime(2025, 1, 1, 12, 0, 15, tzinfo=UTC)
        monkeypatch.setattr(totp, "_now", lambda: self.now)

    def code(self, secret: str) -> str:
        """The app's code of the next time step (a step's code is accepted once)."""
        self.now += timedelta(seconds=30)
        return pyotp.TOTP(secret).at(self.now)


@pytest.fixture
def clock(monkeypatch) -> Clock:
    return Clock(monkeypatch)


# Requests


def document(type_: str, **attributes) -> dict:
    return {"data": {"type": type_, "attributes": attributes}}


def bearer(access_token: str) -> dict:
    return {"Authorization": f"Bearer {access_token}"}


def log_in(client, account, username=ROY, password=PASSWORD, otp=None) -> str:
    """An access token of a new session (the OTP of a two-factor user in the header)."""
    data = {"grant_type": "password", "username": username, "password": password}
    data["scope"] = f"aid:{account.live.id}"
    response = client.post("/v1/token", data=data, headers={"X-Freshcom-OTP": otp} if otp else {})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["access_token"]


def ask_for_otp(client, account, method: str, username=ROY, password=PASSWORD):
    data = {"grant_type": "password", "username": username, "password": password}
    response = client.post("/v1/token", data={**data, "scope": f"aid:{account.live.id}"})
    assert response.status_code == 400, response.get_json()
    assert response.headers["X-Freshcom-OTP"] == f"required; auth_method={method}"


def update_me(client, access_token, **attributes):
    return client.patch("/v1/user", json=document("User", **attributes), headers=bearer(access_token))


def me(client, access_token) -> dict:
    return client.get("/v1/user", headers=bearer(access_token)).get_json()["data"]["attributes"]


def request_phone_code(client, access_token, number=PHONE):
    body = document("PhoneVerificationCode", phoneNumber=number)
    return client.post("/v1/phone_verification_codes", json=body, headers=bearer(access_token))


def phone_code(client, access_token, number=PHONE) -> str:
    """The code texted to number at the caller's request."""
    assert_no_content(request_phone_code(client, access_token, number))
    message = sms.outbox[-1]
    assert message.to == number
    return SIX_DIGITS.search(message.text).group(1)


def user_of(session, username=ROY) -> User:
    query = select(User).where(User.username == username)
    return session.scalar(query.execution_options(populate_existing=True))


def events(caplog) -> list[tuple[str, dict]]:
    return [(r.security_event, r.fields) for r in caplog.records if hasattr(r, "security_event")]


def changed(caplog) -> list[tuple[str, str, str]]:
    """(previous, method, by) of each auth_method_changed event."""
    return [
        (fields["previous"], fields["method"], fields["by"])
        for name, fields in events(caplog)
        if name == "auth_method_changed"
    ]


@pytest.fixture
def roy_token(client, account, roy) -> str:
    """Roy, a registered customer, just logged in with his password alone."""
    return log_in(client, account)


@pytest.fixture
def roy_on_sms(client, roy_token, caplog) -> str:
    """Roy with tfa_sms on PHONE, set up through the API; his session proved no second factor."""
    code = phone_code(client, roy_token)
    response = update_me(
        client, roy_token, authMethod="tfa_sms", phoneNumber=PHONE, phoneVerificationCode=code
    )
    assert response.status_code == 200, response.get_json()
    sms.outbox.clear()
    caplog.clear()
    return roy_token


# Phone verification codes


def test_a_phone_verification_code_is_texted(client, roy_token, session):
    response = request_phone_code(client, roy_token)

    assert_no_content(response)
    (message,) = sms.outbox
    assert message.to == PHONE
    assert "Acme" in message.text and SIX_DIGITS.search(message.text)


@pytest.mark.parametrize("number", ["4155550100", "+1 415 555 0100", "+0415555010", "phone", ""])
def test_a_phone_verification_code_needs_an_e164_number(client, roy_token, number):
    assert errors_of(request_phone_code(client, roy_token, number)) == {("invalid", PHONE_NUMBER)}
    assert sms.outbox == []


def test_a_guest_gets_no_phone_verification_code(client, guest, roy):
    body = document("PhoneVerificationCode", phoneNumber=PHONE)

    response = client.post("/v1/phone_verification_codes", json=body, headers=guest)

    assert response.status_code == 403, response.get_json()
    assert sms.outbox == []


# tfa_sms


def test_the_code_of_the_phone_turns_sms_on(client, session, account, roy_token, caplog):
    code = phone_code(client, roy_token)

    response = update_me(
        client, roy_token, authMethod="tfa_sms", phoneNumber=PHONE, phoneVerificationCode=code
    )

    assert response.status_code == 200, response.get_json()
    attributes = response.get_json()["data"]["attributes"]
    assert (attributes["authMethod"], attributes["phoneNumber"]) == ("tfa_sms", PHONE)
    assert "phoneVerificationCode" not in attributes
    customer = session.scalar(select(Customer).where(Customer.email == ROY))
    assert customer.phone_number == PHONE  # the customer's copy follows
    assert changed(caplog) == [("simple", "tfa_sms", "user")]
    ask_for_otp(client, account, "tfa_sms")  # and the next login asks for a texted code
    assert sms.outbox[-1].to == PHONE


def test_the_phone_code_works_once(client, roy_token):
    code = phone_code(client, roy_token)
    attributes = {"authMethod": "tfa_sms", "phoneNumber": PHONE, "phoneVerificationCode": code}
    assert update_me(client, roy_token, **attributes).status_code == 200
    assert update_me(client, roy_token, authMethod="simple", currentPassword=PASSWORD).status_code == 200

    assert errors_of(update_me(client, roy_token, **attributes)) == {("invalid", CODE)}


@pytest.mark.parametrize(
    ("asked_for", "attributes"),
    [
        pytest.param(PHONE, lambda code: {}, id="no code"),
        pytest.param(
            PHONE, lambda code: {"phoneVerificationCode": f"{(int(code) + 1) % 10**6:06d}"}, id="wrong"
        ),
        pytest.param(OTHER_PHONE, lambda code: {"phoneVerificationCode": code}, id="for another number"),
    ],
)
def test_sms_needs_the_code_of_that_same_number(client, roy_token, caplog, asked_for, attributes):
    code = phone_code(client, roy_token, asked_for)

    response = update_me(client, roy_token, authMethod="tfa_sms", phoneNumber=PHONE, **attributes(code))

    assert errors_of(response) == {("invalid", CODE)}
    assert me(client, roy_token)["authMethod"] == "simple"
    assert changed(caplog) == []


def test_the_number_given_is_the_one_the_code_proves(client, roy_token):
    code = phone_code(client, roy_token, PHONE)

    response = update_me(
        client, roy_token, authMethod="tfa_sms", phoneNumber=OTHER_PHONE, phoneVerificationCode=code
    )

    assert errors_of(response) == {("invalid", CODE)}
    assert me(client, roy_token)["phoneNumber"] != OTHER_PHONE


# tfa_email and tfa_totp on PATCH /v1/user


def test_email_needs_a_verified_email(client, session, roy_token, caplog):
    assert errors_of(update_me(client, roy_token, authMethod="tfa_email")) == {
        ("unverified_email", AUTH_METHOD)
    }

    user_of(session).email_verified = True
    session.commit()
    response = update_me(client, roy_token, authMethod="tfa_email")

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["data"]["attributes"]["authMethod"] == "tfa_email"
    assert changed(caplog) == [("simple", "tfa_email", "user")]


def test_an_app_is_not_turned_on_by_patch(client, roy_token, caplog):
    response = update_me(client, roy_token, authMethod="tfa_totp", currentPassword=PASSWORD)

    assert errors_of(response) == {("enrolment", AUTH_METHOD)}
    assert me(client, roy_token)["authMethod"] == "simple"
    assert changed(caplog) == []


def test_an_unknown_method_is_refused(client, roy_token):
    assert errors_of(update_me(client, roy_token, authMethod="tfa_pigeon")) != set()
    assert me(client, roy_token)["authMethod"] == "simple"


# Leaving a second factor: the step-up


def test_leaving_a_second_factor_needs_the_current_password(client, roy_on_sms, caplog):
    assert errors_of(update_me(client, roy_on_sms, authMethod="simple")) == {("invalid", CURRENT_PASSWORD)}
    wrong = update_me(client, roy_on_sms, authMethod="simple", currentPassword="wrong-password")
    assert errors_of(wrong) == {("invalid", CURRENT_PASSWORD)}
    assert me(client, roy_on_sms)["authMethod"] == "tfa_sms"

    response = update_me(client, roy_on_sms, authMethod="simple", currentPassword=PASSWORD)

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["data"]["attributes"]["authMethod"] == "simple"
    assert changed(caplog) == [("tfa_sms", "simple", "user")]
    assert [name for name, _ in events(caplog)].count("login_failed") == 2  # the wrong guesses count


def test_a_code_proven_in_this_session_minutes_ago_stands_for_the_password(
    client, session, account, roy_on_sms, caplog
):
    ask_for_otp(client, account, "tfa_sms")
    code = SIX_DIGITS.search(sms.outbox[-1].text).group(1)
    access_token = log_in(client, account, otp=code)

    response = update_me(client, access_token, authMethod="simple")

    assert response.status_code == 200, response.get_json()
    assert changed(caplog) == [("tfa_sms", "simple", "user")]


def test_a_code_proven_more_than_five_minutes_ago_does_not(client, session, account, roy_on_sms):
    ask_for_otp(client, account, "tfa_sms")
    code = SIX_DIGITS.search(sms.outbox[-1].text).group(1)
    access_token = log_in(client, account, otp=code)
    family_id = access_tokens.authenticate(access_token).family_id
    row = session.get(LoginSession, family_id, populate_existing=True)
    row.second_factor_at -= timedelta(minutes=5, seconds=1)
    session.commit()

    response = update_me(client, access_token, authMethod="simple")

    assert errors_of(response) == {("invalid", CURRENT_PASSWORD)}


def test_another_sessions_code_does_not_count(client, account, roy_on_sms):
    ask_for_otp(client, account, "tfa_sms")
    log_in(client, account, otp=SIX_DIGITS.search(sms.outbox[-1].text).group(1))

    assert errors_of(update_me(client, roy_on_sms, authMethod="simple")) == {("invalid", CURRENT_PASSWORD)}


# The phone of a tfa_sms user


def test_the_customer_cannot_move_its_sms_phone_through_its_customer(client, session, roy, roy_on_sms):
    path = f"/v1/customers/{roy['id']}"

    for attributes in (
        {"phoneNumber": OTHER_PHONE},
        {"phoneNumber": OTHER_PHONE, "currentPassword": PASSWORD},
    ):
        response = client.patch(path, json=document("Customer", **attributes), headers=bearer(roy_on_sms))
        assert ("second_factor", PHONE_NUMBER) in errors_of(response)

    assert user_of(session).phone_number == PHONE


def test_staff_cannot_move_a_customers_sms_phone(client, session, owner, roy, roy_on_sms):
    response = client.patch(
        f"/v1/customers/{roy['id']}", json=document("Customer", phoneNumber=OTHER_PHONE), headers=owner
    )

    assert errors_of(response) == {("second_factor", PHONE_NUMBER)}
    assert user_of(session).phone_number == PHONE
    assert session.scalar(select(Customer.phone_number).where(Customer.email == ROY)) == PHONE


def test_staff_cannot_move_a_users_sms_phone(client, session, owner, roy_on_sms):
    user = user_of(session)

    response = client.patch(
        f"/v1/users/{user.id}", json=document("User", phoneNumber=OTHER_PHONE), headers=owner
    )

    assert response.status_code == 422, response.get_json()
    assert user_of(session).phone_number == PHONE
    # The refusal names what was sent: the phone (staff sent no authMethod).
    assert {pointer for _, pointer in errors_of(response)} == {PHONE_NUMBER}


def test_the_user_moves_its_sms_phone_with_the_new_numbers_code(client, session, roy_on_sms, caplog):
    moved = {"phoneNumber": OTHER_PHONE, "currentPassword": PASSWORD}
    assert errors_of(update_me(client, roy_on_sms, **moved)) == {("invalid", CODE)}
    old_number_code = phone_code(client, roy_on_sms, PHONE)
    assert errors_of(update_me(client, roy_on_sms, **moved, phoneVerificationCode=old_number_code)) == {
        ("invalid", CODE)
    }

    code = phone_code(client, roy_on_sms, OTHER_PHONE)
    response = update_me(client, roy_on_sms, **moved, phoneVerificationCode=code)

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["data"]["attributes"]["phoneNumber"] == OTHER_PHONE
    assert session.scalar(select(Customer.phone_number).where(Customer.email == ROY)) == OTHER_PHONE
    assert [name for name, _ in events(caplog)] == ["second_factor_phone_changed"]


def test_moving_the_sms_phone_needs_the_step_up(client, session, roy_on_sms):
    code = phone_code(client, roy_on_sms, OTHER_PHONE)

    response = update_me(client, roy_on_sms, phoneNumber=OTHER_PHONE, phoneVerificationCode=code)

    assert errors_of(response) == {("invalid", CURRENT_PASSWORD)}
    assert user_of(session).phone_number == PHONE


# Authenticator apps


def enrol(client, access_token, clock) -> tuple[str, list[str]]:
    """Set up an app for the caller; return its secret and the recovery codes."""
    started = client.post("/v1/totp_enrollments", headers=bearer(access_token))
    assert started.status_code == 201, started.get_json()
    secret = started.get_json()["data"]["attributes"]["secret"]
    body = document("TotpEnrollment", code=clock.code(secret))
    confirmed = client.patch("/v1/totp_enrollments/current", json=body, headers=bearer(access_token))
    assert confirmed.status_code == 200, confirmed.get_json()
    return secret, confirmed.get_json()["data"]["attributes"]["recoveryCodes"]


def test_an_app_is_enrolled_and_confirmed(client, session, account, roy_token, clock, caplog):
    started = client.post("/v1/totp_enrollments", headers=bearer(roy_token))

    assert started.status_code == 201, started.get_json()
    attributes = started.get_json()["data"]["attributes"]
    secret = attributes["secret"]
    assert attributes["otpauthUri"].startswith("otpauth://totp/")
    assert f"secret={secret}" in attributes["otpauthUri"]
    assert me(client, roy_token)["authMethod"] == "simple"

    body = document("TotpEnrollment", code=clock.code(secret))
    confirmed = client.patch("/v1/totp_enrollments/current", json=body, headers=bearer(roy_token))

    assert confirmed.status_code == 200, confirmed.get_json()
    codes = confirmed.get_json()["data"]["attributes"]["recoveryCodes"]
    assert len(set(codes)) == 10
    assert me(client, roy_token)["authMethod"] == "tfa_totp"
    assert [name for name, _ in events(caplog)] == ["totp_enabled"]
    ask_for_otp(client, account, "tfa_totp")
    log_in(client, account, otp=clock.code(secret))
    log_in(client, account, otp=codes[0])
    logged = app_records(caplog.records)
    assert secret not in logged and not any(code in logged for code in codes)


def test_a_wrong_code_does_not_confirm_the_app(client, roy_token, clock):
    started = client.post("/v1/totp_enrollments", headers=bearer(roy_token))
    secret = started.get_json()["data"]["attributes"]["secret"]
    right = clock.code(secret)

    body = document("TotpEnrollment", code=f"{(int(right) + 1) % 10**6:06d}")
    response = client.patch("/v1/totp_enrollments/current", json=body, headers=bearer(roy_token))

    assert errors_of(response) == {("invalid", "/data/attributes/code")}
    assert me(client, roy_token)["authMethod"] == "simple"


def test_leaving_the_app_forgets_its_secret(client, session, roy_token, clock, caplog):
    enrol(client, roy_token, clock)

    response = update_me(client, roy_token, authMethod="simple", currentPassword=PASSWORD)

    assert response.status_code == 200, response.get_json()
    user = user_of(session)
    assert (user.auth_method, user.totp_secret, user.totp_last_step) == ("simple", None, None)
    assert session.scalars(select(RecoveryCode)).all() == []
    assert [name for name, _ in events(caplog)] == ["totp_enabled", "totp_disabled", "auth_method_changed"]


def older_session(session, access_token, minutes=6) -> None:
    """Move the caller's session's start back: its login is no longer fresh."""
    family_id = access_tokens.authenticate(access_token).family_id
    row = session.get(LoginSession, family_id, populate_existing=True)
    row.created_at -= timedelta(minutes=minutes)
    session.commit()


def test_enrolling_an_app_long_after_the_login_needs_the_password(client, session, roy_token):
    older_session(session, roy_token)

    refused = client.post("/v1/totp_enrollments", headers=bearer(roy_token))
    assert errors_of(refused) == {("invalid", CURRENT_PASSWORD)}

    body = document("TotpEnrollment", currentPassword=PASSWORD)
    started = client.post("/v1/totp_enrollments", json=body, headers=bearer(roy_token))
    assert started.status_code == 201, started.get_json()


def test_replacing_the_app_needs_the_step_up_and_replaces_the_recovery_codes(
    client, session, account, roy_token, clock
):
    old_secret, old_codes = enrol(client, roy_token, clock)
    started = client.post("/v1/totp_enrollments", headers=bearer(roy_token))  # the login is fresh
    new_secret = started.get_json()["data"]["attributes"]["secret"]
    older_session(session, roy_token)

    code = clock.code(new_secret)
    body = document("TotpEnrollment", code=code)
    refused = client.patch("/v1/totp_enrollments/current", json=body, headers=bearer(roy_token))
    assert errors_of(refused) == {("invalid", CURRENT_PASSWORD)}

    body = document("TotpEnrollment", code=code, currentPassword=PASSWORD)
    confirmed = client.patch("/v1/totp_enrollments/current", json=body, headers=bearer(roy_token))
    assert confirmed.status_code == 200, confirmed.get_json()
    new_codes = confirmed.get_json()["data"]["attributes"]["recoveryCodes"]

    assert set(new_codes).isdisjoint(old_codes)
    assert len(session.scalars(select(RecoveryCode)).all()) == 10
    ask = {"grant_type": "password", "username": ROY, "password": PASSWORD, "scope": f"aid:{account.live.id}"}
    for stale in (old_codes[0], clock.code(old_secret)):
        response = client.post("/v1/token", data=ask, headers={"X-Freshcom-OTP": stale})
        assert response.status_code == 400, response.get_json()
    log_in(client, account, otp=new_codes[0])
    log_in(client, account, otp=clock.code(new_secret))


# Staff: the support reset


@pytest.fixture
def ann(account, session) -> User:
    """A managed staff user of the account."""
    user = users.create_managed_user(
        account.live,
        username="ann@acme.test",
        email="ann@acme.test",
        password="ann-password-1",
        role="manager",
    )
    session.commit()
    return user


@pytest.mark.parametrize("whose", ["customer", "staff"])
def test_staff_set_a_user_back_to_simple_and_the_secret_is_forgotten(
    client, session, account, owner, roy, ann, clock, caplog, whose
):
    username, password = (ROY, PASSWORD) if whose == "customer" else (ann.username, "ann-password-1")
    access_token = log_in(client, account, username, password)
    enrol(client, access_token, clock)
    user = user_of(session, username)
    assert user.totp_secret is not None
    caplog.clear()

    response = client.patch(f"/v1/users/{user.id}", json=document("User", authMethod="simple"), headers=owner)

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["data"]["attributes"]["authMethod"] == "simple"
    user = user_of(session, username)
    assert (user.auth_method, user.totp_secret, user.totp_last_step) == ("simple", None, None)
    assert session.scalars(select(RecoveryCode).where(RecoveryCode.user_id == user.id)).all() == []
    assert changed(caplog) == [("tfa_totp", "simple", "staff")]
    assert "totp_disabled" in [name for name, _ in events(caplog)]
    log_in(client, account, username, password)  # the password alone, again


def test_staff_reset_a_customer_who_lost_its_phone(client, session, account, owner, roy_on_sms, caplog):
    user = user_of(session)

    response = client.patch(f"/v1/users/{user.id}", json=document("User", authMethod="simple"), headers=owner)

    assert response.status_code == 200, response.get_json()
    assert user_of(session).auth_method == "simple"
    assert changed(caplog) == [("tfa_sms", "simple", "staff")]
    log_in(client, account)


@pytest.mark.parametrize("method", ["tfa_sms", "tfa_totp"])
def test_staff_may_not_turn_on_sms_or_an_app(client, session, owner, roy, method, caplog):
    user = user_of(session)
    user.phone_number = PHONE
    session.commit()

    response = client.patch(f"/v1/users/{user.id}", json=document("User", authMethod=method), headers=owner)

    assert errors_of(response) == {("forbidden", AUTH_METHOD)}
    assert user_of(session).auth_method == "simple"
    assert changed(caplog) == []


def test_staff_below_user_managers_may_not_reset(client, session, staff, roy_on_sms):
    user = user_of(session)

    response = client.patch(
        f"/v1/users/{user.id}",
        json=document("User", authMethod="simple"),
        headers=staff("support_specialist"),
    )

    assert response.status_code == 403, response.get_json()
    assert user_of(session).auth_method == "tfa_sms"


def test_every_change_is_a_security_event(client, session, account, roy_token, owner, clock, caplog):
    with caplog.at_level(logging.WARNING, logger=SECURITY):
        code = phone_code(client, roy_token)
        update_me(client, roy_token, authMethod="tfa_sms", phoneNumber=PHONE, phoneVerificationCode=code)
        code = phone_code(client, roy_token, OTHER_PHONE)
        update_me(
            client, roy_token, phoneNumber=OTHER_PHONE, phoneVerificationCode=code, currentPassword=PASSWORD
        )
        update_me(client, roy_token, authMethod="simple", currentPassword=PASSWORD)
        enrol(client, roy_token, clock)
        user = user_of(session)
        client.patch(f"/v1/users/{user.id}", json=document("User", authMethod="simple"), headers=owner)

    assert [name for name, _ in events(caplog)] == [
        "auth_method_changed",
        "second_factor_phone_changed",
        "auth_method_changed",
        "totp_enabled",
        "totp_disabled",
        "auth_method_changed",
    ]
    assert changed(caplog) == [
        ("simple", "tfa_sms", "user"),
        ("tfa_sms", "simple", "user"),
        ("tfa_totp", "simple", "staff"),
    ]
    for _, fields in events(caplog):
        assert fields["user_id"] == str(user.id) and fields["account_id"] == str(account.live.id)
