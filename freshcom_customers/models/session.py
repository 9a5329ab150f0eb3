"""A login session as its owner sees it (API.md 10): a refresh-token family, or a Chec JWT.

A session's id is its refresh-token family's id (the native face) or the `sid` claim of its
Chec JWT. What the session started with is kept (the client, the user agent, the network
the request came from) and when it was last used, coarsely. Ending a session sets ended_at;
the family's tokens are revoked with it, and its access tokens and JWTs die on their next
request, which checks the session.
"""

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, and_
from sqlalchemy.orm import Mapped, mapped_column, relationship

from freshcom_customers.models.base import db, utcnow
from freshcom_customers.models.oauth import Client

SESSION_FACES = ("oauth", "chec")


class LoginSession(db.Model):
    __tablename__ = "sessions"
    __table_args__ = (
        Index("ix_sessions_user_id_created_at", "user_id", "created_at"),
        Index("ix_sessions_customer_id_created_at", "customer_id", "created_at"),
        CheckConstraint("face IN ('oauth', 'chec')", name="face"),
        CheckConstraint("user_id IS NOT NULL OR customer_id IS NOT NULL", name="owner"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    account_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    # A user's session (either face), or a customer's Chec session (guests have no user).
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    customer_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    client_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("clients.id", ondelete="SET NULL"))
    face: Mapped[str] = mapped_column(String(8))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    ip_address: Mapped[str | None] = mapped_column(String(64))  # the /24 or /48 it came from
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]
    # When a second factor (a code, a recovery code, a passkey) was last proven in this
    # session: a sensitive change within 5 minutes of it needs no password (API.md 11, step-up).
    second_factor_at: Mapped[datetime | None]

    client: Mapped[Client | None] = relationship()

    @classmethod
    def due_a_touch(cls, used_before):
        """Sessions whose use is worth noting now: live, and last used at or before used_before."""
        return and_(cls.ended_at.is_(None), cls.last_used_at <= used_before)
