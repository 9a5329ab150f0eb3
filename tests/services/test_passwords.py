"""Passwords: argon2id, length policy without truncation, rehash when the cost changes, and the
hashes other platforms store, verified and rehashed to argon2id."""

import base64
import hashlib
import hmac
import struct
from importlib.metadata import metadata

import bcrypt
import pytest
from argon2 import PasswordHasher, Type
from passlib import hash as passlib_hash
from werkzeug.security import generate_password_hash
from zxcvbn.frequency_lists import FREQUENCY_LISTS

from freshcom_customers.config import DEFAULTS
from freshcom_customers.errors import ValidationFailed
from freshcom_customers.services import passwords, users
from tests.logcapture import app_factory


@pytest.mark.parametrize("password", ["seven77", "x" * 129, ""])
def test_policy_refuses_lengths_outside_8_to_128(password):
    with pytest.raises(ValidationFailed) as error:
        passwords.check_policy(password)
    assert error.value.errors[0].code == "length"
    assert error.value.errors[0].field == "password"


@pytest.mark.parametrize("password", ["eight8x8", "x" * 128, "correct horse battery staple", "pässwörd✓"])
def test_policy_accepts_any_composition_within_the_lengths(password):
    passwords.check_policy(password)


@pytest.mark.parametrize("password", ["password", "12345678", "Qwertyuiop", "iloveyou", "sunshine"])
def test_policy_refuses_common_passwords_whatever_their_case(password):
    with pytest.raises(ValidationFailed) as error:
        passwords.check_policy(password)
    assert error.value.errors[0].code == "invalid"


def test_the_common_list_holds_at_least_the_10000_most_common():
    assert len(passwords.common_passwords()) >= 10_000


def test_hash_is_argon2id_and_verifies(app):
    with app.app_context():
        hashed = passwords.hash_password("a long passphrase")
        assert hashed.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
        assert passwords.verify("a long passphrase", hashed) == (True, None)
        assert passwords.verify("a long passphrasf", hashed)[0] is False


def test_no_truncation_long_passwords_differ_in_their_last_character(app):
    with app.app_context():
        hashed = passwords.hash_password("p" * 127 + "a")
        assert passwords.verify("p" * 127 + "b", hashed)[0] is False


def test_login_rehashes_when_the_parameters_change(app, account, session):
    user = account.owner
    old_hash = user.password_hash
    app.extensions["freshcom_passwords"] = passwords.build_context("m=2048,t=1,p=1")
    try:
        users.authenticate(None, user.username, account.owner_password)
    finally:
        app.extensions["freshcom_passwords"] = passwords.build_context("m=1024,t=1,p=1")
    assert user.password_hash != old_hash
    assert "$m=2048,t=1,p=1$" in user.password_hash


# OWASP Password Storage Cheat Sheet: argon2id, minimum memory (KiB) for each iteration count, p=1.
# ASVS 5.0 appendix C names the first (46 MiB, t=1).
OWASP_ARGON2ID_MINIMUM = {1: 47104, 2: 19456, 3: 12288, 4: 9216, 5: 7168}


def test_production_defaults_meet_asvs_appendix_c():
    params = passwords.parse_hash_params(DEFAULTS["PASSWORD_HASH_PARAMS"])
    rounds = min(params["rounds"], max(OWASP_ARGON2ID_MINIMUM))
    assert params["memory_cost"] >= OWASP_ARGON2ID_MINIMUM[rounds]
    assert params["parallelism"] >= 1
    assert passwords.build_context(DEFAULTS["PASSWORD_HASH_PARAMS"]).hash("x" * 8).startswith("$argon2id$")


def test_the_environment_sets_the_hash_parameters(app, app_config, monkeypatch):
    monkeypatch.setenv("FRESHCOM_PASSWORD_HASH_PARAMS", "m=2048,t=2,p=1")
    settings = {k: v for k, v in app_config.items() if k != "PASSWORD_HASH_PARAMS"}
    with app_factory(app, settings) as make_app, make_app().app_context():
        assert passwords.hash_password("a long passphrase").startswith("$argon2id$v=19$m=2048,t=2,p=1$")


