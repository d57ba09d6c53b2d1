"""The intake service's own store: every accepted request, recorded before a ticket exists."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.sqltypes import BigId, UtcDateTime


class Base(DeclarativeBase):
    pass


class Claimable:
    """What lets several intake replicas work over one table (``services.intake.claims``):
    a row is worked on only by the replica holding its lease, is written back only from
    the state that replica read, and waits ``next_attempt_at`` after a failed attempt;
    ``failures`` counts the attempts that end in ``FAILED`` once there are too many."""

    claimed_by: Mapped[str] = mapped_column(String(64), default="")
    claimed_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    failures: Mapped[int] = mapped_column(Integer, default=0)


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


class InboundMessage(Claimable, Base):
    """A raw email accepted by the SMTP listener, stored before the ``250`` reply."""

    __tablename__ = "intake_inbound_messages"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Message-ID, or a hash of sender, date, subject and body: one ticket per message.
    dedup_key: Mapped[str] = mapped_column(String(300), unique=True)
    mail_from: Mapped[str] = mapped_column(String(320))
    rcpt_to: Mapped[list[str]] = mapped_column(JSON)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    # RECEIVED -> TICKET_CREATED | COMMENT_ADDED | NOTE_ADDED | SATISFACTION | IGNORED |
    # PROSPECT | SALES_REPLY | BOUNCE | FAILED (NOTE_ADDED: automatic mail attached to its
    # ticket as an internal note; SALES_REPLY: a requester's answer threaded onto their
    # sales request)
    status: Mapped[str] = mapped_column(String(20), default="RECEIVED", index=True)
    ticket_id: Mapped[int] = mapped_column(BigId, default=0)
    detail: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(BigId, default=0)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    processed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # The SMTP accept's trace context: the message's processing continues that trace.
    traceparent: Mapped[str] = mapped_column(String(64), default="", server_default="")


class SalesRequest(Base):
    """A request from someone who is not a customer (seed 003): it goes to the sales
    queue, never into a customer's tickets. One per stored email (or web form). It is
    handed to the sales office (``SalesService.RecordSalesRequest``, under this row's ID)
    right after it is stored, and by a sweep while ``forwarded_at`` is unset
    (``services.intake.sales_forward``)."""

    __tablename__ = "intake_sales_requests"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    inbound_message_id: Mapped[str] = mapped_column(String(64), unique=True)
    sender: Mapped[str] = mapped_column(String(320), index=True)
    sender_name: Mapped[str] = mapped_column(String(200), default="")
    subject: Mapped[str] = mapped_column(String(300), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    locale: Mapped[str] = mapped_column(String(8), default="it")
    attachment_names: Mapped[list[str]] = mapped_column(JSON, default=list)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    # The web form's fields, also at the end of its body; "" for a mail.
    company: Mapped[str] = mapped_column(String(200), default="")
    phone: Mapped[str] = mapped_column(String(50), default="")
    # The web form's address is this contact's (0: a prospect).
    contact_id: Mapped[int] = mapped_column(BigId, default=0)
    # When SalesService took it; None: not yet.
    forwarded_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)
