"""Second factors (services/second_factors.py): the code step of a login, the codes sent by
email and SMS, phone verification, and who may change a user's authMethod to what."""

import logging
import re
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from sqlalchemy import select, update

from freshcom_customers.errors import InvalidCredentials, ValidationFailed, WrongPassword
from freshcom_customers.models import LoginSession, OneTimeToken, RecoveryCode, User
from freshcom_customers.models.base import utcnow
from freshcom_customers.services import second_factors, sms, totp, users
from freshcom_customers.services.second_factors import SecondFactorRequired, WrongSecondFactor

PHONE, OTHER_PHONE = "+14155550100", "+447700900123"
EMAIL, PASSWORD = "tess@example.com", "tess-password-1"
SIX_DIGITS = re.compile(r"\b([0-9]{6})\b")


@pytest.fixture(autouse=True)
def empty_outbox():
    sms.outbox.clear()
    yield
    sms.outbox.clear()


@pytest.fixture
def user(account, session) -> User:
    user = users.create_managed_user(
        account.live, username=EMAIL, email=EMAIL, password=PASSWORD, role="manager", phone_number=PHONE
    )
    user.email_verified = True
    session.commit()
    return user


def texted() -> list[tuple[str, str]]:
    """(number, code) of each SMS sent."""
    return [(message.to, SIX_DIGITS.search(message.text).group(1)) for message in sms.outbox]


def login_codes(session, user) -> list[OneTimeToken]:
    query = select(OneTimeToken).where(OneTimeToken.purpose == "login_otp", OneTimeToken.user_id == user.id)
    return session.scalars(query).all()


def field_errors(error: pytest.ExceptionInfo) -> set:
    return {(e.field, e.code) for e in error.value.errors}


def security_events(caplog) -> list[tuple[str, dict]]:
    return [(r.security_event, r.fields) for r in caplog.records if hasattr(r, "security_event")]


# prove(): the code step of a login


def test_a_simple_user_needs_no_code(user):
    second_factors.prove(user, None)
    second_factors.prove(user, "whatever")

    assert sms.outbox == []


def test_a_missing_sms_code_is_texted_and_asked_for(user, session):
    user.auth_method = "tfa_sms"

    with pytest.raises(SecondFactorRequired) as asked:
        second_factors.prove(user, None)

    assert asked.value.method == "tfa_sms"
    ((to, code),) = texted()
    assert to == PHONE
    assert "Acme" in sms.outbox[0].text
    (token,) = login_codes(session, user)
    assert code not in token.token_hash
    second_factors.prove(user, code)  # the code texted passes


@pytest.mark.parametrize("blank", [None, "", "   "])
def test_a_blank_code_is_a_missing_one(user, blank):
    user.auth_method = "tfa_sms"

    with pytest.raises(SecondFactorRequired):
        second_factors.prove(user, blank)

    assert len(sms.outbox) == 1


def test_a_missing_email_code_is_mailed_when_the_transaction_commits(user, session, mailbox):
    user.auth_method = "tfa_email"

    with pytest.raises(SecondFactorRequired) as asked:
        second_factors.prove(user, None)
    session.commit()

    assert asked.value.method == "tfa_email"
    (message,) = mailbox.wait_for(1)
    assert message["To"] == EMAIL
    (code,) = SIX_DIGITS.findall(message["Subject"])
    assert sms.outbox == []
    second_factors.prove(user, code)


def test_an_app_user_is_sent_nothing(user, session, mailbox):
    user.auth_method = "tfa_totp"

    with pytest.raises(SecondFactorRequired) as asked:
        second_factors.prove(user, None)
    session.commit()

    assert asked.value.method == "tfa_totp"
    assert mailbox.settled() == [] and sms.outbox == []
    assert login_codes(session, user) == []


@pytest.mark.parametrize("method", ["tfa_email", "tfa_sms", "tfa_totp"])
def test_a_wrong_code_is_a_failed_login(user, method):
    user.auth_method = method

    with pytest.raises(WrongSecondFactor) as refused:
        second_factors.prove(user, "123456")

    assert isinstance(refused.value, InvalidCredentials)  # the lockout counts it
    assert refused.value.method == method
    assert sms.outbox == []  # a wrong code sends none


def test_a_sent_code_is_single_use(user):
    user.auth_method = "tfa_sms"
    with pytest.raises(SecondFactorRequired):
        second_factors.prove(user, None)
    ((_, code),) = texted()

    second_factors.prove(user, code)

    with pytest.raises(WrongSecondFactor):
        second_factors.prove(user, code)


