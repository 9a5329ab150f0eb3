"""Two-factor logins at the token endpoint (API.md 11): the right password asks for a code,
which comes by email (a real SMTP server), by SMS (the log backend's outbox) or from an
authenticator app, and the same request with the code gets the tokens.

Each test runs for the three methods; the TOTP clock (services/totp._now) is a fake one, so
that each code is of a known time step and no test waits for the next one.
"""

import re
from dataclasses import dataclass, field
from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import select, update

from freshcom_customers.models import LoginSession, OneTimeToken, User, hash_secret
from freshcom_customers.models.base import utcnow
from freshcom_customers.services import access_tokens, sms, totp
from tests.clocks import TotpClock
from tests.conftest import LOOSE_THROTTLING, REGISTRATION, errors_of
from tests.logcapture import app_factory
from tests.mailbox import Mailbox, free_port
from tests.oauth2.conftest import INVALID_GRANT, PASSWORD, USERNAME, assert_no_store

METHODS = ("tfa_email", "tfa_sms", "tfa_totp")
SENT = ("tfa_email", "tfa_sms")
OTP_REQUIRED = {
    "error": "invalid_request",
    "error_description": "OTP is invalid, please set OTP using the X-Freshcom-OTP header.",
}
LOCKED = "Too many failed attempts; try again later."
PHONE = "+14155550100"
SHOP = "https://shop.example.com"
SIX_DIGITS = re.compile(r"\b([0-9]{6})\b")
SAM, SAM_PASSWORD = "sam@example.com", "sam-password-1"


@dataclass
class Factor:
    """Roy with a second factor, and where its codes arrive."""

    method: str
    user: User
    mailbox: Mailbox
    clock: TotpClock
    secret: str | None = None
    recovery_codes: list[str] = field(default_factory=list)

    def sent(self) -> list[str]:
        """The login codes sent to Roy so far, oldest first (an authenticator app is sent none)."""
        if self.method == "tfa_email":
            messages = self.mailbox.settled()
            return [code_in(m.get_body(("plain",)).get_content()) for m in messages if is_login_code(m)]
        return [code_in(message.text) for message in sms.outbox if message.to == PHONE]

    def messages(self) -> int:
        """How many emails and SMS the app sent in all (to anyone, of any kind)."""
        return len(self.mailbox.settled()) + len(sms.outbox)

    def code(self) -> str:
        """A code to give now: the last one sent, or the app's code of the next time step."""
        if self.method == "tfa_totp":
            self.clock.advance(30)
            return pyotp.TOTP(self.secret).at(self.clock.now)
        return self.sent()[-1]


def is_login_code(message) -> bool:
    return message["Subject"].startswith("Your login code for")


def code_in(text: str) -> str:
    (code,) = SIX_DIGITS.findall(text)
    return code


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def roy_user(session) -> User:
    return session.scalar(select(User).where(User.username == USERNAME))


@pytest.fixture
def clock(monkeypatch) -> TotpClock:
    return TotpClock(monkeypatch)


@pytest.fixture(params=METHODS)
def factor(request, session, roy, mailbox, clock) -> Factor:
    """Roy with each method in turn: a verified email, a phone, or a confirmed authenticator app."""
    sms.outbox.clear()
    user = roy_user(session)
    factor = Factor(request.param, user, mailbox, clock)
    if factor.method == "tfa_totp":
        factor.secret, _ = totp.start_enrolment(user, issuer="Acme")
        factor.recovery_codes = totp.confirm(user, pyotp.TOTP(factor.secret).at(clock.now))
    else:
        user.email_verified = True
        user.phone_number = PHONE
        user.auth_method = factor.method
    session.commit()
    mailbox.settled()  # a notice of the new second factor, maybe: not a login code
    mailbox.handler.messages.clear()
    sms.outbox.clear()
    return factor


