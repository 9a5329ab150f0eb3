"""One-time tokens: the links and codes sent by email or SMS, and WebAuthn challenges."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from freshcom_customers.models.base import db, utcnow
from freshcom_customers.models.customer import Customer
from freshcom_customers.models.user import User

TOKEN_PURPOSES = (
    "password_reset",
    "email_verification",
    "magic_link",
    "registration_confirmation",  # a returning guest proves its email (API.md 9)
    "invitation",  # staff invite a customer to set its first password (API.md 9)
    # Strong authentication (API.md 11): a login's emailed or texted code, a code proving a
    # phone number, a TOTP secret waiting for its first code, and WebAuthn challenges.
    "login_otp",
    "phone_verification",
    "totp_enrollment",
    "passkey_registration",
    "passkey_challenge",
)


class OneTimeToken(db.Model):
    """A random token, stored only as its SHA-256 hash, used once before it expires.

    It belongs to a user (reset, verification, codes, challenges of a registration) or a
    customer (magic link, which guests get too), and a passkey login's challenge to no one;
    issuing a new one for the same subject and purpose deletes the older ones. A code's hash
    is keyed (services/one_time_tokens.issue_code).
    """

    __tablename__ = "one_time_tokens"
    __table_args__ = (
        CheckConstraint(f"purpose IN ({', '.join(map(repr, TOKEN_PURPOSES))})", name="purpose"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    purpose: Mapped[str] = mapped_column(String(32))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    customer_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    # The address the token was sent to: verifying it must not verify a later address.
    email: Mapped[str | None] = mapped_column(String(254))
    expires_at: Mapped[datetime] = mapped_column(index=True)  # housekeeping purges by it
    used_at: Mapped[datetime | None]
    # What using the token carries out, kept until then: a registration's chosen password
    # (hashed), username and profile. Never a password in clear.
    payload: Mapped[dict[str, Any] | None]
    inserted_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User | None] = relationship()
    customer: Mapped[Customer | None] = relationship()
