"""Access tokens: JWTs signed with the service's key (EdDSA or RS256), checked against the database."""

import functools
import time
import uuid
from dataclasses import dataclass, replace

import orjson
from flask import current_app
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError, UnsupportedAlgorithmError
from joserfc.jwa import EdDSAAlgorithm
from joserfc.jwk import KeySet, OKPKey, RSAKey
from joserfc.jws import JWSRegistry
from joserfc.jwt import JWTClaimsRegistry
from joserfc.util import urlsafe_b64encode
from sqlalchemy import and_, bindparam, func, select
from sqlalchemy.orm.attributes import set_committed_value

from freshcom_customers.errors import InvalidToken
from freshcom_customers.extensions import db
from freshcom_customers.models import (
    Account,
    AccountMembership,
    Client,
    Customer,
    LoginSession,
    RefreshToken,
    User,
)
from freshcom_customers.models.base import utcnow
from freshcom_customers.observability import metrics
from freshcom_customers.services import callers, refresh_tokens, sessions

# What each kind of signing key signs with: an Ed25519 key (OKP) EdDSA, an RSA key RS256.
ALGORITHMS = {"OKP": "EdDSA", "RSA": "RS256"}
# How many verified tokens a process remembers (Signer.verified): a client sends its token
# with every request until it expires, and checking its signature again tells nothing new.
VERIFIED_TOKENS = 2048


class _EdDSA(EdDSAAlgorithm):
    # RFC 9864 deprecates "EdDSA" in favour of "Ed25519", and joserfc warns at each use. We sign
    # EdDSA, which API.md names and today's JOSE libraries read (docs/decisions.md).
    security_warning = None


class _Registry(JWSRegistry):
    algorithms = {**JWSRegistry.algorithms, "EdDSA": _EdDSA()}


REGISTRY = _Registry(algorithms=list(ALGORITHMS.values()))
# Every authenticated request runs this: the account, the user, the user's customer in the
# account (if any), the user's membership of the account (a standard user's) and the first
# token of the family (none when family_id is NULL) and the family's login session (none for
# families begun before sessions were recorded), built once. The token's and the session's
# columns are read, not their objects, so a revocation or an ending shows even when the
# session already holds that row.
CALLER = (
    select(
        Account,
        User,
        Customer,
        AccountMembership.id,
        RefreshToken.id,
        RefreshToken.revoked_at,
        LoginSession.ended_at,
        LoginSession.last_used_at,
    )
    .select_from(Account)
    .join(User, User.id == bindparam("user_id"))
    .outerjoin(Customer, and_(Customer.user_id == User.id, Customer.account_id == Account.id))
    .outerjoin(
        AccountMembership,
        and_(
            AccountMembership.user_id == User.id,
            AccountMembership.account_id == func.coalesce(Account.live_account_id, Account.id),
        ),
    )
    .outerjoin(RefreshToken, RefreshToken.id == bindparam("family_id"))
    .outerjoin(LoginSession, LoginSession.id == bindparam("family_id"))
    .where(Account.id == bindparam("account_id"))
)


