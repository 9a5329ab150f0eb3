"""Access tokens: RS256 JWTs signed with the service's key, checked against the database."""

import time
import uuid
from dataclasses import dataclass

from flask import current_app
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey
from joserfc.jwt import JWTClaimsRegistry

from freshcom_customers.errors import InvalidToken
from freshcom_customers.extensions import db
from freshcom_customers.models import Account, User

ALGORITHM = "RS256"


class Signer:
    """The app's signing key and the public key set that verifies its tokens."""

    def __init__(self, private_key: RSAKey, issuer: str):
        self.key = private_key
        self.kid = private_key.thumbprint()
        self.issuer = issuer
        public = RSAKey.import_key(
            private_key.as_dict(private=False), {"kid": self.kid, "alg": ALGORITHM, "use": "sig"}
        )
        self.public_keys = KeySet([public])
        self.claims = JWTClaimsRegistry(
            iss={"essential": True, "value": issuer}, exp={"essential": True}, aid={"essential": True}
        )

    def jwks(self) -> dict:
        return self.public_keys.as_dict(private=False)


def _signer() -> Signer:
    return current_app.extensions["freshcom_signer"]


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's account and role, and its user when there is one."""

    account: Account
    role: str
    user: User | None = None
    customer_id: uuid.UUID | None = None

    @property
    def is_staff(self) -> bool:
        return self.role not in ("guest", "customer")


def issue(account: Account, role: str, *, user: User | None = None, customer_id=None, lifetime=None):
    """Sign an access token; return (jwt, lifetime in seconds)."""
    signer = _signer()
    lifetime = lifetime or current_app.config["ACCESS_TOKEN_LIFETIME"]
    now = int(time.time())
    claims = {
        "iss": signer.issuer,
        "aid": str(account.id),
        "role": role,
        "typ": "user" if user else "publishable",
        "iat": now,
        "exp": now + lifetime,
        "jti": str(uuid.uuid4()),
    }
    if user is not None:
        claims["sub"] = str(user.id)
        claims["gen"] = user.token_generation
    if customer_id is not None:
        claims["cid"] = str(customer_id)
    header = {"alg": ALGORITHM, "kid": signer.kid, "typ": "at+jwt"}
    return jwt.encode(header, claims, signer.key), lifetime


def authenticate(token: str) -> Principal:
    """Verify a token and that its account and user still allow it; raise InvalidToken if not."""
    claims = _verified_claims(token)
    account = db.session.get(Account, _uuid(claims["aid"]))
    if account is None:
        raise InvalidToken()
    if claims.get("typ") == "publishable":
        return Principal(account, "guest")
    user = db.session.get(User, _uuid(claims.get("sub")))
    # A suspension or a revocation bumps token_generation: older tokens die at once.
    if user is None or not user.is_active or claims.get("gen") != user.token_generation:
        raise InvalidToken()
    customer_id = _uuid(claims["cid"]) if "cid" in claims else None
    return Principal(account, claims["role"], user, customer_id)


def _verified_claims(token: str) -> dict:
    signer = _signer()
    try:
        claims = jwt.decode(token, signer.public_keys, algorithms=[ALGORITHM]).claims
        signer.claims.validate(claims)
    except (JoseError, ValueError, TypeError) as e:
        raise InvalidToken() from e
    return claims


def _uuid(value) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError as e:
        raise InvalidToken() from e
