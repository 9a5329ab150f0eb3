"""Password hashing and policy, in one place: one CryptContext, argon2id, configurable cost.

The context also verifies the hashes other platforms store (API.md §9), as deprecated
schemes: the first login with one rehashes it to argon2id (verify_and_update), and an import
checks them by parsing alone (check_hash), within the cost limits below. passlib handles most
of them; the three it lacks (bcrypt as those platforms use it, Werkzeug's two formats and
Medusa's scrypt-kdf) are the small handlers at the end of this module.
"""

import base64
import functools
import hashlib
import hmac
import re
import struct

import bcrypt
from flask import current_app
from passlib import exc
from passlib.context import CryptContext
from passlib.crypto.scrypt import scrypt
from passlib.utils import (
    MAX_PASSWORD_SIZE,  # bytes; passlib refuses to hash more
    to_bytes,
    to_unicode,
)
from passlib.utils import handlers as uh

from freshcom_customers.errors import invalid
from freshcom_customers.services import argon2_memory

MIN_LENGTH = 8
MAX_LENGTH = 128

_PARAM_NAMES = {"m": "memory_cost", "t": "rounds", "p": "parallelism"}

# The most an imported hash may cost a login (docs/decisions.md, "Import and export"): an import
# must not be able to make a single login take seconds or gigabytes.
MAX_ARGON2_MEMORY = 262_144  # KiB: 256 MiB
MAX_ARGON2_WORK = 1_048_576  # KiB·passes (m·t): 1 GiB
MAX_PARALLELISM = 16  # argon2 lanes (each a thread) and scrypt's p
MAX_BCRYPT_COST = 14  # 2^14 rounds, about a second
MAX_SCRYPT_WORK = 2**20  # N·r·p: 128 MiB at p = 1
MAX_PBKDF2_ROUNDS = 3_000_000


def parse_hash_params(value) -> dict:
    """Read argon2 parameters from "m=47104,t=1,p=1" or a mapping of the same keys."""
    try:
        if isinstance(value, str):
            value = dict(part.split("=", 1) for part in value.replace(" ", "").split(",") if part)
        return {_PARAM_NAMES[k]: int(v) for k, v in value.items()}
    except (KeyError, ValueError, AttributeError) as e:
        raise ValueError(f"PASSWORD_HASH_PARAMS must look like m=47104,t=1,p=1, not {value!r}") from e


def build_context(params) -> CryptContext:
    """Create the one CryptContext of an app from its PASSWORD_HASH_PARAMS.

    argon2id hashes; every other scheme only verifies, and is deprecated, so it is rehashed.
    """
    settings = {f"argon2__{k}": v for k, v in parse_hash_params(params).items()}
    return CryptContext(
        schemes=["argon2", *_IMPORTED_SCHEMES], argon2__type="ID", deprecated="auto", **settings
    )


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
    """Accept an imported hash in a format the context verifies and within the cost limits.

    The hash is parsed, never run: checking 100,000 imported rows costs no key derivation.
    """
    context = _context()
    try:
        scheme = context.identify(password_hash)
        parsed = scheme and _parse(context.handler(scheme), password_hash)
    except ValueError:
        parsed = None  # identified by its prefix, yet malformed: it would never verify
    if not parsed:
        raise invalid(field, "invalid", "Not a password hash in a format this service accepts.")
    too_costly = _COST_LIMITS[scheme](parsed)
    if too_costly:
        raise invalid(field, "invalid", f"Costs more than this service allows: {too_costly}.")


def _parse(handler, password_hash: str):
    """The hash's parameters, as its handler reads them; a wrapped one (Django's argon2) unwrapped."""
    if isinstance(handler, uh.PrefixWrapper):
        return _parse(handler.wrapped, password_hash.removeprefix(handler.prefix))
    return handler.from_string(password_hash)


def hash_password(password: str) -> str:
    return _hash_with(_context(), password)


def _hash_with(context: CryptContext, password: str) -> str:
    """An argon2id hash with the context's parameters, in the process's kept memory when free."""
    argon2 = context.handler("argon2")
    if argon2.parallelism == 1:
        sizes = argon2.default_salt_size, argon2.checksum_size
        hashed = argon2_memory.new_hash(password, argon2.default_rounds, argon2.memory_cost, *sizes)
        if hashed is not None:
            return hashed
    return context.hash(password)


def verify(password: str, password_hash: str | None) -> tuple[bool, str | None]:
    """Check a password; return (ok, new_hash) where new_hash is set when the cost or scheme changed.

    A password too long to hash is wrong, after the work of one verify: the same answer at
    the same cost as an unknown user's (dummy_verify), so its length tells nothing. An imported
    hash costs what its own scheme costs (docs/decisions.md, "Import and export").
    """
    if len(password.encode("utf-8", "surrogatepass")) > MAX_PASSWORD_SIZE:
        dummy_verify()
        return False, None
    return verify_with(_context(), password, password_hash)


