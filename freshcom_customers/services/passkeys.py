"""Passkeys (API.md 11): WebAuthn Level 3 credentials, registered by a user and used to log in.

The WebAuthn ceremonies are py_webauthn's (the `webauthn` package): options out, responses
verified. Here: the relying party from the configuration, the challenges as one-time tokens
(5 minutes, single use; a registration's belongs to its user, a login's to no one until the
assertion names its credential), user verification required, and what the authenticator says
of a credential kept: its signature counter, which must go up when it counts at all, and its
backup flags (BE: may be synced; BS: is synced).

Options and credentials travel in WebAuthn's JSON forms (`parseCreationOptionsFromJSON`,
`PublicKeyCredential.toJSON()`), so a browser page needs no encoding code. Every refused
registration is a 422 on credential; every refused assertion is InvalidCredentials, the
password grant's invalid_grant.
"""

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import select, update
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    decode_credential_public_key,
    parse_authentication_credential_json,
    parse_registration_credential_json,
)
from webauthn.helpers.decoded_public_key_to_cryptography import decoded_public_key_to_cryptography
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from freshcom_customers import identifiers, origins
from freshcom_customers.errors import InvalidCredentials, NotFound, Taken, invalid
from freshcom_customers.extensions import db
from freshcom_customers.models import Account, Passkey, User
from freshcom_customers.models.base import utcnow
from freshcom_customers.observability import security_events
from freshcom_customers.services import one_time_tokens, users
from freshcom_customers.services.database import as_uuid, flush

CHALLENGE_LIFETIME = 5 * 60
CHALLENGE_BYTES = 32
TIMEOUT_MS = CHALLENGE_LIFETIME * 1000
MAX_PASSKEYS = 20  # per user
MAX_NAME = 64
_TRANSPORTS = {t.value for t in AuthenticatorTransport}
MAX_CREDENTIAL_ID = 1023  # bytes; longer ones a relying party SHOULD refuse (WebAuthn L3 7.1)
DEFAULT_NAME = "Passkey"  # what the list and the notices call one registered without a name


@dataclass(frozen=True)
class RelyingParty:
    id: str
    name: str
    origins: list[str]


def relying_party() -> RelyingParty:
    """The relying party from WEBAUTHN_*, by default the STOREFRONT_URL's host and origin."""
    config = current_app.config
    storefront = config["STOREFRONT_URL"]
    rp_id = config.get("WEBAUTHN_RP_ID") or urlsplit(storefront).hostname
    allowed = origins.parse(config.get("WEBAUTHN_ORIGINS") or storefront, "FRESHCOM_WEBAUTHN_ORIGINS")
    if allowed is None:
        raise ValueError("FRESHCOM_WEBAUTHN_ORIGINS must list the storefronts' origins, not '*'")
    return RelyingParty(rp_id, config.get("WEBAUTHN_RP_NAME") or rp_id, sorted(allowed))


def registration_options(user: User, account: Account) -> dict:
    """New creation options for the user (a discoverable credential, user verification required).

    The user's passkeys are excluded, so that an authenticator does not register twice.
    """
    rp = relying_party()
    challenge = secrets.token_bytes(CHALLENGE_BYTES)
    one_time_tokens.issue(
        "passkey_registration", user=user, email=None, lifetime=CHALLENGE_LIFETIME, value=_b64(challenge)
    )
    options = generate_registration_options(
        rp_id=rp.id,
        rp_name=account.name if user.is_managed else rp.name,
        user_id=user.id.bytes,
        user_name=user.email or user.username,
        user_display_name=user.name or user.email or user.username,
        challenge=challenge,
        timeout=TIMEOUT_MS,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=p.credential_id) for p in list_for(user)],
    )
    return json.loads(options_to_json(options))


