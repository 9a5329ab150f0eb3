"""Password hashing and policy, in one place: one CryptContext, argon2id, configurable cost."""

import functools

from flask import current_app
from passlib.context import CryptContext
from passlib.utils import MAX_PASSWORD_SIZE  # bytes; passlib refuses to hash more

from freshcom_customers.errors import invalid

MIN_LENGTH = 8
MAX_LENGTH = 128

_PARAM_NAMES = {"m": "memory_cost", "t": "rounds", "p": "parallelism"}


def parse_hash_params(value) -> dict:
    """Read argon2 parameters from "m=47104,t=1,p=1" or a mapping of the same keys."""
    try:
        if isinstance(value, str):
            value = dict(part.split("=", 1) for part in value.replace(" ", "").split(",") if part)
        return {_PARAM_NAMES[k]: int(v) for k, v in value.items()}
    except (KeyError, ValueError, AttributeError) as e:
        raise ValueError(f"PASSWORD_HASH_PARAMS must look like m=47104,t=1,p=1, not {value!r}") from e


def build_context(params) -> CryptContext:
    """Create the one CryptContext of an app from its PASSWORD_HASH_PARAMS."""
    settings = {f"argon2__{k}": v for k, v in parse_hash_params(params).items()}
    return CryptContext(schemes=["argon2"], argon2__type="ID", deprecated="auto", **settings)


def _context() -> CryptContext:
    return current_app.extensions["freshcom_passwords"]


def check_policy(password: str, field: str = "password") -> None:
    """Refuse passwords out of the allowed length or among the most common ones; no other rules."""
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise invalid(field, "length", f"Password must be {MIN_LENGTH} to {MAX_LENGTH} characters long.")
    if password.lower() in common_passwords():
        raise invalid(field, "invalid", "This password is one of the most common ones; choose another.")


@functools.cache
def common_passwords() -> frozenset[str]:
    """The 30,000 most common passwords (Xato's list as shipped by zxcvbn, MIT licence)."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def check_hash(password_hash: str, field: str = "password_hash") -> None:
    """Accept an imported hash only if the CryptContext could verify it (argon2 only)."""
    context = _context()
    try:
        scheme = context.identify(password_hash)
        if scheme is not None:
            context.handler(scheme).from_string(password_hash)  # a malformed hash would never verify
            return
    except ValueError:
        pass
    raise invalid(field, "invalid", "Not an argon2 hash; bcrypt and other schemes are not accepted.")


def hash_password(password: str) -> str:
    return _context().hash(password)


def verify(password: str, password_hash: str) -> tuple[bool, str | None]:
    """Check a password; return (ok, new_hash) where new_hash is set when the cost changed.

    A password too long to hash is wrong, after the work of one verify: the same answer at
    the same cost as an unknown user's (dummy_verify), so its length tells nothing.
    """
    if len(password.encode("utf-8", "surrogatepass")) > MAX_PASSWORD_SIZE:
        dummy_verify()
        return False, None
    return _context().verify_and_update(password, password_hash)


def dummy_verify() -> None:
    """Spend the time of one verify, so an unknown user costs what a wrong password does."""
    _context().dummy_verify()
