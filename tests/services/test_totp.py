"""Authenticator apps (services/totp.py): codes of a controlled clock, replays, recovery codes,
the enrolment's lifetime, and the secret kept encrypted and out of the logs."""

import logging
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, unquote, urlsplit

import pyotp
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm.attributes import set_committed_value

from freshcom_customers.errors import ValidationFailed
from freshcom_customers.models import OneTimeToken, RecoveryCode, User, hash_secret
from freshcom_customers.services import data_keys, one_time_tokens, totp, users
from tests.clocks import TotpClock
from tests.logcapture import app_records

EMAIL = "tess@example.com"
# Groups of four base32 letters, upper case, with dashes.
RECOVERY_FORMAT = re.compile(r"[A-Z2-7]{4}(-[A-Z2-7]{4})+")


@pytest.fixture
def clock(monkeypatch) -> TotpClock:
    return TotpClock(monkeypatch)


@pytest.fixture
def user(account, session) -> User:
    user = users.create_managed_user(
        account.live, username=EMAIL, email=EMAIL, password="tess-password-1", role="manager"
    )
    session.commit()
    return user


def code_at(secret: str, when: datetime, steps: int = 0) -> str:
    """The app's code steps time steps away from when."""
    return pyotp.TOTP(secret).at(when + timedelta(seconds=30 * steps))


def enrol(user, clock) -> tuple[str, list[str]]:
    """Enrol the user's app at the clock's time; return its secret and the recovery codes."""
    secret, _ = totp.start_enrolment(user, issuer="Acme")
    codes = totp.confirm(user, code_at(secret, clock.now))
    return secret, codes


@pytest.fixture
def enrolled(user, clock, session) -> tuple[str, list[str]]:
    """The user with a confirmed app, five minutes later: its last code is ten steps behind."""
    secret, codes = enrol(user, clock)
    session.commit()
    clock.advance(300)
    return secret, codes


def stored_user(session, user) -> dict:
    """The user's row as the database holds it, not as the session's object says."""
    table = User.__table__
    query = select(table.c.auth_method, table.c.totp_secret, table.c.totp_last_step)
    return session.execute(query.where(table.c.id == user.id)).one()._asdict()


def field_errors(error: pytest.ExceptionInfo) -> set:
    return {(e.field, e.code) for e in error.value.errors}


# Enrolment


def test_enrolment_gives_a_secret_and_its_otpauth_uri(user, clock):
    secret, uri = totp.start_enrolment(user, issuer="Acme")

    assert re.fullmatch(r"[A-Z2-7]{32}", secret)  # 160 bits
    parts = urlsplit(uri)
    assert (parts.scheme, parts.netloc) == ("otpauth", "totp")
    assert unquote(parts.path) == f"/Acme:{EMAIL}"
    query = parse_qs(parts.query)
    assert query["secret"] == [secret] and query["issuer"] == ["Acme"]
    assert user.auth_method == "simple"  # until a code confirms it


def test_a_current_code_confirms_the_enrolment(user, clock, session):
    secret, _ = totp.start_enrolment(user, issuer="Acme")

    codes = totp.confirm(user, code_at(secret, clock.now))
    session.commit()

    assert stored_user(session, user)["auth_method"] == "tfa_totp"
    assert stored_user(session, user)["totp_last_step"] == clock.step(secret)
    assert len(codes) == 10


@pytest.mark.parametrize("code", [None, "", "12345", "abcdef", "wrong"])
def test_a_wrong_code_does_not_confirm(user, clock, code):
    secret, _ = totp.start_enrolment(user, issuer="Acme")

    with pytest.raises(ValidationFailed) as refused:
        totp.confirm(user, code)

    assert field_errors(refused) == {("code", "invalid")}
    assert user.auth_method == "simple" and user.totp_secret is None
    assert totp.confirm(user, code_at(secret, clock.now))  # the enrolment still waits


def test_a_code_of_another_secret_does_not_confirm(user, clock):
    totp.start_enrolment(user, issuer="Acme")

    with pytest.raises(ValidationFailed) as refused:
        totp.confirm(user, code_at(pyotp.random_base32(), clock.now))

    assert field_errors(refused) == {("code", "invalid")}


def test_an_enrolment_lives_fifteen_minutes(user, clock, monkeypatch):
    started = datetime.now(UTC)
    secret, _ = totp.start_enrolment(user, issuer="Acme")

    def at(when: datetime) -> None:
        clock.now = when
        monkeypatch.setattr(one_time_tokens, "utcnow", lambda: when)

    at(started + timedelta(minutes=15, seconds=1))
    with pytest.raises(ValidationFailed) as refused:
        totp.confirm(user, code_at(secret, clock.now))
    assert field_errors(refused) == {("code", "expired")}
    assert user.auth_method == "simple"

    at(started + timedelta(minutes=14, seconds=50))
    assert len(totp.confirm(user, code_at(secret, clock.now))) == 10
    assert user.auth_method == "tfa_totp"


