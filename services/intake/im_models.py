"""Intake's instant-messaging tables: every webhook update, stored before the
``200``; the chats' open tickets; senders being linked; registered group chats; the
outbox of events for notify (written in the same transaction as what they announce)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from services.common.sqltypes import BigId, UtcDateTime
from services.intake.models import Base, Claimable


class ImUpdate(Claimable, Base):
    """One provider update (a Telegram message or edit, a WhatsApp message or status),
    unique per provider and the provider's ID of the message (Telegram: chat and message
    ID, never the update ID, which restarts): a retried webhook stores nothing twice."""

    __tablename__ = "im_updates"
    __table_args__ = (UniqueConstraint("provider", "external_id"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))  # telegram | whatsapp
    external_id: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # message | status
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    # RECEIVED -> TICKET_CREATED | COMMENT_ADDED | NOTE_ADDED | HELD (the first message of a
    # conversation, waiting for the "is work stopped?" answer) | LINKING | STATUS | IGNORED
    # | FAILED
    status: Mapped[str] = mapped_column(String(20), default="RECEIVED", index=True)
    ticket_id: Mapped[int] = mapped_column(BigId, default=0)
    detail: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    processed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class ImChat(Base):
    """A chat (private or a registered group) and its open IM ticket (0: none)."""

    __tablename__ = "im_chats"

    provider: Mapped[str] = mapped_column(String(16), primary_key=True)
    chat_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    ticket_id: Mapped[int] = mapped_column(BigId, default=0)
    contact_id: Mapped[int] = mapped_column(BigId, default=0)
    # "" | AWAIT_CRITICAL: the bot asked "is work stopped?" about pending_update_id.
    state: Mapped[str] = mapped_column(String(20), default="")
    pending_update_id: Mapped[str] = mapped_column(String(64), default="")
    asked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ImLink(Base):
    """A sender being linked to a contact: asked for the email, then for the code."""

    __tablename__ = "im_links"

    provider: Mapped[str] = mapped_column(String(16), primary_key=True)
    sender_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(20))  # AWAIT_EMAIL | AWAIT_CODE
    # The contact the email named (0: no contact has it; every code is then wrong).
    contact_id: Mapped[int] = mapped_column(BigId, default=0)
    code_hash: Mapped[str] = mapped_column(String(64), default="")
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    codes_sent: Mapped[int] = mapped_column(Integer, default=0)
    window_start: Mapped[datetime | None] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ImGroup(Base):
    """A customer's dedicated group chat (seed 001)."""

    __tablename__ = "im_groups"

    provider: Mapped[str] = mapped_column(String(16), primary_key=True)
    chat_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    organization_id: Mapped[int] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ImOutbox(Base):
    """An event for notify, committed with the change it announces, deleted once
    published (its ID is the ``Nats-Msg-Id``: publishing twice is publishing once)."""

    __tablename__ = "im_outbox"

    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # event | secret
    event_type: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