class Signer:
    """The app's signing key, and the public keys that verify tokens.

    The current key signs: EdDSA if it is an Ed25519 key, RS256 if an RSA one. Keys rotated out
    of signing (previous_keys, of either kind) still verify and stay published in the JWKS, each
    with its algorithm, so the tokens they signed live until they expire. A token must name its
    key by kid, and that key's algorithm: a kid verifies with one algorithm only.
    """

    def __init__(self, private_key: OKPKey | RSAKey, issuer: str, previous_keys=()):
        self.key = private_key
        self.kid = private_key.thumbprint()
        # In the order joserfc writes a header, so that both ways make the same token.
        self.header = {"typ": "at+jwt", "alg": ALGORITHMS[private_key.key_type], "kid": self.kid}
        ed25519 = private_key.key_type == "OKP" and private_key.curve_name == "Ed25519"
        self._ed25519 = private_key.private_key if ed25519 else None
        self._encoded_header = urlsafe_b64encode(orjson.dumps(self.header))
        self.issuer = issuer
        self._by_kid = {}
        for key in (private_key, *previous_keys):
            kid = key.thumbprint()
            params = {"kid": kid, "alg": ALGORITHMS[key.key_type], "use": "sig"}
            self._by_kid.setdefault(kid, type(key).import_key(key.as_dict(private=False), params))
        self.public_keys = KeySet(list(self._by_kid.values()))
        self.claims = JWTClaimsRegistry(
            iss={"essential": True, "value": issuer}, exp={"essential": True}, aid={"essential": True}
        )
        # The claims of the tokens whose signature this signer verified, by the whole token: a
        # token cannot change without failing its signature, so its claims are those it had.
        # Per signer, so a key dropped from the signer (a new app) verifies nothing it kept.
        self.verified = functools.lru_cache(maxsize=VERIFIED_TOKENS)(self._verify)

    def jwks(self) -> dict:
        return self.public_keys.as_dict(private=False)

    def sign(self, claims: dict) -> str:
        """The claims as a compact JWS (RFC 7515 7.1) signed by the current key.

        An Ed25519 key signs here: the header encoded once, the claims by orjson, the signature
        by cryptography. joserfc's encode made the same token (Ed25519 signatures are
        deterministic) in twice the time, 74 against 43 µs, a cost every token issued paid
        (issue 18). Other keys (RSA) sign through joserfc.
        """
        if self._ed25519 is None:
            return jwt.encode(self.header, claims, self.key, registry=REGISTRY)
        signing_input = self._encoded_header + b"." + urlsafe_b64encode(orjson.dumps(claims))
        return (signing_input + b"." + urlsafe_b64encode(self._ed25519.sign(signing_input))).decode("ascii")

    def verifying_key(self, token) -> OKPKey | RSAKey:
        """The published key the token's kid names; no kid, an unknown one, or another
        algorithm than that key's, fails."""
        header = token.headers()
        key = self._by_kid.get(header.get("kid"))
        if key is None:
            raise InvalidKeyIdError(f"No key for kid: {header.get('kid')!r}")
        if header["alg"] != key.alg:
            raise UnsupportedAlgorithmError(f"Key {key.kid} signs {key.alg}, not {header['alg']!r}")
        return key

    def _verify(self, token: str) -> dict:
        return jwt.decode(token, self.verifying_key, registry=REGISTRY).claims


def _signer() -> Signer:
    return current_app.extensions["freshcom_signer"]


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's account and role, and its user when there is one."""

    account: Account
    role: str
    user: User | None = None
    customer_id: uuid.UUID | None = None
    # The refresh token family the token was issued from: the caller's session.
    family_id: uuid.UUID | None = None
    # The user's customer in the account, read with the user (customers.customer_of_user's).
    customer: Customer | None = None
    # Whether checking the token noted a use of its session (sessions.touch): a write to commit.
    session_touched: bool = False
    # The client of a client_credentials token (a machine: no user); None for the others.
    machine_client_id: uuid.UUID | None = None
    # A user's caller: what views rendered from its account, user and customer rows, kept
    # with the process's cached caller (callers.Entry.memo); None for the others.
    memo: dict | None = None

    @property
    def is_staff(self) -> bool:
        return self.role not in ("guest", "customer")

    @property
    def is_machine(self) -> bool:
        return self.machine_client_id is not None


class _Attached:
    """A row of a KeptPrincipal: the cache's copy, merged into the request's session
    (callers.attached) the first time it is read."""

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, principal, owner=None):
        if principal is None:
            return self
        values = principal.__dict__
        if self.name not in values:
            values[self.name] = principal._attached(self.name)
        return values[self.name]

    def __set__(self, principal, kept):
        principal.__dict__[f"kept_{self.name}"] = kept


class KeptPrincipal(Principal):
    """A Principal from the process's cache of callers (services/callers.py). Its account,
    user and customer are merged into the request's session only when read: a read whose
    answer was rendered before (api/customers.py) opens no session at all (issue 18). The
    customer comes with the merged user as its loaded user, so reading it runs no lazy load."""

    account = _Attached()
    user = _Attached()
    customer = _Attached()

    def _attached(self, name: str):
        row = callers.attached(self.__dict__[f"kept_{name}"])
        if name == "customer" and row is not None:
            user = self.user
            if user is not None and row.user_id == user.id:
                set_committed_value(row, "user", user)
        return row


