"""What a user proves itself with beyond its password (API.md 11): recovery codes and passkeys.

The TOTP secret lives on the user (models/user.py), the one-time codes sent by email or SMS
among the one-time tokens (models/token.py).
"""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from freshcom_customers.models.base import db, utcnow
from freshcom_customers.models.user import User


class RecoveryCode(db.Model):
    """One of the ten codes a TOTP user gets at enrolment, usable once in place of a TOTP code.

    Stored as the SHA-256 of its 120 random bits, like the other tokens (models/oauth.hash_secret).
    """

    __tablename__ = "recovery_codes"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    used_at: Mapped[datetime | None]
    inserted_at: Mapped[datetime] = mapped_column(default=utcnow)


class Passkey(db.Model):
    """A WebAuthn credential of a user: its public key, and what the authenticator last told of it.

    credential_id is the authenticator's id for it (at most 1,023 bytes, WebAuthn L3 5.1);
    sign_count the last signature counter seen (0 for authenticators that keep none);
    backup_eligible and backed_up the BE and BS flags (a synced passkey, or one bound to a device).
    """

    __tablename__ = "passkeys"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    credential_id: Mapped[bytes] = mapped_column(LargeBinary(1023), unique=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    sign_count: Mapped[int] = mapped_column(BigInteger, default=0)
    transports: Mapped[dict[str, Any] | None]  # {"transports": [...]} as the browser reported them
    aaguid: Mapped[str | None] = mapped_column(String(36))
    backup_eligible: Mapped[bool] = mapped_column(default=False)
    backed_up: Mapped[bool] = mapped_column(default=False)
    name: Mapped[str | None] = mapped_column(String(64))
    last_used_at: Mapped[datetime | None]
    inserted_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship()
