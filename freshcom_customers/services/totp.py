"""Authenticator apps (API.md 11): TOTP enrolment and codes (RFC 6238), and recovery codes.

Enrolment gives a new secret (160 bits, pyotp) and its otpauth:// URI; the secret waits,
encrypted, in a one-time token until a current code from the app confirms it. Then it becomes
the user's, encrypted with the data key (services/data_keys.py), the user's authMethod becomes
tfa_totp, and ten recovery codes are made: 120 random bits each, shown once, stored as
SHA-256 hashes, each usable once in place of a code.

A code is accepted one 30-second step either side of now (RFC 6238 5.2 allows for clock drift
and typing), and never twice: the step of the last accepted code is stored, and a code of
that step or an earlier one is refused, under a conditional UPDATE so that two requests with
the same code cannot both pass.
"""

import hmac
import logging
import re
import secrets
from datetime import datetime

import pyotp
from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm.attributes import set_committed_value

from freshcom_customers.errors import NotFound, Unavailable, invalid
from freshcom_customers.extensions import db
from freshcom_customers.models import RecoveryCode, User, hash_secret
from freshcom_customers.models.base import utcnow
from freshcom_customers.observability import security_events
from freshcom_customers.services import data_keys, one_time_tokens, users
from freshcom_customers.services.database import count

ENROLMENT_LIFETIME = 15 * 60
DRIFT_STEPS = 1  # steps accepted either side of now
RECOVERY_CODES = 10
# 120 bits: 24 base32 letters, shown as six groups of four. At 112 bits or more a plain SHA-256
# is a fit store (ASVS 5.0 6.5.2); fewer would need a slow, salted hash for each of ten codes.
RECOVERY_CODE_BYTES = 15
_RECOVERY_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_SIX_DIGITS = re.compile(r"[0-9]{6}")

logger = logging.getLogger(__name__)


def start_enrolment(user: User, issuer: str) -> tuple[str, str]:
    """A new secret for the user's app, waiting for confirm(); return it and its otpauth:// URI.

    issuer names the shop in the app's list, beside the user's email (or username).
    """
    secret = pyotp.random_base32()
    one_time_tokens.issue(
        "totp_enrollment",
        user=user,
        email=None,
        lifetime=ENROLMENT_LIFETIME,
        payload={"secret": data_keys.encrypt(secret)},
    )
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.email or user.username, issuer_name=issuer)
    return secret, uri


def confirm(user: User, code: str | None) -> list[str]:
    """Make the waiting secret the user's when code is a current code of it; return the recovery codes.

    A 422 on code when it is not, or when no enrolment waits (never started, expired, confirmed).
    """
    enrolment = one_time_tokens.live("totp_enrollment", user)
    if enrolment is None:
        raise invalid("code", "expired", "No authenticator enrolment is waiting; start a new one.")
    secret = _secret(enrolment.payload["secret"])
    step = _matching_step(secret, code, after=None)
    if step is None:
        raise invalid("code", "invalid", "The code is not the authenticator's current code.")
    try:
        one_time_tokens.use(enrolment)
    except NotFound:
        raise invalid("code", "expired", "No authenticator enrolment is waiting; start a new one.") from None
    user.totp_secret = enrolment.payload["secret"]
    user.totp_last_step = step
    user.auth_method = "tfa_totp"
    codes = _new_recovery_codes(user)
    security_events.record("totp_enabled", **security_events.user_fields(user))
    users.tell_second_factor_changed(user, "enabled", method="tfa_totp")
    return codes


def verify(user: User, code: str | None) -> bool:
    """Whether code is a current TOTP code of the user, or one of its unused recovery codes; uses it."""
    if not code or user.totp_secret is None:
        return False
    code = code.strip()
    if _SIX_DIGITS.fullmatch(code):
        secret = _secret(user.totp_secret)
        return _use_step(user, _matching_step(secret, code, after=user.totp_last_step))
    return _use_recovery_code(user, code)


def disable(user: User) -> None:
    """Forget the user's secret and recovery codes (its authMethod is the caller's to set)."""
    user.totp_secret = None
    user.totp_last_step = None
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    security_events.record("totp_disabled", **security_events.user_fields(user))


def normalise_recovery_code(code: str) -> str:
    """A recovery code as stored: its letters in upper case, without spaces or dashes."""
    return re.sub(r"[\s-]", "", code).upper()


def _matching_step(secret: str, code: str | None, *, after: int | None) -> int | None:
    """The time step, within the drift allowed and later than after, whose code is code; else None."""
    code = (code or "").strip()
    if not _SIX_DIGITS.fullmatch(code):
        return None
    totp = pyotp.TOTP(secret)
    now = _now()
    current = totp.timecode(now)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if after is not None and step <= after:
            continue
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def _use_step(user: User, step: int | None) -> bool:
    """Record step as the user's last used one, unless a concurrent request used it (or a later one)."""
    if step is None:
        return False
    used = db.session.execute(
        update(User)
        .where(User.id == user.id, or_(User.totp_last_step.is_(None), User.totp_last_step < step))
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    )
    if used.rowcount != 1:
        return False
    set_committed_value(user, "totp_last_step", step)
    return True


def _use_recovery_code(user: User, code: str) -> bool:
    digest = hash_secret(normalise_recovery_code(code))
    row = db.session.scalar(
        select(RecoveryCode).where(
            RecoveryCode.user_id == user.id, RecoveryCode.code_hash == digest, RecoveryCode.used_at.is_(None)
        )
    )
    if row is None:
        return False
    used = db.session.execute(
        update(RecoveryCode)
        .where(RecoveryCode.id == row.id, RecoveryCode.used_at.is_(None))
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if used.rowcount != 1:
        return False
    left = remaining_recovery_codes(user)
    security_events.record("recovery_code_used", **security_events.user_fields(user), remaining=left)
    return True


def remaining_recovery_codes(user: User) -> int:
    return count(
        select(RecoveryCode.id).where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
    )


def _new_recovery_codes(user: User) -> list[str]:
    """Replace the user's recovery codes with RECOVERY_CODES new ones; return them (shown once)."""
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = []
    for _ in range(RECOVERY_CODES):
        letters = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(RECOVERY_CODE_BYTES * 8 // 5))
        codes.append("-".join(letters[i : i + 4] for i in range(0, len(letters), 4)))
    db.session.add_all(
        RecoveryCode(user_id=user.id, code_hash=hash_secret(normalise_recovery_code(code))) for code in codes
    )
    return codes


def _secret(ciphertext: str) -> str:
    """The plaintext secret; 503 when no configured data key opens it (a key dropped too soon)."""
    try:
        return data_keys.decrypt(ciphertext)
    except data_keys.UnreadableSecret:
        logger.error("a TOTP secret no key of FRESHCOM_DATA_KEYS opens: put the old key back in the list")
        raise Unavailable("data keys", retry_after=300) from None


def _now() -> datetime:
    return utcnow()