def register(user: User, credential: object, name: str | None) -> Passkey:
    """Verify the new credential against the user's waiting challenge and keep it as a passkey."""
    if len(list_for(user)) >= MAX_PASSKEYS:
        raise invalid("credential", "too_many", f"A user has at most {MAX_PASSKEYS} passkeys.")
    rp = relying_party()
    try:
        parsed = parse_registration_credential_json(credential)
        challenge = _challenge_of(parsed.response.client_data_json)
        token = one_time_tokens.consume("passkey_registration", _b64(challenge))
        if token.user_id != user.id:
            raise NotFound("registration")
        verified = verify_registration_response(
            credential=parsed,
            expected_challenge=challenge,
            expected_rp_id=rp.id,
            expected_origin=rp.origins,
            require_user_verification=True,
        )
        if len(verified.credential_id) > MAX_CREDENTIAL_ID:  # WebAuthn L3 7.1 step 23
            raise ValueError("credential id too long")
        # A key that no signature could ever match is refused now, not at every login.
        decoded_public_key_to_cryptography(decode_credential_public_key(verified.credential_public_key))
    except NotFound:
        raise invalid("credential", "expired", "No passkey registration is waiting.") from None
    except Exception as e:  # the library raises its own errors, and ValueError, KeyError... on bad input
        raise invalid("credential", "invalid", "The credential was not accepted.") from e
    passkey = Passkey(
        user_id=user.id,
        credential_id=verified.credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        transports={"transports": [t.value for t in parsed.response.transports or []]},
        aaguid=verified.aaguid,
        backup_eligible=verified.credential_device_type.value == "multi_device",
        backed_up=verified.credential_backed_up,
        name=(name or "").strip()[:MAX_NAME] or DEFAULT_NAME,
    )
    try:
        # The unique credential id refuses one registered already, or by a request meanwhile;
        # the savepoint keeps the rest of the transaction (the challenge spent) usable.
        with db.session.begin_nested():
            db.session.add(passkey)
            flush()
    except Taken:
        raise invalid("credential", "taken", "This passkey is already registered.") from None
    security_events.record("passkey_added", **security_events.user_fields(user), passkey_id=str(passkey.id))
    users.tell_second_factor_changed(user, "passkey_added", name=passkey.name)
    return passkey


