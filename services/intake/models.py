"""The intake service's own store: every accepted request, recorded before a ticket exists."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.sqltypes import BigId, UtcDateTime


class Base(DeclarativeBase):
    pass


class IntakeRequest(Base):
    """One request that came in through a channel, keyed by its idempotency key."""

    __tablename__ = "intake_requests"

    request_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    channel: Mapped[str] = mapped_column(String(20))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    # 0 until the tickets service has created the ticket.
    ticket_id: Mapped[int] = mapped_column(BigId, default=0)
    status: Mapped[str] = mapped_column(String(20), default="RECEIVED")
    error: Mapped[str] = mapped_column(String(1000), default="")
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