def issue(account: Account, role: str, *, user: User | None = None, **claims) -> tuple[str, int]:
    """issue_to for an account's and a user's rows; claims: issue_to's keywords."""
    if user is None:
        return issue_to(account.id, role, **claims)
    return issue_to(account.id, role, user_id=user.id, generation=user.token_generation, **claims)


def issue_to(
    account_id: uuid.UUID,
    role: str,
    *,
    user_id: uuid.UUID | None = None,
    generation: int = 0,
    customer_id=None,
    lifetime=None,
    client_id=None,
    family_id=None,
) -> tuple[str, int]:
    """Sign an access token for the account; return (jwt, lifetime in seconds).

    user_id and generation: the user's, for a user's token (a guest's has neither). client_id
    is the client it was issued to (RFC 9068's claim); family_id the refresh token family it
    came from, so revoking that family ends the token at once.
    """
    lifetime = lifetime or current_app.config["ACCESS_TOKEN_LIFETIME"]
    claims = {"role": role, "typ": "user" if user_id else "publishable"}
    if client_id is not None:
        claims["client_id"] = str(client_id)
    if user_id is not None:
        claims["sub"] = str(user_id)
        claims["gen"] = generation
    if family_id is not None:
        claims["fid"] = str(family_id)
    if customer_id is not None:
        claims["cid"] = str(customer_id)
    token, _ = sign(account_id, claims, lifetime)
    return token, lifetime


def issue_for_client(account: Account, client: Client) -> tuple[str, int]:
    """Sign a client_credentials token (API.md 12): the client's role in account, no user;
    return (jwt, lifetime in seconds). Its gen is the client's token generation."""
    lifetime = current_app.config["ACCESS_TOKEN_LIFETIME"]
    claims = {
        "role": client.role,
        "typ": "client",
        "client_id": str(client.id),
        "gen": client.token_generation,
    }
    token, _ = sign(account.id, claims, lifetime)
    return token, lifetime


def sign(account_id: uuid.UUID, claims: dict, lifetime: int) -> tuple[str, int]:
    """Sign claims for the account, adding iss, aid, iat, exp and jti; return (jwt, exp)."""
    signer = _signer()
    now = int(time.time())
    claims = {"iss": signer.issuer, "aid": str(account_id), **claims}
    claims.update(iat=now, exp=now + lifetime, jti=str(uuid.uuid4()))
    return signer.sign(claims), now + lifetime


def authenticate(token: str, *, read_only: bool = False) -> Principal:
    """Verify a token and that its account and user still allow it; raise InvalidToken if not.

    A use of the token's session is noted, at most once a minute (session_touched says so).
    read_only: the request writes nothing (GET, HEAD), so its caller may come from the
    process's memory of callers (services/callers.py).
    """
    return principal_of(decode(token), touch=True, read_only=read_only)


