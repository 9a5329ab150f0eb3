"""Presented tokens of either kind, for revocation (RFC 7009) and introspection (RFC 7662)."""

import uuid
from dataclasses import dataclass, field

from freshcom_customers.errors import InvalidToken
from freshcom_customers.extensions import db
from freshcom_customers.models import Account, Client, RefreshToken, User
from freshcom_customers.observability import security_events
from freshcom_customers.services import access_tokens, refresh_tokens


@dataclass(frozen=True)
class PresentedToken:
    """What we know of a token a client presented, in whatever state it is."""

    kind: str  # "access_token" or "refresh_token"
    account: Account
    active: bool
    client_id: uuid.UUID | None = None
    family_id: uuid.UUID | None = None
    user: User | None = None
    issued_at: int | None = None
    expires_at: int | None = None
    claims: dict = field(default_factory=dict)  # an access token's role, cid and jti
    machine: bool = False  # a client_credentials token (API.md 12): no user, no family

    @property
    def revocable(self) -> bool:
        """A session's tokens and a machine's are; a publishable key and its guest tokens are not."""
        return self.family_id is not None or self.machine


def identify(value: str) -> PresentedToken | None:
    """The token this value is, or None when it is not one of ours (or an expired access token)."""
    if value.startswith(("urt-", "prt-")):
        token = refresh_tokens.lookup(value)
        return _refresh_token(token) if token is not None else None
    try:
        claims = access_tokens.decode(value)
    except InvalidToken:
        return None
    return _access_token(claims)


def revoke(token: PresentedToken) -> None:
    """End the session the token belongs to: its refresh token family, and so its access tokens.

    A machine's token has no session: every token of its client ends (RFC 7009 2.1 allows a
    server to revoke related tokens), by the client's token generation.
    """
    if token.machine:
        client = db.session.get(Client, token.client_id)
        client.token_generation += 1
    else:
        refresh_tokens.revoke_family(token.family_id)
    security_events.record(
        "token_revoked",
        kind=token.kind,
        family_id=str(token.family_id) if token.family_id else None,
        user_id=str(token.user.id) if token.user else None,
        account_id=str(token.account.id),
        client_id=str(token.client_id),
    )


def _refresh_token(token: RefreshToken) -> PresentedToken:
    if token.is_publishable:
        return PresentedToken(
            "refresh_token",
            token.account,
            refresh_tokens.is_active(token),
            issued_at=_epoch(token.inserted_at),
            expires_at=_epoch(token.expires_at) if token.expires_at else None,  # once rotated out
        )
    return PresentedToken(
        "refresh_token",
        token.account,
        refresh_tokens.is_active(token),
        client_id=token.client_id,
        family_id=token.family_id,
        user=token.user,
        issued_at=_epoch(token.inserted_at),
        expires_at=_epoch(refresh_tokens.expires_at(token)),
    )


def _access_token(claims: dict) -> PresentedToken | None:
    account = db.session.get(Account, _uuid(claims["aid"]))
    if account is None:
        return None
    try:
        principal = access_tokens.principal_of(claims)
    except InvalidToken:
        principal = None
    return PresentedToken(
        "access_token",
        account,
        principal is not None,
        client_id=_uuid(claims.get("client_id")),
        family_id=_uuid(claims.get("fid")),
        user=principal.user if principal else None,
        issued_at=claims.get("iat"),
        expires_at=claims["exp"],
        claims={key: claims[key] for key in ("role", "cid", "jti") if key in claims},
        machine=claims.get("typ") == "client",
    )


def _epoch(moment) -> int:
    return int(moment.timestamp())


def _uuid(value) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value is not None else None
    except ValueError:
        return None