def test_no_truncation_of_multibyte_passwords_at_128_characters(app):
    """128 characters of 4 bytes each: 512 bytes, all of them hashed."""
    with app.app_context():
        hashed = passwords.hash_password("😀" * 127 + "a")
        assert passwords.verify("😀" * 127 + "b", hashed)[0] is False
        assert passwords.verify("😀" * 127 + "a", hashed)[0] is True


def test_the_common_list_is_a_permissively_licensed_frequency_list():
    """zxcvbn (MIT) ships Xato's 30,000 most common passwords, most common first."""
    assert metadata("zxcvbn")["License"] == "MIT"
    ranked = FREQUENCY_LISTS["passwords"]
    assert len(ranked) == 30_000
    assert ranked[:3] == ["123456", "password", "12345678"]
    assert passwords.common_passwords() == frozenset(ranked)


# Hashes from other platforms (API.md §9), each made by the library that platform uses, at a
# low cost; PASSWORD is the password of every one.
PASSWORD = "correct horse battery staple"


def scrypt_kdf(password: str, log_n: int = 10, r: int = 8, p: int = 1, salt: bytes = b"s" * 32) -> str:
    """Medusa v2's hash, byte for byte as the npm package scrypt-kdf builds it."""
    header = b"scrypt\x00" + struct.pack(">BII", log_n, r, p) + salt
    header += hashlib.sha256(header).digest()[:16]
    key = hashlib.scrypt(password.encode(), salt=salt, n=2**log_n, r=r, p=p, dklen=64)
    return base64.b64encode(header + hmac.digest(key[32:], header, "sha256")).decode()


def django_pbkdf2_sha256(password: str, iterations: int = 1000, salt: str = "Fv4n7QPsbL0dMh3y") -> str:
    """Django's PBKDF2PasswordHasher.encode."""
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations)
    return f"pbkdf2_sha256${iterations}${salt}${base64.b64encode(digest).decode()}"


def django_bcrypt_sha256(password: str) -> str:
    """Django's BCryptSHA256PasswordHasher.encode: bcrypt over the SHA-256 hex digest."""
    hexdigest = hashlib.sha256(password.encode()).hexdigest().encode()
    return "bcrypt_sha256$" + bcrypt.hashpw(hexdigest, bcrypt.gensalt(4)).decode()


def django_argon2(password: str) -> str:
    """Django's Argon2PasswordHasher.encode: "argon2" before argon2-cffi's own hash."""
    return "argon2" + PasswordHasher(memory_cost=1024, time_cost=2, parallelism=2).hash(password)


def bcrypt_hash(password: str, prefix: str = "$2b$") -> str:
    made = bcrypt.hashpw(password.encode()[:72], bcrypt.gensalt(4)).decode()
    return prefix + made.removeprefix("$2b$")  # PHP writes $2y$, older libraries $2a$: the same bcrypt


# Made by `Scrypt.kdf("correct horse battery staple", {logN: 10})` of the npm package scrypt-kdf 4.0.0
# (Medusa's default is logN 15, 32 MiB, too slow to verify in every run).
SCRYPT_KDF_FROM_NODE = (
    "c2NyeXB0AAoAAAAIAAAAAcTC5fsgPTBaeHLbhekzGmCFfhtnM7/Xh31dPoiON0K00bm8sqr43q0MIADSxhBOO7Jz/fa468mSmz2h"
    "8oNEjHflC4w2tPUQL16SK+imdOlC"
)

FOREIGN_HASHES = {
    "argon2i": lambda pw: PasswordHasher(memory_cost=512, time_cost=2, parallelism=1, type=Type.I).hash(pw),
    "argon2d": lambda pw: PasswordHasher(memory_cost=512, time_cost=2, parallelism=1, type=Type.D).hash(pw),
    "argon2id, other parameters": lambda pw: PasswordHasher(memory_cost=2048, time_cost=1).hash(pw),
    "bcrypt $2b$": bcrypt_hash,
    "bcrypt $2a$": lambda pw: bcrypt_hash(pw, "$2a$"),
    "bcrypt $2y$": lambda pw: bcrypt_hash(pw, "$2y$"),
    "scrypt (PHC)": lambda pw: passlib_hash.scrypt.using(rounds=10).hash(pw),
    "scrypt-kdf (Medusa)": scrypt_kdf,
    "pbkdf2-sha256 (PHC)": lambda pw: passlib_hash.pbkdf2_sha256.using(rounds=1000).hash(pw),
    "pbkdf2-sha512 (PHC)": lambda pw: passlib_hash.pbkdf2_sha512.using(rounds=1000).hash(pw),
    "Django argon2": django_argon2,
    "Django pbkdf2_sha256": django_pbkdf2_sha256,
    "Django bcrypt_sha256": django_bcrypt_sha256,
    "Werkzeug pbkdf2:sha256": lambda pw: generate_password_hash(pw, "pbkdf2:sha256:1000"),
    "Werkzeug pbkdf2:sha512": lambda pw: generate_password_hash(pw, "pbkdf2:sha512:1000"),
    "Werkzeug scrypt": lambda pw: generate_password_hash(pw, "scrypt:1024:8:1"),
}


