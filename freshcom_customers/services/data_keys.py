"""Secrets the service must read back (TOTP secrets), encrypted at rest with the data keys.

FRESHCOM_DATA_KEYS is a comma-separated list of Fernet keys (AES-128-CBC with HMAC-SHA256,
from `cryptography`). The first encrypts; every one decrypts, so a new key goes first and the
old one stays listed until `flask data-keys rotate` has re-encrypted every secret with the new
one (docs/deploy.md, "Data keys"). Development and tests generate one key in the instance
folder; production refuses to start without the setting (config.py).

Only the ciphertext is stored or passed around; the plaintext lives in a local variable for
the moment it is used, and never reaches a log.
"""

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app

_EXTENSION = "freshcom_customers.data_keys"


class UnreadableSecret(Exception):
    """A ciphertext no configured key opens: a key was dropped from FRESHCOM_DATA_KEYS too soon."""


def new_key() -> str:
    """A new random data key, in the form FRESHCOM_DATA_KEYS lists them."""
    return Fernet.generate_key().decode()


def parse(value: str) -> list[str]:
    """The keys a FRESHCOM_DATA_KEYS value lists; ValueError names the first that is not a key."""
    keys = [key.strip() for key in value.split(",") if key.strip()]
    if not keys:
        raise ValueError("no key")
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except ValueError:
            raise ValueError(f"key {position} is not 32 url-safe base64-encoded bytes") from None
    return keys


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str) -> str:
    try:
        return _fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken:
        raise UnreadableSecret("no data key opens this secret") from None


def rotate(ciphertext: str) -> str:
    """The same secret encrypted with the first key (unchanged if it already is)."""
    try:
        return _fernet().rotate(ciphertext.encode()).decode()
    except InvalidToken:
        raise UnreadableSecret("no data key opens this secret") from None


def _fernet() -> MultiFernet:
    fernet = current_app.extensions.get(_EXTENSION)
    if fernet is None:
        keys = current_app.config["DATA_KEYS"]
        fernet = MultiFernet([Fernet(key) for key in parse(keys)])
        current_app.extensions[_EXTENSION] = fernet
    return fernet
