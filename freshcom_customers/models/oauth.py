"""OAuth2 clients and refresh tokens. Secrets and user refresh tokens are stored as hashes."""

import hashlib
import hmac
import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from freshcom_customers.models.account import Account
from freshcom_customers.models.base import db, utcnow
from freshcom_customers.models.user import STAFF_ROLES, User


def hash_secret(value: str) -> str:
    """SHA-256 of a high-entropy secret: enough for >=128-bit random values (ASVS 6.5.2)."""
    return hashlib.sha256(value.encode()).hexdigest()


class Client(db.Model):
    """An OAuth2 client. One of a live account also serves its test twin."""

    __tablename__ = "clients"
    __table_args__ = (
        Index(
            "uq_clients_default",
            "account_id",
            unique=True,
            sqlite_where=text("is_default"),
            postgresql_where=text("is_default"),
        ),
        CheckConstraint(f"role IN ({', '.join(map(repr, STAFF_ROLES))})", name="role"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    is_default: Mapped[bool] = mapped_column(default=False)
    secret_hash: Mapped[str | None] = mapped_column(String(64))
    # A secret rotated out (flask clients rotate-secret --grace) works beside the new one until then.
    previous_secret_hash: Mapped[str | None] = mapped_column(String(64))
    previous_secret_expires_at: Mapped[datetime | None]
    # A machine client's staff role (API.md 12): its client_credentials tokens act with it.
    role: Mapped[str | None] = mapped_column(String(32))
    # Part of every client_credentials token; bumping it (a revocation) ends them all at once.
    token_generation: Mapped[int] = mapped_column(server_default="0")
    grant_types: Mapped[str] = mapped_column(String(255), default="password refresh_token")
    rotate_refresh_tokens: Mapped[bool] = mapped_column(default=True)
    inserted_at: Mapped[datetime] = mapped_column(default=utcnow)

    account: Mapped[Account] = relationship()

    @property
    def is_confidential(self) -> bool:
        return self.secret_hash is not None

    def serves(self, account: Account) -> bool:
        return self.account_id in (account.id, account.live_id)

    # Authlib's ClientMixin protocol.
    def get_client_id(self) -> str:
        return str(self.id)

    def check_client_secret(self, client_secret: str) -> bool:
        if not self.is_confidential:
            return False
        given = hash_secret(client_secret)
        current = hmac.compare_digest(self.secret_hash, given)
        old = self.previous_secret_hash
        previous = old is not None and hmac.compare_digest(old, given)
        return current or (previous and self.previous_secret_expires_at > utcnow())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return (method == "none") != self.is_confidential

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types.split()


# One current publishable key per account; a key rotated out (expires_at set) keeps working
# beside it until then.
_CURRENT_PUBLISHABLE = text("user_id IS NULL AND expires_at IS NULL")
_USER_TOKEN = text("user_id IS NOT NULL")


class RefreshToken(db.Model):
    """A publishable refresh token (the account's PRT, user_id NULL) or a user refresh token.

    A PRT is public by design (it ships in browser code), so its id is the token; it never
    expires until it is rotated out, and then stops at expires_at. A user refresh token is
    stored only as a hash, bound to its client, and belongs to a family (all tokens rotated
    from one login) with an absolute expiry (expires_at, the family's) and an idle one.
    """

    __tablename__ = "refresh_tokens"
    __table_args__ = (
        Index(
            "uq_refresh_tokens_current_publishable",
            "account_id",
            unique=True,
            sqlite_where=_CURRENT_PUBLISHABLE,
            postgresql_where=_CURRENT_PUBLISHABLE,
        ),
        # Housekeeping finds the families whose absolute expiry is long past, family by family.
        Index(
            "ix_refresh_tokens_expires_at_family_id",
            "expires_at",
            "family_id",
            sqlite_where=_USER_TOKEN,
            postgresql_where=_USER_TOKEN,
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    client_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    family_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    expires_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    rotated_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    inserted_at: Mapped[datetime] = mapped_column(default=utcnow)

    account: Mapped[Account] = relationship()
    user: Mapped[User | None] = relationship()
    client: Mapped["Client | None"] = relationship()

    @property
    def is_publishable(self) -> bool:
        return self.user_id is None

    @property
    def prefixed_id(self) -> str:
        """The PRT as clients see it: prt-<mode>-<uuid>."""
        return f"prt-{self.account.mode}-{self.id}"