def test_a_sent_code_expires_after_five_minutes(user, session):
    user.auth_method = "tfa_sms"
    with pytest.raises(SecondFactorRequired):
        second_factors.prove(user, None)
    ((_, code),) = texted()
    (token,) = login_codes(session, user)
    assert abs(token.expires_at - utcnow() - timedelta(minutes=5)) < timedelta(seconds=5)

    session.execute(
        update(OneTimeToken)
        .where(OneTimeToken.id == token.id)
        .values(expires_at=utcnow() - timedelta(seconds=1))
    )

    with pytest.raises(WrongSecondFactor):
        second_factors.prove(user, code)


def test_an_app_code_passes_once(user, session, monkeypatch):
    now = datetime(2025, 1, 1, 12, 0, 15, tzinfo=UTC)
    monkeypatch.setattr(totp, "_now", lambda: now)
    secret, _ = totp.start_enrolment(user, issuer="Acme")
    totp.confirm(user, pyotp.TOTP(secret).at(now))
    now += timedelta(seconds=30)
    code = pyotp.TOTP(secret).at(now)

    second_factors.prove(user, code)

    with pytest.raises(WrongSecondFactor):
        second_factors.prove(user, code)


# Sending login codes


def test_a_second_request_within_30_seconds_sends_nothing(user, session):
    user.auth_method = "tfa_sms"

    second_factors.send_login_code(user)
    second_factors.send_login_code(user)

    assert len(sms.outbox) == 1
    assert len(login_codes(session, user)) == 1


def test_after_30_seconds_a_new_code_replaces_the_old_one(user, session):
    user.auth_method = "tfa_sms"
    second_factors.send_login_code(user)
    session.execute(
        update(OneTimeToken)
        .where(OneTimeToken.purpose == "login_otp")
        .values(inserted_at=utcnow() - timedelta(seconds=31))
    )

    second_factors.send_login_code(user)

    (_, old), (_, new) = texted()
    assert len(login_codes(session, user)) == 1
    with pytest.raises(WrongSecondFactor):
        second_factors.prove(user, old)
    second_factors.prove(user, new)


def test_a_used_code_does_not_hold_back_the_next_one(user):
    user.auth_method = "tfa_sms"
    second_factors.send_login_code(user)
    second_factors.prove(user, texted()[0][1])

    second_factors.send_login_code(user)

    assert len(sms.outbox) == 2


# Phone verification


def test_a_phone_code_is_texted_to_the_number_given(user, session):
    second_factors.send_phone_code(user, OTHER_PHONE)

    ((to, code),) = texted()
    assert to == OTHER_PHONE
    token = session.scalar(select(OneTimeToken).where(OneTimeToken.purpose == "phone_verification"))
    assert token.payload == {"phone_number": OTHER_PHONE}
    assert code not in token.token_hash


@pytest.mark.parametrize(
    "number", ["4155550100", "+0155550100", "+1 415 555 0100", "+1415", "+1234567890123456"]
)
def test_a_phone_code_needs_an_e164_number(user, number):
    with pytest.raises(ValidationFailed) as refused:
        second_factors.send_phone_code(user, number)

    assert field_errors(refused) == {("phone_number", "invalid")}
    assert sms.outbox == []


def test_no_phone_code_without_sms(app, user, monkeypatch):
    monkeypatch.setitem(app.config, "SMS_BACKEND", None)
    monkeypatch.setitem(app.config, "ENV", "production")

    with pytest.raises(ValidationFailed) as refused:
        second_factors.send_phone_code(user, PHONE)

    assert field_errors(refused) == {("phone_number", "unavailable")}


# change_auth_method(): the user itself


def phone_code(user, number=PHONE) -> str:
    second_factors.send_phone_code(user, number)
    return texted()[-1][1]


def test_the_user_turns_sms_on_with_the_code_of_its_phone(user, caplog):
    code = phone_code(user)
    caplog.clear()  # the log backend's SMS, which holds the code

    with caplog.at_level(logging.WARNING, logger="freshcom_customers.security"):
        proven = second_factors.change_auth_method(
            user,
            {"auth_method": "tfa_sms", "phone_verification_code": code, "current_password": PASSWORD},
            session_id=None,
        )

    assert proven is True and user.auth_method == "tfa_sms"
    assert security_events(caplog) == [
        (
            "auth_method_changed",
            {
                "user_id": str(user.id),
                "account_id": str(user.account_id),
                "previous": "simple",
                "method": "tfa_sms",
                "by": "user",
            },
        )
    ]
    assert code not in caplog.text


TURN_ON_SMS = {"auth_method": "tfa_sms", "current_password": PASSWORD}


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