def principal_of(claims: dict, *, touch: bool = False, read_only: bool = False) -> Principal:
    """The caller the verified claims name, if their account, user and session still allow it.

    touch: note a use of the session (sessions.touch) when its last one is over a minute old.
    read_only: the caller may come from the process's cache (services/callers.py).
    """
    if claims.get("typ") == "publishable":
        account = db.session.get(Account, claim_uuid(claims["aid"]))
        if account is None:
            raise InvalidToken()
        return Principal(account, "guest")
    if claims.get("typ") == "client":
        return _machine(claims)
    family_id = claim_uuid(claims["fid"]) if "fid" in claims else None
    key = (claim_uuid(claims["aid"]), claim_uuid(claims.get("sub")), family_id)
    cache = callers.cache_of(current_app) if read_only else None
    caller, kept = _caller(key, cache)
    if caller is None:
        raise InvalidToken()
    user, account = caller.user, caller.account
    # A suspension or a revocation bumps token_generation: older tokens die at once.
    if not user.is_active or claims.get("gen") != user.token_generation:
        raise InvalidToken()
    # Signed by us or not, a token may only name an account its user belongs to.
    if not _belongs(user, account, caller.membership_id):
        raise InvalidToken()
    # Logout, reuse detection and a password change revoke refresh token families; the
    # access tokens issued from a revoked family die with it.
    if family_id is not None and not _family_is_live(family_id, caller.first_id, caller.first_revoked_at):
        raise InvalidToken()
    # Ending a session revokes its family too; its own mark is checked all the same.
    if caller.ended_at is not None:
        raise InvalidToken()
    touched = touch and caller.last_used_at is not None and sessions.touch(family_id, caller.last_used_at)
    if touched and cache is not None:
        cache.renew(key, callers.detached(replace(caller, last_used_at=utcnow())))
    customer_id = claim_uuid(claims["cid"]) if "cid" in claims else None
    kind = KeptPrincipal if kept else Principal
    return kind(
        account, claims["role"], user, customer_id, family_id, caller.customer, touched, memo=caller.memo
    )


def _caller(key: tuple, cache: callers.Cache | None) -> tuple[callers.Entry | None, bool]:
    """What CALLER reads for (account id, user id, family id), and whether it is the cache's
    (its rows detached copies): from the cache when it may be used and has it, else from
    the database, kept for the next read when a cache is given."""
    account_id, user_id, family_id = key
    ids = {"account_id": account_id, "user_id": user_id, "family_id": family_id}
    if cache is None or not cache.usable():
        if cache is not None:
            metrics.CALLER_CACHE.labels("bypass").inc()
        row = db.session.execute(CALLER, ids).one_or_none()
        return (callers.Entry(*row) if row is not None else None), False
    kept = cache.get(key)
    if kept is not None:
        metrics.CALLER_CACHE.labels("hit").inc()
        return kept, True
    metrics.CALLER_CACHE.labels("miss").inc()
    mark = cache.mark()
    row = db.session.execute(CALLER, ids).one_or_none()
    if row is None:
        return None, False
    caller = callers.Entry(*row)
    cache.put(key, callers.detached(caller), mark)
    return caller, False


def _machine(claims: dict) -> Principal:
    """A client_credentials token's caller: its client must still serve the account, with the
    token's role and generation (a revocation, or a new role, ends its tokens at once)."""
    row = db.session.execute(
        select(Account, Client)
        .join(Client, Client.id == claim_uuid(claims.get("client_id")))
        .where(Account.id == claim_uuid(claims["aid"]))
    ).one_or_none()
    if row is None:
        raise InvalidToken()
    account, client = row
    if (
        not client.serves(account)
        or client.role != claims.get("role")
        or client.token_generation != claims.get("gen")
    ):
        raise InvalidToken()
    return Principal(account, client.role, machine_client_id=client.id)


def _belongs(user: User, account: Account, membership_id) -> bool:
    """Whether the user is a managed user of the account (or of its live twin) or a member of it."""
    if user.is_managed:
        return user.account_id in (account.id, account.live_account_id)
    return membership_id is not None


def _family_is_live(family_id: uuid.UUID, first_id, first_revoked_at) -> bool:
    if first_id is None:  # a family begun before first tokens took the family's id
        return refresh_tokens.family_is_live(family_id)
    return first_revoked_at is None


def decode(token: str) -> dict:
    """Return the claims of a token signed by one of our keys, issued by us and unexpired.

    A token this process verified before is not verified again (Signer.verified); its expiry
    and issuer are checked on every call all the same.
    """
    signer = _signer()
    try:
        claims = signer.verified(token)
        signer.claims.validate(claims)
    except (JoseError, ValueError, TypeError) as e:
        raise InvalidToken() from e
    return dict(claims)  # a copy: the kept claims are the next call's too


def claim_uuid(value) -> uuid.UUID:
    """A claim that must be a UUID (aid, sub, fid, cid); anything else is an invalid token."""
    try:
        return uuid.UUID(str(value))
    except ValueError as e:
        raise InvalidToken() from e