def test_an_enrolment_is_confirmed_once(user, clock):
    secret, _ = totp.start_enrolment(user, issuer="Acme")
    totp.confirm(user, code_at(secret, clock.now))
    clock.advance(30)

    with pytest.raises(ValidationFailed) as refused:
        totp.confirm(user, code_at(secret, clock.now))

    assert field_errors(refused) == {("code", "expired")}


def test_a_new_enrolment_replaces_a_waiting_one(user, clock):
    first, _ = totp.start_enrolment(user, issuer="Acme")
    second, _ = totp.start_enrolment(user, issuer="Acme")

    with pytest.raises(ValidationFailed):
        totp.confirm(user, code_at(first, clock.now))
    totp.confirm(user, code_at(second, clock.now))

    assert data_keys.decrypt(user.totp_secret) == second


# Codes


@pytest.mark.parametrize(
    ("steps", "accepted"),
    [(-2, False), (-1, True), (0, True), (1, True), (2, False)],
    ids=["step-2", "step-1", "step", "step+1", "step+2"],
)
def test_codes_one_step_either_side_of_now_are_accepted(user, clock, enrolled, steps, accepted):
    secret, _ = enrolled

    assert totp.verify(user, code_at(secret, clock.now, steps)) is accepted

    assert user.totp_last_step == (clock.step(secret) + steps if accepted else clock.step(secret) - 10)
    if not accepted:  # refused for its step alone: the current code still passes
        assert totp.verify(user, code_at(secret, clock.now))


def test_a_code_is_accepted_once(user, clock, enrolled, session):
    secret, _ = enrolled
    code = code_at(secret, clock.now)
    assert totp.verify(user, code)

    assert not totp.verify(user, code)
    clock.advance(30)  # its step is now step-1, still within the drift
    assert not totp.verify(user, code)
    session.commit()
    assert stored_user(session, user)["totp_last_step"] == clock.step(secret) - 1


def test_a_code_older_than_the_last_one_used_is_refused(user, clock, enrolled):
    secret, _ = enrolled
    assert totp.verify(user, code_at(secret, clock.now, 1))

    assert not totp.verify(user, code_at(secret, clock.now))
    assert not totp.verify(user, code_at(secret, clock.now, -1))
    assert user.totp_last_step == clock.step(secret) + 1


def test_the_code_that_confirmed_the_enrolment_does_not_log_in(user, clock):
    secret, _ = totp.start_enrolment(user, issuer="Acme")
    code = code_at(secret, clock.now)
    totp.confirm(user, code)

    assert not totp.verify(user, code)
    clock.advance(30)
    assert totp.verify(user, code_at(secret, clock.now))


def test_a_concurrent_use_of_the_same_step_is_refused(user, clock, enrolled, session):
    """The stored step is checked in the UPDATE itself: a request that read the user before
    another used the code still cannot use it."""
    secret, _ = enrolled
    code = code_at(secret, clock.now)
    read_earlier = user.totp_last_step
    assert totp.verify(user, code)

    set_committed_value(user, "totp_last_step", read_earlier)  # what the other request still sees

    assert not totp.verify(user, code)
    session.commit()
    assert stored_user(session, user)["totp_last_step"] == clock.step(secret)


def test_a_user_without_a_secret_has_no_code(user, clock):
    assert not totp.verify(user, "123456")
    assert not totp.verify(user, None)


# Recovery codes


def test_ten_recovery_codes_of_six_groups_of_four(enrolled):
    _, codes = enrolled

    assert len(codes) == len(set(codes)) == 10
    for code in codes:
        assert RECOVERY_FORMAT.fullmatch(code), code
        assert len(code.split("-")) == 6
        # 24 base32 letters: 120 random bits, enough for a plain SHA-256 (ASVS 5.0 6.5.2: 112)
        assert len(code.replace("-", "")) * 5 >= 112


def test_each_recovery_code_works_once(user, clock, enrolled, caplog):
    _, codes = enrolled

    with caplog.at_level(logging.WARNING, logger="freshcom_customers.security"):
        for used, code in enumerate(codes, start=1):
            assert totp.verify(user, code)
            assert not totp.verify(user, code)
            assert totp.remaining_recovery_codes(user) == 10 - used

    events = [
        (r.security_event, r.fields["remaining"]) for r in caplog.records if hasattr(r, "security_event")
    ]
    assert events == [("recovery_code_used", left) for left in range(9, -1, -1)]