@pytest.mark.parametrize(
    "attrs",
    [
        pytest.param(lambda code: {}, id="no code"),
        pytest.param(lambda code: {"phone_verification_code": wrong(code)}, id="wrong code"),
        pytest.param(
            lambda code: {"phone_verification_code": code, "phone_number": OTHER_PHONE},
            id="the code of the old number for a new one",
        ),
    ],
)
def test_sms_needs_the_code_texted_to_that_number(user, attrs):
    code = phone_code(user)

    with pytest.raises(ValidationFailed) as refused:
        second_factors.change_auth_method(user, {**TURN_ON_SMS, **attrs(code)}, session_id=None)

    assert field_errors(refused) == {("phone_verification_code", "invalid")}
    assert user.auth_method == "simple"


def test_a_code_for_another_number_does_not_prove_this_one(user):
    code = phone_code(user, OTHER_PHONE)

    with pytest.raises(ValidationFailed) as refused:
        second_factors.change_auth_method(
            user, {**TURN_ON_SMS, "phone_verification_code": code}, session_id=None
        )

    assert field_errors(refused) == {("phone_verification_code", "invalid")}
    assert user.auth_method == "simple"


def test_sms_needs_a_phone_number(user):
    user.phone_number = None

    with pytest.raises(ValidationFailed) as refused:
        second_factors.change_auth_method(user, TURN_ON_SMS, session_id=None)

    assert field_errors(refused) == {("phone_number", "invalid")}


def test_email_needs_a_verified_email(user):
    user.email_verified = False

    with pytest.raises(ValidationFailed) as refused:
        second_factors.change_auth_method(user, {"auth_method": "tfa_email"}, session_id=None)

    assert field_errors(refused) == {("auth_method", "unverified_email")}
    assert user.auth_method == "simple"


def test_email_is_not_turned_on_along_with_a_new_email(user):
    with pytest.raises(ValidationFailed) as refused:
        second_factors.change_auth_method(
            user, {"auth_method": "tfa_email", "email": "new@example.com"}, session_id=None
        )

    assert field_errors(refused) == {("auth_method", "unverified_email")}


def test_a_verified_email_turns_email_on(user, session, mailbox):
    attrs = {"auth_method": "tfa_email", "current_password": PASSWORD}

    assert second_factors.change_auth_method(user, attrs, session_id=None) is False
    session.commit()

    assert user.auth_method == "tfa_email"
    (notice,) = mailbox.wait_for(1)  # if it was not the user, the user knows
    assert notice["To"] == EMAIL


def test_turning_a_second_factor_on_needs_the_password_or_a_fresh_login(user, session):
    attrs = {"auth_method": "tfa_email"}
    old = session_of(user, session, second_factor_ago=None, created_ago=timedelta(minutes=5, seconds=1))
    fresh = session_of(user, session, second_factor_ago=None, created_ago=timedelta(minutes=4))

    for session_id in (None, old.id):
        with pytest.raises(WrongPassword):
            second_factors.change_auth_method(
                user, {**attrs, "current_password": "wrong"}, session_id=session_id
            )
        assert user.auth_method == "simple"
    second_factors.change_auth_method(user, attrs, session_id=fresh.id)

    assert user.auth_method == "tfa_email"


def test_an_app_is_turned_on_only_by_its_enrolment(user):
    with pytest.raises(ValidationFailed) as refused:
        second_factors.change_auth_method(user, {"auth_method": "tfa_totp"}, session_id=None)

    assert field_errors(refused) == {("auth_method", "enrolment")}


def test_an_unknown_method_is_refused(user):
    with pytest.raises(ValidationFailed) as refused:
        second_factors.change_auth_method(user, {"auth_method": "tfa_pigeon"}, session_id=None)

    assert field_errors(refused) == {("auth_method", "inclusion")}


def test_no_change_is_no_event(user, caplog):
    with caplog.at_level(logging.WARNING, logger="freshcom_customers.security"):
        assert second_factors.change_auth_method(user, {"auth_method": "simple"}, session_id=None) is False
        assert (
            second_factors.change_auth_method(user, {"phone_number": OTHER_PHONE}, session_id=None) is False
        )

    assert security_events(caplog) == []


def test_leaving_a_second_factor_needs_the_current_password(user):
    user.auth_method = "tfa_email"

    for wrong in (None, "", "wrong-password"):
        with pytest.raises(WrongPassword):
            second_factors.change_auth_method(
                user, {"auth_method": "simple", "current_password": wrong}, session_id=None
            )
        assert user.auth_method == "tfa_email"

    second_factors.change_auth_method(
        user, {"auth_method": "simple", "current_password": PASSWORD}, session_id=None
    )
    assert user.auth_method == "simple"


def session_of(
    user, session, *, second_factor_ago: timedelta | None, created_ago: timedelta = timedelta(minutes=30)
) -> LoginSession:
    """A session of the user that began created_ago and proved a second factor second_factor_ago."""
    row = LoginSession(
        account_id=user.account_id, user_id=user.id, face="oauth", created_at=utcnow() - created_ago
    )
    if second_factor_ago is not None:
        row.second_factor_at = utcnow() - second_factor_ago
    session.add(row)
    session.flush()
    return row