def verify_with(context: CryptContext, password: str, password_hash: str | None) -> tuple[bool, str | None]:
    """verify's work on a password of a size to hash, with a given context (bench/run.py's too).

    An argon2id hash of the configured memory cost is verified in the process's kept memory
    (services/argon2_memory.py); any other, by passlib. No hash (a user who has not chosen a
    password yet) is refused after the work of one verify, as passlib does.
    """
    if password_hash is None:
        _verify_dummy(context)
        return False, None
    ok = argon2_memory.verify(password, password_hash, _kept_kib(context))
    if ok is None:
        return context.verify_and_update(password, password_hash)
    if ok and context.needs_update(password_hash, secret=password):
        return True, _hash_with(context, password)
    return ok, None


def dummy_verify() -> None:
    """Spend the time of one verify, so an unknown user costs what a wrong password does."""
    _verify_dummy(_context())


def _verify_dummy(context: CryptContext) -> None:
    verify_with(context, _DUMMY_PASSWORD, _dummy_hash(context))


_DUMMY_PASSWORD = "not anyone's password"


@functools.lru_cache(maxsize=4)
def _dummy_hash(context: CryptContext) -> str:
    """A hash with the context's own parameters, made once: a dummy verify costs a real one."""
    return _hash_with(context, _DUMMY_PASSWORD)


def _kept_kib(context: CryptContext) -> int:
    """The memory a process keeps for argon2 (services/argon2_memory.py): the configured cost."""
    handler = context.handler("argon2")
    return handler.memory_cost if handler.parallelism == 1 else 0


# The cost of each scheme, from its parsed hash: a description of what is over the limit, or None.


def _argon2_cost(parsed) -> str | None:
    m, t, p = parsed.memory_cost, parsed.rounds, parsed.parallelism
    if m > MAX_ARGON2_MEMORY or m * t > MAX_ARGON2_WORK or p > MAX_PARALLELISM:
        return (
            f"argon2 m={m},t={t},p={p}; at most m={MAX_ARGON2_MEMORY} (KiB), "
            f"m·t={MAX_ARGON2_WORK}, p={MAX_PARALLELISM}"
        )
    return None


def _bcrypt_cost(parsed) -> str | None:
    if parsed.rounds > MAX_BCRYPT_COST:
        return f"bcrypt cost {parsed.rounds}; at most {MAX_BCRYPT_COST}"
    return None


def _scrypt_cost(parsed) -> str | None:
    n, r, p = 2**parsed.rounds, parsed.block_size, parsed.parallelism
    if n * r * p > MAX_SCRYPT_WORK or p > MAX_PARALLELISM:
        return f"scrypt N={n},r={r},p={p}; at most N·r·p={MAX_SCRYPT_WORK}, p={MAX_PARALLELISM}"
    return None


def _pbkdf2_cost(parsed) -> str | None:
    if parsed.rounds > MAX_PBKDF2_ROUNDS:
        return f"PBKDF2 with {parsed.rounds} iterations; at most {MAX_PBKDF2_ROUNDS}"
    return None


# Handlers for the formats passlib lacks. Each parses its string into the parameters the cost
# limits read (rounds, block_size, parallelism, as passlib's own handlers name them) and
# computes the checksum to compare; none ever makes a hash.


class _VerifyOnly(uh.GenericHandler):
    """A scheme this service verifies and rehashes, and never hashes with."""

    setting_kwds = ()

    def __init__(self, *, params: dict | None = None, **kwds):
        super().__init__(**kwds)
        self.__dict__.update(params or {})

    @classmethod
    def _parsed(cls, hash, pattern: re.Pattern) -> re.Match:
        match = pattern.fullmatch(to_unicode(hash, "ascii", "hash"))
        if match is None:
            raise exc.InvalidHashError(cls)
        return match

    @classmethod
    def hash(cls, secret, **kwds):
        raise NotImplementedError(f"{cls.name} hashes are only verified here, then replaced by argon2id")


class bcrypt_any(_VerifyOnly):
    """bcrypt, $2a$, $2b$ or $2y$, with the bcrypt package; the password cut to 72 bytes.

    bcrypt reads only 72 bytes; the platforms that made these hashes cut longer passwords
    there, as bcrypt 5 no longer does by itself (passlib's handler then fails the login).
    """

    name = "bcrypt_any"
    _PATTERN = re.compile(r"\$2[aby]\$(?P<rounds>\d\d)\$[./A-Za-z0-9]{53}")

    @classmethod
    def from_string(cls, hash):
        match = cls._parsed(hash, cls._PATTERN)
        rounds = int(match["rounds"])
        if not 4 <= rounds <= 31:
            raise exc.MalformedHashError(cls, "bcrypt cost out of range")
        return cls(checksum=match[0][-31:], params={"setting": match[0][:-31], "rounds": rounds})

    def _calc_checksum(self, secret):
        return bcrypt.hashpw(to_bytes(secret)[:72], self.setting.encode("ascii")).decode("ascii")[-31:]