def login_options(account: Account, username: str | None = None) -> dict:
    """Request options for a login to account: with any of its users' passkeys (discoverable),
    or, given a username, with that user's (allowCredentials lists them).

    A username that names no user of the account with a passkey gets one credential id made up
    from it, the same each time, so that the answer does not tell who has an account.
    """
    rp = relying_party()
    challenge = secrets.token_bytes(CHALLENGE_BYTES)
    payload = {"account_id": str(account.id)}
    allowed = []
    if username:
        user = users.user_named(account, username)
        keys = list_for(user) if user is not None else []
        if keys:
            payload["user_id"] = str(user.id)
            allowed = [_descriptor(key) for key in keys]
        else:
            payload["user_id"] = None  # no passkey can answer this challenge
            allowed = [PublicKeyCredentialDescriptor(id=_decoy_id(account, username))]
    one_time_tokens.issue(
        "passkey_challenge", email=None, lifetime=CHALLENGE_LIFETIME, value=_b64(challenge), payload=payload
    )
    options = generate_authentication_options(
        rp_id=rp.id,
        challenge=challenge,
        timeout=TIMEOUT_MS,
        allow_credentials=allowed,
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    return json.loads(options_to_json(options))


def authenticate(account: Account, assertion: str) -> User:
    """The active user of account whose passkey signed this assertion of a live challenge for account.

    InvalidCredentials for every refusal: an unknown credential, a used or expired challenge, a
    challenge of another account, a wrong origin or rpId, no user verification, a counter that
    went back, a user handle that is not the passkey's user, a suspended user.
    """
    rp = relying_party()
    try:
        parsed = parse_authentication_credential_json(assertion)
        challenge = _challenge_of(parsed.response.client_data_json)
        token = one_time_tokens.consume("passkey_challenge", _b64(challenge))
        payload = token.payload or {}
        passkey = db.session.scalar(select(Passkey).where(Passkey.credential_id == parsed.raw_id))
        if passkey is None or payload.get("account_id") != str(account.id):
            raise InvalidCredentials()
        # A challenge for a username is that user's; a discoverable one must get the user
        # handle, and a handle given must name the passkey's user (WebAuthn L3 7.2, step 6).
        named = "user_id" in payload
        if named and payload["user_id"] != str(passkey.user_id):
            raise InvalidCredentials()
        handle = parsed.response.user_handle
        if (not named and not handle) or (handle and bytes(handle) != passkey.user_id.bytes):
            raise InvalidCredentials()
        verified = verify_authentication_response(
            credential=parsed,
            expected_challenge=challenge,
            expected_rp_id=rp.id,
            expected_origin=rp.origins,
            credential_public_key=passkey.public_key,
            credential_current_sign_count=passkey.sign_count,
            require_user_verification=True,
        )
    except InvalidCredentials:
        raise
    except Exception as e:  # NotFound (the challenge), the library's errors, bad input
        raise InvalidCredentials() from e
    user = passkey.user
    if not user.is_active or users.role_in(user, account) is None:
        raise InvalidCredentials()
    _record_use(passkey, verified.new_sign_count, verified.credential_backed_up)
    return user


def _record_use(passkey: Passkey, sign_count: int, backed_up: bool) -> None:
    """Keep the counter the assertion showed, unless a concurrent login kept one as high: two
    assertions with the same count (a cloned authenticator) must not both pass. A counter of 0
    (an authenticator that keeps none) stays 0 and is never a clash."""
    moved = sign_count > passkey.sign_count
    query = update(Passkey).where(Passkey.id == passkey.id)
    if moved:
        query = query.where(Passkey.sign_count < sign_count)
    used = db.session.execute(
        query.values(sign_count=sign_count, backed_up=backed_up, last_used_at=utcnow()).execution_options(
            synchronize_session=False
        )
    )
    if used.rowcount != 1:
        raise InvalidCredentials()
    db.session.refresh(passkey, ["sign_count", "backed_up", "last_used_at"])


def list_for(user: User) -> list[Passkey]:
    return list(
        db.session.scalars(select(Passkey).where(Passkey.user_id == user.id).order_by(Passkey.inserted_at))
    )


def get_own(user: User, passkey_id) -> Passkey:
    """The user's passkey with this id; NotFound for another's or a malformed id."""
    key = as_uuid(passkey_id)
    passkey = db.session.get(Passkey, key) if key else None
    if passkey is None or passkey.user_id != user.id:
        raise NotFound("passkey")
    return passkey


def remove(passkey: Passkey) -> None:
    security_events.record(
        "passkey_removed", **security_events.user_fields(passkey.user), passkey_id=str(passkey.id)
    )
    users.tell_second_factor_changed(passkey.user, "passkey_removed", name=passkey.name or DEFAULT_NAME)
    db.session.delete(passkey)


def _descriptor(passkey: Passkey) -> PublicKeyCredentialDescriptor:
    transports = [t for t in (passkey.transports or {}).get("transports", []) if t in _TRANSPORTS]
    return PublicKeyCredentialDescriptor(
        id=passkey.credential_id, transports=[AuthenticatorTransport(t) for t in transports] or None
    )


def _decoy_id(account: Account, username: str) -> bytes:
    """A credential id for a username without passkeys: made from it with the secret key, so stable."""
    key = str(current_app.config["SECRET_KEY"]).encode()
    message = f"passkey-decoy:{account.id}:{identifiers.canonical(username)}".encode()
    return hmac.new(key, message, hashlib.sha256).digest()


def _challenge_of(client_data_json: bytes) -> bytes:
    """The challenge a response's clientDataJSON carries, by which its waiting token is found."""
    data = json.loads(bytes(client_data_json))
    challenge = data["challenge"]
    if not isinstance(challenge, str) or len(challenge) > 128:
        raise ValueError("no challenge")
    try:
        return base64.urlsafe_b64decode(challenge + "=" * (-len(challenge) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("no challenge") from None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