@pytest.fixture(params=FOREIGN_HASHES, ids=str)
def foreign(request) -> str:
    """A hash of PASSWORD from another platform."""
    return FOREIGN_HASHES[request.param](PASSWORD)


def test_a_foreign_hash_verifies_its_password_and_is_rehashed_to_argon2id(app, foreign):
    with app.app_context():
        passwords.check_hash(foreign)
        ok, new_hash = passwords.verify(PASSWORD, foreign)
        assert ok
        assert new_hash.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
        assert passwords.verify(PASSWORD, new_hash) == (True, None)


def test_a_foreign_hash_refuses_a_wrong_password(app, foreign):
    with app.app_context():
        assert passwords.verify(PASSWORD + "!", foreign) == (False, None)
        assert passwords.verify(PASSWORD.upper(), foreign) == (False, None)


def test_medusas_scrypt_kdf_hash_made_by_the_npm_package_verifies(app):
    with app.app_context():
        passwords.check_hash(SCRYPT_KDF_FROM_NODE)
        assert passwords.verify(PASSWORD, SCRYPT_KDF_FROM_NODE)[0]
        assert not passwords.verify("correct horse battery stapler", SCRYPT_KDF_FROM_NODE)[0]
    # Our byte-for-byte builder reads the same layout: same parameters, checksum over the same bytes.
    ours = base64.b64decode(scrypt_kdf(PASSWORD, salt=base64.b64decode(SCRYPT_KDF_FROM_NODE)[16:48]))
    assert ours == base64.b64decode(SCRYPT_KDF_FROM_NODE)


def test_bcrypt_reads_72_bytes_as_the_platforms_that_made_the_hashes_did(app):
    """bcrypt 5 refuses longer passwords; PHP, Node and older Python cut them, so a login cuts them too."""
    long_password = "é" * 40  # 80 bytes
    with app.app_context():
        assert passwords.verify(long_password, bcrypt_hash(long_password))[0]
        assert passwords.verify(long_password[:36] + "x" * 4, bcrypt_hash(long_password))[0]  # byte 73 on


def fake_argon2(m: int, t: int, p: int) -> str:
    return f"$argon2id$v=19$m={m},t={t},p={p}$c29tZXNhbHRzb21lc2FsdA$" + "A" * 43


def fake_scrypt_kdf(log_n: int, r: int = 8, p: int = 1) -> str:
    """A well-formed scrypt-kdf key whose HMAC is junk: parsing it never runs scrypt."""
    header = b"scrypt\x00" + struct.pack(">BII", log_n, r, p) + b"s" * 32
    return base64.b64encode(header + hashlib.sha256(header).digest()[:16] + b"m" * 32).decode()


HEX64 = "ab" * 32
BCRYPT_SALT_AND_CHECKSUM = bcrypt.hashpw(b"x", bcrypt.gensalt(4)).decode()[7:]
HEX128 = "ab" * 64


