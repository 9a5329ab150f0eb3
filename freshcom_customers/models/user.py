"""Users: standard users (merchant staff, through memberships) and managed users of one account."""

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from freshcom_customers import identifiers
from freshcom_customers.models.account import Account
from freshcom_customers.models.base import Timestamped, db

STAFF_ROLES = (
    "read_only",
    "support_specialist",
    "marketing_specialist",
    "goods_specialist",
    "manager",
    "developer",
    "administrator",
    "owner",
)
MANAGED_ROLES = ("customer", *STAFF_ROLES)
AUTH_METHODS = ("simple", "tfa_email", "tfa_sms", "tfa_totp")

_STANDARD = text("account_id IS NULL")


class User(Timestamped, db.Model):
    __tablename__ = "users"
    __table_args__ = (
        # Managed users: unique per account. Usernames are stored in their canonical form and
        # emails compared by theirs (freshcom_customers/identifiers.py), so look-alikes such
        # as "straße" and "STRASSE", or fullwidth and plain letters, are one name.
        UniqueConstraint("account_id", "username"),
        UniqueConstraint("account_id", "email_key"),
        # Standard users have no account: unique among themselves.
        Index(
            "uq_users_standard_username",
            "username",
            unique=True,
            sqlite_where=_STANDARD,
            postgresql_where=_STANDARD,
        ),
        Index(
            "uq_users_standard_email_key",
            "email_key",
            unique=True,
            sqlite_where=_STANDARD,
            postgresql_where=_STANDARD,
        ),
        CheckConstraint("status IN ('active', 'suspended')", name="status"),
        CheckConstraint("auth_method IN ('simple', 'tfa_email', 'tfa_sms', 'tfa_totp')", name="auth_method"),
    )

    account_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    default_account_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL")
    )
    status: Mapped[str] = mapped_column(String(16), default="active")
    username: Mapped[str] = mapped_column(String(254))  # an email by default; canonical
    email: Mapped[str | None] = mapped_column(String(254))  # where mail goes: as typed, lower case
    email_key: Mapped[str | None] = mapped_column(String(254))  # canonical(email), set with it
    name: Mapped[str | None] = mapped_column(String(255))
    first_name: Mapped[str | None] = mapped_column(String(255))
    last_name: Mapped[str | None] = mapped_column(String(255))
    phone_number: Mapped[str | None] = mapped_column(String(32))
    role: Mapped[str | None] = mapped_column(String(32))
    # None until the user sets one: a customer staff created or imported without a password,
    # who is invited to set it (API.md 9). No password verifies against None.
    password_hash: Mapped[str | None] = mapped_column(String(255))
    # A new address the user asked for, waiting for its confirmation link to be used (API.md 9).
    pending_email: Mapped[str | None] = mapped_column(String(254))
    email_verified: Mapped[bool] = mapped_column(default=False)
    email_verified_at: Mapped[datetime | None]
    # How the user logs in (API.md 11): simple (a password), or a password and a second factor
    # sent by email or SMS, or from an authenticator app (TOTP).
    # The database's default only: rows written by older code (and migrations' tests) get it too.
    auth_method: Mapped[str] = mapped_column(String(16), server_default="simple")
    # The confirmed TOTP secret, encrypted with the data key (services/data_keys.py), and the
    # time step of the last code used, so that no code is used twice (RFC 6238 5.2).
    totp_secret: Mapped[str | None] = mapped_column(Text)
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    # Part of every access token; bumping it kills the user's access tokens at once.
    token_generation: Mapped[int] = mapped_column(default=0)

    account: Mapped[Account | None] = relationship(foreign_keys=[account_id])
    default_account: Mapped[Account | None] = relationship(foreign_keys=[default_account_id])

    @validates("email")
    def _set_email_key(self, _field, email):
        self.email_key = identifiers.canonical(email)
        return email

    @property
    def is_managed(self) -> bool:
        return self.account_id is not None

    @property
    def is_active(self) -> bool:
        return self.status == "active"


class AccountMembership(Timestamped, db.Model):
    """A standard user's role in a live account (and so in its test twin)."""

    __tablename__ = "account_memberships"
    __table_args__ = (UniqueConstraint("account_id", "user_id"),)

    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(32))

    account: Mapped[Account] = relationship()
    user: Mapped[User] = relationship()
