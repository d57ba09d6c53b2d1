"""The notify store: one row per outbound message, the delivery log."""

from __future__ import annotations

import enum
from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of the notify tables (and only them)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class DeliveryStatus(enum.StrEnum):
    """Where one outbound message stands."""

    PENDING = "PENDING"  # recorded, not yet accepted by the relay / spool
    SENT = "SENT"
    FAILED = "FAILED"  # given up: permanent refusal or too many attempts
    BOUNCED = "BOUNCED"  # accepted, then a delivery-status report came back
    SUPPRESSED = "SUPPRESSED"  # an automatic reply that must not go (loop, rate limit)
    DELIVERED = "DELIVERED"  # instant messages: the provider says it reached the device
    READ = "READ"  # ... and that it was read


def utcnow() -> datetime:
    """The current instant, timezone-aware (UTC)."""
    return datetime.now(UTC)


# An integer primary key that autoincrements on both SQLite (rowid) and PostgreSQL.
_BIGINT_PK = BigInteger().with_variant(Integer, "sqlite")


class Delivery(Base):
    """One message to one recipient for one event; unique per (event, template, recipient)."""

    __tablename__ = "notify_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "template", "recipient"),
        CheckConstraint(
            "status IN ('PENDING', 'SENT', 'FAILED', 'BOUNCED', 'SUPPRESSED', 'DELIVERED', 'READ')",
            name="status",
        ),
        Index("ix_notify_deliveries_ticket_id_id", "ticket_id", "id"),
        Index("ix_notify_deliveries_recipient_id", "recipient", "id"),
        Index("ix_notify_deliveries_message_id", "message_id"),
    )

    id: Mapped[int] = mapped_column(_BIGINT_PK, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(200))
    event_type: Mapped[str] = mapped_column(String(64))
    ticket_id: Mapped[int] = mapped_column(BigInteger)
    channel: Mapped[str] = mapped_column(String(16), default="email")
    recipient: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(Text)
    template: Mapped[str] = mapped_column(String(64))
    locale: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING.value)
    error: Mapped[str] = mapped_column(Text, default="")
    message_id: Mapped[str] = mapped_column(String(255))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    # A resend (TicketService.ResendAnswers): the delivery it re-sends and its Message-ID
    # (NULL / "" when none is on record).
    resend_of: Mapped[int | None] = mapped_column(BigInteger, default=None)
    resend_of_message_id: Mapped[str] = mapped_column(String(255), default="")


class InboundMail(Base):
    """The customer's message that opened a ticket (told by intake on ``helpdesk.mail.received``):
    the acknowledgement answers it (``In-Reply-To``), or is suppressed when it must not."""

    __tablename__ = "notify_inbound_mail"

    ticket_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    message_id: Mapped[str] = mapped_column(String(255), default="")
    sender: Mapped[str] = mapped_column(String(320), default="")
    auto_reply: Mapped[bool] = mapped_column(Boolean, default=True)
    reason: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ImTicketChat(Base):
    """The chat an instant-messaging ticket came from (told by intake on
    ``helpdesk.im.ticket``): agents' public replies go there as well as by email."""

    __tablename__ = "notify_im_chats"

    ticket_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    provider: Mapped[str] = mapped_column(String(16))
    chat_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TicketAssignee(Base):
    """The last assignee notify saw on each ticket, and the one before: who to tell when
    a ticket is reassigned away from them (``services.notify.agent_alerts``). ``event_id``
    is the event that set them, so a redelivered assignment finds the same previous one."""

    __tablename__ = "notify_ticket_assignees"

    ticket_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    assignee_id: Mapped[int] = mapped_column(BigInteger, default=0)
    previous_assignee_id: Mapped[int] = mapped_column(BigInteger, default=0)
    event_id: Mapped[str] = mapped_column(String(200), default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