def login(client, account, password=PASSWORD, otp=None, username=USERNAME, body_otp=None):
    """POST the password grant; otp goes in the X-Freshcom-OTP header, body_otp in the form."""
    data = {"grant_type": "password", "username": username, "password": password}
    if body_otp is not None:
        data["otp"] = body_otp
    data["scope"] = f"aid:{account.live.id}"
    headers = {"X-Freshcom-OTP": otp} if otp is not None else {}
    return client.post("/v1/token", data=data, headers=headers)


def assert_otp_required(response, method):
    assert response.status_code == 400, response.get_json()
    assert response.get_json() == OTP_REQUIRED
    assert response.headers["X-Freshcom-OTP"] == f"required; auth_method={method}"
    assert_no_store(response)


def assert_tokens(response) -> dict:
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["refresh_token"].startswith("urt-live-")
    assert "X-Freshcom-OTP" not in response.headers
    assert access_tokens.authenticate(body["access_token"]).role == "customer"
    return body


# Asking for the code


def test_the_right_password_alone_asks_for_the_code_and_sends_it(client, account, factor):
    assert_otp_required(login(client, account), factor.method)

    if factor.method == "tfa_email":
        (message,) = factor.mailbox.settled()
        assert message["To"] == USERNAME
        assert is_login_code(message) and "Acme" in message["Subject"]
        text, html = Mailbox.parts(message)
        assert code_in(text) in html and code_in(text) in message["Subject"]
        assert "5 minutes" in text
    elif factor.method == "tfa_sms":
        assert factor.mailbox.settled() == []
        (message,) = sms.outbox
        assert message.to == PHONE
        assert "Acme" in message.text and "5 minutes" in message.text
        assert SIX_DIGITS.search(message.text)
    else:
        assert factor.messages() == 0  # the app has the code: nothing is sent


def test_the_code_in_the_header_gets_the_tokens(client, account, factor):
    assert_otp_required(login(client, account), factor.method)

    tokens = assert_tokens(login(client, account, otp=factor.code()))

    assert tokens["scope"] == f"aid:{account.live.id}"
    assert len(factor.sent()) == (1 if factor.method in SENT else 0)


def test_the_code_in_the_body_gets_the_tokens(client, account, factor):
    assert_otp_required(login(client, account), factor.method)

    assert_tokens(login(client, account, body_otp=factor.code()))


def test_the_code_in_a_json_body_gets_the_tokens(client, account, factor):
    assert_otp_required(login(client, account), factor.method)
    body = {
        "grant_type": "password",
        "username": USERNAME,
        "password": PASSWORD,
        "scope": f"aid:{account.live.id}",
        "otp": factor.code(),
    }

    assert_tokens(client.post("/v1/token", json=body))


def test_a_wrong_code_gets_the_same_answer_and_no_new_message(client, account, factor):
    assert_otp_required(login(client, account), factor.method)
    sent = factor.messages()
    right = factor.code()

    for bad in (wrong(right), "000000" if right != "000000" else "111111", "12345", "not-a-code"):
        assert_otp_required(login(client, account, otp=bad), factor.method)

    assert factor.messages() == sent
    assert_tokens(login(client, account, otp=right))  # wrong codes do not spend the right one


def test_a_code_works_once(client, account, factor):
    assert_otp_required(login(client, account), factor.method)
    code = factor.code()
    assert_tokens(login(client, account, otp=code))

    assert_otp_required(login(client, account, otp=code), factor.method)
    if factor.method == "tfa_totp":
        factor.clock.advance(30)  # the code's step is still within the drift allowed
        assert_otp_required(login(client, account, otp=code), factor.method)


@pytest.mark.parametrize("factor", SENT, indirect=True)
def test_a_sent_code_lives_five_minutes(client, session, account, factor):
    assert_otp_required(login(client, account), factor.method)
    (token,) = session.scalars(
        select(OneTimeToken).where(
            OneTimeToken.purpose == "login_otp", OneTimeToken.user_id == factor.user.id
        )
    )
    assert abs(token.expires_at - token.inserted_at - timedelta(minutes=5)) < timedelta(seconds=1)
    code = factor.code()
    assert code not in token.token_hash and token.token_hash != hash_secret(code)  # an HMAC, keyed

    session.execute(
        update(OneTimeToken)
        .where(OneTimeToken.id == token.id)
        .values(expires_at=utcnow() - timedelta(seconds=1))
    )
    session.commit()

    assert_otp_required(login(client, account, otp=factor.code()), factor.method)