@pytest.mark.parametrize(
    ("password_hash", "limit"),
    [
        (fake_argon2(524_288, 1, 1), "argon2 m=524288,t=1,p=1"),
        (fake_argon2(262_144, 5, 1), "argon2 m=262144,t=5,p=1"),
        (fake_argon2(65_536, 1, 64), "argon2 m=65536,t=1,p=64"),
        ("argon2" + fake_argon2(524_288, 1, 1), "argon2 m=524288,t=1,p=1"),
        ("$2b$15$" + BCRYPT_SALT_AND_CHECKSUM, "bcrypt cost 15"),
        ("$2y$31$" + BCRYPT_SALT_AND_CHECKSUM, "bcrypt cost 31"),
        ("bcrypt_sha256$$2b$20$" + BCRYPT_SALT_AND_CHECKSUM, "bcrypt cost 20"),
        ("$scrypt$ln=21,r=8,p=1$c2FsdA$" + "A" * 43, "scrypt N=2097152,r=8,p=1"),
        (fake_scrypt_kdf(30), "scrypt N=1073741824,r=8,p=1"),
        (fake_scrypt_kdf(14, p=64), "scrypt N=16384,r=8,p=64"),
        (f"scrypt:2097152:8:1$salt${HEX128}", "scrypt N=2097152,r=8,p=1"),
        ("$pbkdf2-sha256$3000001$c2FsdA$" + "A" * 43, "PBKDF2 with 3000001 iterations"),
        ("pbkdf2_sha256$1000000000$salt$" + "A" * 43 + "=", "PBKDF2 with 1000000000 iterations"),
        (f"pbkdf2:sha256:1000000000$salt${HEX64}", "PBKDF2 with 1000000000 iterations"),
    ],
)
def test_an_imported_hash_costing_more_than_the_limits_is_refused_without_running_it(
    app, password_hash, limit
):
    """Each of these would take a login seconds to minutes or gigabytes; checking one takes no KDF."""
    with app.app_context(), pytest.raises(ValidationFailed) as error:
        passwords.check_hash(password_hash)
    (refused,) = error.value.errors
    assert (refused.field, refused.code) == ("password_hash", "invalid")
    assert refused.title.startswith(f"Costs more than this service allows: {limit};")


@pytest.mark.parametrize(
    "password_hash",
    [
        fake_argon2(262_144, 4, 16),
        "$2b$14$" + BCRYPT_SALT_AND_CHECKSUM,
        fake_scrypt_kdf(17),
        f"scrypt:131072:8:1$salt${HEX128}",
        "$pbkdf2-sha512$3000000$c2FsdA$" + "A" * 86,
    ],
)
def test_hashes_at_the_limits_are_accepted(app, password_hash):
    with app.app_context():
        passwords.check_hash(password_hash)


@pytest.mark.parametrize(
    "password_hash",
    [
        "correct horse battery staple",  # a plain password in the hash column
        "$1$saltsalt$qjXMvbEw8oaL.CzflDugX/",  # md5-crypt
        "$5$rounds=5000$salt$" + "a" * 43,  # sha256-crypt
        "5f4dcc3b5aa765d61d8327deb882cf99",  # bare MD5
        "sha256$salt$" + HEX64,  # Werkzeug's plain digests, removed in Werkzeug 3
        f"pbkdf2:sha256$salt${HEX64}",  # no iteration count: Werkzeug's default changed over versions
        f"pbkdf2:md5:1000$salt${HEX64}",
        f"pbkdf2:sha256:1000$salt${HEX128}",  # a sha512-sized digest
        f"scrypt:1000:8:1$salt${HEX128}",  # N not a power of 2
        "!Kv3N0aDb7uX9s2QeR4tY8wZ1pLmH6jGc5fA0oIbU",  # Django's unusable password
        "$2b$10$tooShort",
        "$2b$03$" + BCRYPT_SALT_AND_CHECKSUM,  # a bcrypt cost under 4
        "$argon2id$v=19$m=1024$nonsense",
        "pbkdf2_sha1$1000$salt$" + "A" * 27 + "=",  # Django's older default, not among the formats
    ],
)
def test_a_hash_in_no_accepted_format_is_refused(app, password_hash):
    with app.app_context(), pytest.raises(ValidationFailed) as error:
        passwords.check_hash(password_hash)
    assert error.value.errors[0].title == "Not a password hash in a format this service accepts."


def test_a_scrypt_kdf_key_with_a_wrong_checksum_is_refused(app):
    key = bytearray(base64.b64decode(fake_scrypt_kdf(10)))
    key[20] ^= 1  # the salt changed, so the SHA-256 checksum of the first 48 bytes no longer matches
    with app.app_context(), pytest.raises(ValidationFailed):
        passwords.check_hash(base64.b64encode(key).decode())