class werkzeug_pbkdf2(_VerifyOnly):
    """Werkzeug's generate_password_hash with pbkdf2: pbkdf2:sha256:600000$salt$hex."""

    name = "werkzeug_pbkdf2"
    _PATTERN = re.compile(
        r"pbkdf2:(?P<digest>sha256|sha512):(?P<rounds>[1-9]\d{0,9})\$(?P<salt>[^$]+)\$(?P<hex>[0-9a-f]+)"
    )
    _SIZES = {"sha256": 64, "sha512": 128}

    @classmethod
    def from_string(cls, hash):
        match = cls._parsed(hash, cls._PATTERN)
        if len(match["hex"]) != cls._SIZES[match["digest"]]:
            raise exc.MalformedHashError(cls, "wrong checksum size")
        params = {"digest": match["digest"], "rounds": int(match["rounds"]), "salt": match["salt"]}
        return cls(checksum=match["hex"], params=params)

    def _calc_checksum(self, secret):
        return hashlib.pbkdf2_hmac(self.digest, to_bytes(secret), self.salt.encode(), self.rounds).hex()


class werkzeug_scrypt(_VerifyOnly):
    """Werkzeug's generate_password_hash with scrypt: scrypt:32768:8:1$salt$hex (a 64-byte key)."""

    name = "werkzeug_scrypt"
    _PATTERN = re.compile(
        r"scrypt:(?P<n>\d{1,10}):(?P<r>\d{1,10}):(?P<p>\d{1,10})\$(?P<salt>[^$]+)\$(?P<hex>[0-9a-f]{128})"
    )

    @classmethod
    def from_string(cls, hash):
        match = cls._parsed(hash, cls._PATTERN)
        n, r, p = int(match["n"]), int(match["r"]), int(match["p"])
        if n < 2 or n & (n - 1) or r < 1 or p < 1:
            raise exc.MalformedHashError(cls, "N must be a power of 2, r and p positive")
        params = {"rounds": n.bit_length() - 1, "block_size": r, "parallelism": p, "salt": match["salt"]}
        return cls(checksum=match["hex"], params=params)

    def _calc_checksum(self, secret):
        key = scrypt(
            to_bytes(secret), self.salt.encode(), 2**self.rounds, self.block_size, self.parallelism, 64
        )
        return key.hex()


class scrypt_kdf(_VerifyOnly):
    """Medusa v2's passwords: the npm package scrypt-kdf's key in base64 (Colin Percival's format).

    96 bytes: "scrypt", version 0, log2 N (a byte), r and p (big-endian uint32), a 32-byte salt,
    the first 16 bytes of SHA-256 over those 48 bytes, then HMAC-SHA256 over the 64 bytes so far,
    keyed with the second half of the 64-byte key scrypt derives from the password and salt.
    """

    name = "scrypt_kdf"
    _checksum_is_bytes = True
    _PATTERN = re.compile(r"c2NyeXB0[A-Za-z0-9+/]{120}")  # "scrypt…", 96 bytes, no padding
    _LAYOUT = struct.Struct(">6sBBII32s16s32s")

    @classmethod
    def from_string(cls, hash):
        key = base64.b64decode(cls._parsed(hash, cls._PATTERN)[0])
        magic, version, log_n, r, p, salt, check, mac = cls._LAYOUT.unpack(key)
        if magic != b"scrypt" or version != 0 or hashlib.sha256(key[:48]).digest()[:16] != check:
            raise exc.MalformedHashError(cls, "not a scrypt-kdf key")
        if not 1 <= log_n <= 63 or r < 1 or p < 1:
            raise exc.MalformedHashError(cls, "scrypt parameters out of range")
        params = {"header": key[:64], "rounds": log_n, "block_size": r, "parallelism": p, "salt": salt}
        return cls(checksum=mac, params=params)

    def _calc_checksum(self, secret):
        key = scrypt(to_bytes(secret), self.salt, 2**self.rounds, self.block_size, self.parallelism, 64)
        return hmac.digest(key[32:], self.header, "sha256")


# Every scheme the context verifies, with the limit on its cost; argon2 is the one it hashes with.
_COST_LIMITS = {
    "argon2": _argon2_cost,
    "bcrypt_any": _bcrypt_cost,
    "scrypt": _scrypt_cost,
    "scrypt_kdf": _scrypt_cost,
    "pbkdf2_sha256": _pbkdf2_cost,
    "pbkdf2_sha512": _pbkdf2_cost,
    "django_argon2": _argon2_cost,
    "django_pbkdf2_sha256": _pbkdf2_cost,
    "django_bcrypt_sha256": _bcrypt_cost,
    "werkzeug_pbkdf2": _pbkdf2_cost,
    "werkzeug_scrypt": _scrypt_cost,
}
_IMPORTED_SCHEMES = [
    bcrypt_any,
    "scrypt",
    scrypt_kdf,
    "pbkdf2_sha256",
    "pbkdf2_sha512",
    "django_argon2",
    "django_pbkdf2_sha256",
    "django_bcrypt_sha256",
    werkzeug_pbkdf2,
    werkzeug_scrypt,
]