@pytest.mark.parametrize("factor", ["tfa_totp"], indirect=True)
def test_an_app_code_of_two_steps_ago_is_refused(client, account, factor):
    factor.clock.advance(300)
    stale = pyotp.TOTP(factor.secret).at(factor.clock.now - timedelta(seconds=60))

    assert_otp_required(login(client, account, otp=stale), factor.method)
    assert_tokens(login(client, account, otp=pyotp.TOTP(factor.secret).at(factor.clock.now)))


@pytest.mark.parametrize("factor", ["tfa_totp"], indirect=True)
def test_a_recovery_code_logs_in_once_in_place_of_the_app(client, account, factor):
    recovery = factor.recovery_codes[0]

    assert_tokens(login(client, account, otp=recovery.lower()))

    assert_otp_required(login(client, account, otp=recovery), factor.method)
    assert_tokens(login(client, account, otp=factor.recovery_codes[1]))


# Asking twice


@pytest.mark.parametrize("factor", SENT, indirect=True)
def test_a_second_request_within_30_seconds_sends_no_second_message(client, session, account, factor):
    assert_otp_required(login(client, account), factor.method)
    assert_otp_required(login(client, account), factor.method)
    (first,) = factor.sent()

    session.execute(
        update(OneTimeToken)
        .where(OneTimeToken.purpose == "login_otp", OneTimeToken.user_id == factor.user.id)
        .values(inserted_at=utcnow() - timedelta(seconds=31))
    )
    session.commit()
    assert_otp_required(login(client, account), factor.method)
    old, new = factor.sent()

    assert old == first
    assert_otp_required(login(client, account, otp=old), factor.method)  # the new code replaced it
    assert_tokens(login(client, account, otp=new))


@pytest.mark.parametrize("factor", SENT, indirect=True)
def test_the_code_sent_first_stays_good_when_asked_again(client, account, factor):
    assert_otp_required(login(client, account), factor.method)
    code = factor.code()
    assert_otp_required(login(client, account), factor.method)

    assert_tokens(login(client, account, otp=code))
    assert len(factor.sent()) == 1


def test_a_standard_user_gives_its_code_without_a_scope(client, session, account, mailbox):
    owner = account.owner
    owner.email_verified = True
    owner.auth_method = "tfa_email"
    session.commit()
    data = {"grant_type": "password", "username": owner.username, "password": account.owner_password}

    assert_otp_required(client.post("/v1/token", data=data), "tfa_email")
    (message,) = [m for m in mailbox.settled() if is_login_code(m)]
    assert message["To"] == owner.email and "Freshcom" in message["Subject"]  # no account of its own
    response = client.post("/v1/token", data=data, headers={"X-Freshcom-OTP": code_in(message["Subject"])})

    assert response.status_code == 200, response.get_json()
    principal = access_tokens.authenticate(response.get_json()["access_token"])
    assert (principal.role, principal.account.id) == ("owner", account.live.id)


# A wrong password says nothing of the second factor


def test_a_wrong_password_is_the_generic_invalid_grant_of_a_simple_user(client, account, register, factor):
    register(email=SAM, password=SAM_PASSWORD)
    simple = login(client, account, password="wrong-password", username=SAM)
    sent = factor.messages()

    app_code = [factor.code()] if factor.method == "tfa_totp" else []  # the right one, even
    for otp in (None, "123456", *app_code):
        response = login(client, account, password="wrong-password", otp=otp)
        assert (response.status_code, response.get_json()) == (400, INVALID_GRANT)
        assert (response.status_code, response.get_json()) == (simple.status_code, simple.get_json())
        assert "X-Freshcom-OTP" not in response.headers
        assert sorted(response.headers.keys()) == sorted(simple.headers.keys())

    assert factor.messages() == sent == 0


