"""A software authenticator: WebAuthn credentials in the JSON forms a browser's toJSON() writes.

It answers the app's options (POST /v1/passkey_registrations, POST /v1/passkey_challenges) as a
platform authenticator does: an EC P-256 key, "none" attestation, user presence and user
verification, so that tests reach past py_webauthn's verification without a browser
(tests/e2e/test_passkeys_browser.py drives a real one).
"""

import base64
import hashlib
import json
import secrets
import struct
from dataclasses import dataclass, field

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

ORIGIN = "http://localhost:3000"  # the test app's STOREFRONT_URL, its one WebAuthn origin
# Authenticator data flags (WebAuthn 6.1): user present, user verified, attested credential data.
UP, UV, AT = 0x01, 0x04, 0x40


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def from_b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Authenticator:
    """One discoverable credential: made by create(), then used by get()."""

    origin: str = ORIGIN
    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    credential_id: bytes = field(default_factory=lambda: secrets.token_bytes(16))
    user_handle: bytes = b""
    sign_count: int = 0

    def create(self, options: dict) -> dict:
        """The new credential's toJSON() for creation options (their challenge, rp and user)."""
        self.user_handle = from_b64url(options["user"]["id"])
        client_data = self._client_data("webauthn.create", options["challenge"])
        attested = (
            bytes(16)  # AAGUID: "none" attestation names no model
            + struct.pack(">H", len(self.credential_id))
            + self.credential_id
            + cbor2.dumps(self._cose_key())
        )
        auth_data = self._auth_data(options["rp"]["id"], UP | UV | AT) + attested
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        response = {
            "clientDataJSON": b64url(client_data),
            "attestationObject": b64url(attestation),
            "transports": ["internal"],
        }
        return self._credential(response)

    def get(self, options: dict) -> dict:
        """The assertion's toJSON() for request options (their challenge and rpId), signed."""
        self.sign_count += 1
        client_data = self._client_data("webauthn.get", options["challenge"])
        auth_data = self._auth_data(options["rpId"], UP | UV)
        signed = auth_data + hashlib.sha256(client_data).digest()
        response = {
            "clientDataJSON": b64url(client_data),
            "authenticatorData": b64url(auth_data),
            "signature": b64url(self.key.sign(signed, ec.ECDSA(hashes.SHA256()))),
            "userHandle": b64url(self.user_handle),
        }
        return self._credential(response)

    def _client_data(self, ceremony: str, challenge: str) -> bytes:
        data = {"type": ceremony, "challenge": challenge, "origin": self.origin, "crossOrigin": False}
        return json.dumps(data, separators=(",", ":")).encode()

    def _auth_data(self, rp_id: str, flags: int) -> bytes:
        return hashlib.sha256(rp_id.encode()).digest() + bytes([flags]) + struct.pack(">I", self.sign_count)

    def _cose_key(self) -> dict:
        """The public key as COSE_Key (RFC 9053): EC2, ES256, P-256, x and y."""
        numbers = self.key.public_key().public_numbers()
        return {1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")}

    def _credential(self, response: dict) -> dict:
        return {
            "id": b64url(self.credential_id),
            "rawId": b64url(self.credential_id),
            "type": "public-key",
            "response": response,
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
        }