def test_a_second_factor_proven_minutes_ago_stands_for_the_password(user, session):
    user.auth_method = "tfa_email"
    recent = session_of(user, session, second_factor_ago=timedelta(minutes=4))

    second_factors.change_auth_method(user, {"auth_method": "simple"}, session_id=recent.id)

    assert user.auth_method == "simple"


@pytest.mark.parametrize(
    "ago", [timedelta(minutes=5, seconds=1), None], ids=["more than five minutes ago", "never"]
)
def test_an_older_session_needs_the_password(user, session, ago):
    user.auth_method = "tfa_email"
    stale = session_of(user, session, second_factor_ago=ago)

    with pytest.raises(WrongPassword):
        second_factors.change_auth_method(user, {"auth_method": "simple"}, session_id=stale.id)


def test_an_ended_session_or_another_users_proves_nothing(user, account, session):
    user.auth_method = "tfa_email"
    ended = session_of(user, session, second_factor_ago=timedelta(minutes=1))
    ended.ended_at = utcnow()
    theirs = session_of(account.owner, session, second_factor_ago=timedelta(minutes=1))

    for row in (ended, theirs):
        with pytest.raises(WrongPassword):
            second_factors.change_auth_method(user, {"auth_method": "simple"}, session_id=row.id)


def test_moving_sms_to_a_new_phone_needs_its_code_and_the_step_up(user, caplog):
    user.auth_method = "tfa_sms"
    code = phone_code(user, OTHER_PHONE)
    attrs = {"phone_number": OTHER_PHONE, "phone_verification_code": code}

    with pytest.raises(WrongPassword):
        second_factors.change_auth_method(user, attrs, session_id=None)
    with pytest.raises(ValidationFailed) as refused:
        second_factors.change_auth_method(
            user, {"phone_number": OTHER_PHONE, "current_password": PASSWORD}, session_id=None
        )
    assert field_errors(refused) == {("phone_verification_code", "invalid")}

    with caplog.at_level(logging.WARNING, logger="freshcom_customers.security"):
        proven = second_factors.change_auth_method(
            user, {**attrs, "current_password": PASSWORD}, session_id=None
        )

    assert proven is True
    fields = {"user_id": str(user.id), "account_id": str(user.account_id)}
    assert security_events(caplog) == [("second_factor_phone_changed", fields)]


def test_leaving_the_app_forgets_its_secret(user, session, monkeypatch):
    now = datetime(2025, 1, 1, 12, 0, 15, tzinfo=UTC)
    monkeypatch.setattr(totp, "_now", lambda: now)
    secret, _ = totp.start_enrolment(user, issuer="Acme")
    totp.confirm(user, pyotp.TOTP(secret).at(now))

    second_factors.change_auth_method(
        user, {"auth_method": "simple", "current_password": PASSWORD}, session_id=None
    )

    assert (user.auth_method, user.totp_secret, user.totp_last_step) == ("simple", None, None)
    assert session.scalars(select(RecoveryCode)).all() == []


# change_auth_method(): staff


def test_staff_set_a_user_back_to_simple_without_its_password(user, session, monkeypatch, caplog):
    now = datetime(2025, 1, 1, 12, 0, 15, tzinfo=UTC)
    monkeypatch.setattr(totp, "_now", lambda: now)
    secret, _ = totp.start_enrolment(user, issuer="Acme")
    totp.confirm(user, pyotp.TOTP(secret).at(now))
    caplog.clear()

    with caplog.at_level(logging.WARNING, logger="freshcom_customers.security"):
        second_factors.change_auth_method(user, {"auth_method": "simple"}, session_id=None, by_staff=True)

    assert (user.auth_method, user.totp_secret) == ("simple", None)
    assert session.scalars(select(RecoveryCode)).all() == []
    events = security_events(caplog)
    assert [name for name, _ in events] == ["totp_disabled", "auth_method_changed"]
    assert events[1][1]["by"] == "staff" and events[1][1]["previous"] == "tfa_totp"


def test_staff_may_turn_email_on_for_a_verified_email(user):
    second_factors.change_auth_method(user, {"auth_method": "tfa_email"}, session_id=None, by_staff=True)

    assert user.auth_method == "tfa_email"


@pytest.mark.parametrize("method", ["tfa_sms", "tfa_totp"])
def test_staff_may_not_turn_on_sms_or_an_app(user, method):
    code = phone_code(user)

    with pytest.raises(ValidationFailed) as refused:
        second_factors.change_auth_method(
            user, {"auth_method": method, "phone_verification_code": code}, session_id=None, by_staff=True
        )

    assert field_errors(refused) == {("auth_method", "forbidden")}
    assert user.auth_method == "simple"