def test_a_suspended_two_factor_user_gets_invalid_grant_without_a_code(client, session, account, factor):
    factor.user.status = "suspended"
    session.commit()

    response = login(client, account)

    assert (response.status_code, response.get_json()) == (400, INVALID_GRANT)
    assert "X-Freshcom-OTP" not in response.headers
    assert factor.messages() == 0


# Wrong codes count toward the lockout


class ThrottleClock:
    def __init__(self):
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def throttled(app, app_config, smtp_server):
    """An app with throttling on, the given settings, and mail to the test's SMTP server."""
    throttle_clock = ThrottleClock()
    with app_factory(app, app_config) as make_app:

        def throttled(**settings):
            mail_to = {"MAIL_SERVER": smtp_server.hostname, "MAIL_PORT": smtp_server.port}
            other = make_app(**{**LOOSE_THROTTLING, **mail_to, **settings})
            other.extensions["freshcom_throttle"].clock = throttle_clock
            return other.test_client(), throttle_clock

        yield throttled


def test_wrong_codes_lock_out_and_then_even_the_right_code_waits(account, factor, throttled):
    client, throttle_clock = throttled(LOCKOUT_THRESHOLD=3, LOCKOUT_BASE_DELAY=60)
    for _ in range(5):  # asking for a code is no failed attempt
        assert_otp_required(login(client, account), factor.method)
    right = factor.code()

    for _ in range(3):
        assert_otp_required(login(client, account, otp=wrong(right)), factor.method)

    locked = login(client, account, otp=right)
    assert locked.status_code == 400
    assert locked.get_json() == {"error": "invalid_grant", "error_description": LOCKED}
    assert 1 <= int(locked.headers["Retry-After"]) <= 60
    assert "X-Freshcom-OTP" not in locked.headers
    assert login(client, account).get_json()["error_description"] == LOCKED  # no code is sent either
    assert len(factor.sent()) == (1 if factor.method in SENT else 0)

    throttle_clock.now += 60
    assert_tokens(login(client, account, otp=right))


def test_asking_for_a_code_does_not_clear_the_failures(account, factor, throttled):
    client, _ = throttled(LOCKOUT_THRESHOLD=3, LOCKOUT_BASE_DELAY=60)
    assert_otp_required(login(client, account), factor.method)
    right = factor.code()

    assert login(client, account, password="wrong-password").status_code == 400  # failures add up,
    assert_otp_required(login(client, account, otp=wrong(right)), factor.method)  # whichever was wrong
    assert_otp_required(login(client, account), factor.method)  # asking again clears nothing
    assert_otp_required(login(client, account, otp=wrong(right)), factor.method)

    assert login(client, account, otp=right).get_json()["error_description"] == LOCKED


def test_a_login_with_its_code_clears_the_failures(account, factor, throttled):
    client, _ = throttled(LOCKOUT_THRESHOLD=3, LOCKOUT_BASE_DELAY=60)
    assert_otp_required(login(client, account), factor.method)
    for _ in range(2):
        right = factor.code()
        for _ in range(2):
            assert_otp_required(login(client, account, otp=wrong(right)), factor.method)
        assert_tokens(login(client, account, otp=right))
        assert_otp_required(login(client, account), factor.method)  # a new code, for the next round


def test_wrong_codes_are_login_failures_in_the_security_log(account, factor, throttled, caplog):
    client, _ = throttled(LOCKOUT_THRESHOLD=2)
    assert_otp_required(login(client, account), factor.method)
    right = factor.code()
    caplog.clear()  # the log backend's SMS, which holds the code, is behind us

    with caplog.at_level("WARNING", logger="freshcom_customers.security"):
        for _ in range(2):
            assert_otp_required(login(client, account, otp=wrong(right)), factor.method)

    events = [r.security_event for r in caplog.records if hasattr(r, "security_event")]
    assert events == ["login_failed", "login_failed", "lockout"]
    assert right not in caplog.text and wrong(right) not in caplog.text


