"""The gateway's one table: signed-in sessions (the gRPC services keep everything else)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.sqltypes import BigId, UtcDateTime


class Base(DeclarativeBase):
    pass


class WebSession(Base):
    """A browser's sign-in. The cookie holds a random ID; only its SHA-256 is stored, so a
    copy of this table signs nobody in. The tokens stay here, never in the browser."""

    __tablename__ = "gateway_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # CONTACT | AGENT
    principal_id: Mapped[int] = mapped_column(BigId)
    role: Mapped[str] = mapped_column(String(20))
    organization_id: Mapped[int] = mapped_column(BigId, default=0)
    name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str] = mapped_column(String(320), default="")
    locale: Mapped[str] = mapped_column(String(8), default="it")
    access_token: Mapped[str] = mapped_column(Text)
    refresh_token: Mapped[str] = mapped_column(Text)
    access_expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # Signed-in sessions end with the refresh token's life at the latest.
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
