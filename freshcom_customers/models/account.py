"""Accounts: one merchant each, a live account with its test twin."""

import uuid

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from freshcom_customers.models.base import Timestamped, db


class Account(Timestamped, db.Model):
    __tablename__ = "accounts"
    __table_args__ = (CheckConstraint("mode IN ('live', 'test')", name="mode"),)

    name: Mapped[str] = mapped_column(String(255))
    handle: Mapped[str | None] = mapped_column(String(64), unique=True)
    mode: Mapped[str] = mapped_column(String(8))
    live_account_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), unique=True
    )
    default_locale: Mapped[str] = mapped_column(String(16), default="en")

    live_account: Mapped["Account | None"] = relationship(
        remote_side="Account.id", back_populates="test_account"
    )
    test_account: Mapped["Account | None"] = relationship(back_populates="live_account")

    @property
    def live_id(self) -> uuid.UUID:
        """The id of the live account this one belongs to (itself when live)."""
        return self.live_account_id or self.id