# The session of a login with a code


def session_of(session, access_token) -> LoginSession:
    family_id = access_tokens.authenticate(access_token).family_id
    query = select(LoginSession).where(LoginSession.id == family_id)
    return session.scalar(query.execution_options(populate_existing=True))


def change_password(client, access_token, **attributes):
    body = {"data": {"type": "User", "attributes": {"password": "a new pass phrase 77", **attributes}}}
    return client.patch("/v1/user", json=body, headers={"Authorization": f"Bearer {access_token}"})


def test_a_login_with_a_code_is_a_step_up_for_five_minutes(client, session, account, factor):
    assert_otp_required(login(client, account), factor.method)
    access_token = assert_tokens(login(client, account, otp=factor.code()))["access_token"]

    row = session_of(session, access_token)
    assert row.second_factor_at is not None
    assert abs(row.second_factor_at - row.created_at) < timedelta(seconds=1)

    response = change_password(client, access_token)  # no currentPassword
    assert response.status_code == 200, response.get_json()

    row.second_factor_at -= timedelta(minutes=5, seconds=1)
    session.commit()
    assert errors_of(change_password(client, access_token)) == {
        ("invalid", "/data/attributes/currentPassword")
    }


def test_a_simple_login_is_no_step_up(client, session, auth, account, roy):
    access_token = auth.login(account, USERNAME, REGISTRATION["password"])["access_token"]

    assert session_of(session, access_token).second_factor_at is None
    assert errors_of(change_password(client, access_token)) == {
        ("invalid", "/data/attributes/currentPassword")
    }
    assert change_password(client, access_token, currentPassword=PASSWORD).status_code == 200


# Sending fails


@pytest.mark.parametrize("factor", ["tfa_sms"], indirect=True)
def test_a_gateway_that_does_not_answer_is_503_and_keeps_no_code(
    app, client, session, account, factor, monkeypatch
):
    monkeypatch.setitem(app.config, "SMS_BACKEND", f"http://127.0.0.1:{free_port()}/messages")  # no one there
    monkeypatch.setitem(app.config, "SMS_TIMEOUT", 2)

    response = login(client, account)

    assert response.status_code == 503, response.get_json()
    assert response.get_json()["error"] == "temporarily_unavailable"
    assert "X-Freshcom-OTP" not in response.headers
    tokens = session.scalars(select(OneTimeToken).where(OneTimeToken.purpose == "login_otp")).all()
    assert tokens == []


# Browsers


@pytest.fixture
def listed(app, app_config):
    """An app that lets one storefront call it from a browser."""
    with app_factory(app, app_config) as make_app:
        yield make_app(CORS_ORIGINS=SHOP).test_client()


@pytest.mark.parametrize("factor", ["tfa_totp"], indirect=True)
def test_browsers_may_read_and_send_the_otp_header(listed, account, factor):
    response = listed.post(
        "/v1/token",
        data={
            "grant_type": "password",
            "username": USERNAME,
            "password": PASSWORD,
            "scope": f"aid:{account.live.id}",
        },
        headers={"Origin": SHOP},
    )

    assert_otp_required(response, "tfa_totp")
    assert response.headers["Access-Control-Allow-Origin"] == SHOP
    exposed = {h.strip().lower() for h in response.headers["Access-Control-Expose-Headers"].split(",")}
    assert "x-freshcom-otp" in exposed

    preflight = listed.options(
        "/v1/token",
        headers={
            "Origin": SHOP,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-freshcom-otp",
        },
    )
    allowed = {h.strip().lower() for h in preflight.headers["Access-Control-Allow-Headers"].split(",")}
    assert "x-freshcom-otp" in allowed

    elsewhere = listed.post(
        "/v1/token", data={"grant_type": "password"}, headers={"Origin": "https://evil.example"}
    )
    assert "Access-Control-Expose-Headers" not in elsewhere.headers