@pytest.mark.parametrize(
    "spelling",
    [str.lower, lambda c: c.replace("-", ""), lambda c: c.lower().replace("-", ""), lambda c: f" {c} "],
    ids=["lower case", "no dashes", "lower case, no dashes", "spaces around"],
)
def test_a_recovery_code_may_be_typed_loosely(user, enrolled, spelling):
    _, codes = enrolled

    assert totp.verify(user, spelling(codes[0]))
    assert not totp.verify(user, codes[0])


def test_a_recovery_code_is_no_six_digit_code_and_vice_versa(user, clock, enrolled):
    _, codes = enrolled

    assert not totp.verify(user, codes[0][:6])
    assert not totp.verify(user, "AAAA-AAAA-AAAA-AAAA")
    assert totp.remaining_recovery_codes(user) == 10


def test_recovery_codes_are_stored_hashed(user, enrolled, session):
    _, codes = enrolled

    rows = session.execute(text("SELECT * FROM recovery_codes")).all()

    assert len(rows) == 10
    stored = " ".join(str(value) for row in rows for value in row)
    for code in codes:
        assert code not in stored and totp.normalise_recovery_code(code) not in stored
        assert code.lower() not in stored.lower()
    hashes = set(session.scalars(select(RecoveryCode.code_hash)))
    assert hashes == {hash_secret(totp.normalise_recovery_code(code)) for code in codes}


def test_a_new_enrolment_replaces_the_recovery_codes(user, clock, enrolled, session):
    _, old_codes = enrolled

    new_secret, new_codes = enrol(user, clock)
    session.commit()

    assert set(new_codes).isdisjoint(old_codes)
    assert session.scalar(select(func.count()).select_from(RecoveryCode)) == 10
    assert not any(totp.verify(user, code) for code in old_codes)
    assert totp.verify(user, new_codes[0])
    clock.advance(30)
    assert totp.verify(user, code_at(new_secret, clock.now))


def test_disabling_forgets_the_secret_and_the_recovery_codes(user, clock, enrolled, session):
    secret, codes = enrolled

    totp.disable(user)
    session.commit()

    assert stored_user(session, user)["totp_secret"] is None
    assert session.scalars(select(RecoveryCode)).all() == []
    assert not totp.verify(user, code_at(secret, clock.now))
    assert not totp.verify(user, codes[0])


# The secret


def test_the_secret_is_stored_encrypted(user, clock, enrolled, session):
    secret, _ = enrolled

    stored = stored_user(session, user)["totp_secret"]

    assert stored != secret and secret not in stored and secret.lower() not in stored.lower()
    assert data_keys.decrypt(stored) == secret


def test_the_waiting_secret_is_stored_encrypted(user, session):
    secret, _ = totp.start_enrolment(user, issuer="Acme")
    session.commit()

    (token,) = session.scalars(select(OneTimeToken).where(OneTimeToken.purpose == "totp_enrollment"))
    raw = session.execute(
        text("SELECT payload FROM one_time_tokens WHERE purpose = 'totp_enrollment'")
    ).scalar_one()

    assert secret not in str(raw)
    assert data_keys.decrypt(token.payload["secret"]) == secret
    assert abs(token.expires_at - token.inserted_at - timedelta(minutes=15)) < timedelta(seconds=1)


def test_the_secret_and_the_codes_never_reach_a_log(user, clock, session, caplog):
    with caplog.at_level(logging.DEBUG):
        secret, uri = totp.start_enrolment(user, issuer="Acme")
        session.commit()
        with pytest.raises(ValidationFailed):
            totp.confirm(user, code_at(secret, clock.now, 5))
        codes = totp.confirm(user, code_at(secret, clock.now))
        session.commit()
        clock.advance(30)
        assert totp.verify(user, code_at(secret, clock.now))
        assert not totp.verify(user, code_at(secret, clock.now))
        assert totp.verify(user, codes[0])
        assert not totp.verify(user, "ZZZZ-ZZZZ-ZZZZ-ZZZZ")
        totp.disable(user)
        session.commit()

    logged = app_records(caplog.records)
    events = [r.security_event for r in caplog.records if hasattr(r, "security_event")]
    assert events == ["totp_enabled", "recovery_code_used", "totp_disabled"]  # the log was captured
    for secret_value in (secret, secret.lower(), uri, *codes, *(c.replace("-", "") for c in codes)):
        assert secret_value not in logged
