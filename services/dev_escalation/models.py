"""The dev_escalation service's tables: programming tickets and their events.

Rows are written only by the activities (``register_programming_ticket`` creates one,
``record_programming_ticket_change`` keeps it current from the workflow's snapshots); the
RPCs read them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.sqltypes import BigId, UtcDateTime

# The queue's order: HIGH first (DESIGN.md §2, seed 002).
URGENCY_RANK = {"HIGH": 1, "AVERAGE": 2, "LOW": 3, "SECONDARY": 4}


class Base(DeclarativeBase):
    pass


class ProgrammingTicket(Base):
    __tablename__ = "programming_tickets"
    __table_args__ = (
        # The queue: urgency, then age (keyset pages walk this index).
        Index("ix_programming_tickets_queue", "urgency_rank", "created_at", "id"),
        Index("ix_programming_tickets_status", "status", "urgency_rank"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # The EscalateToDevelopment request that opened it: a retried registration finds it.
    request_key: Mapped[str] = mapped_column(String(200), unique=True)
    support_ticket_id: Mapped[int] = mapped_column(BigId, index=True)
    organization_id: Mapped[int] = mapped_column(BigId)
    title: Mapped[str] = mapped_column(String(300))
    technical_description: Mapped[str] = mapped_column(Text, default="")
    urgency: Mapped[str] = mapped_column(String(20))
    urgency_rank: Mapped[int] = mapped_column(Integer)
    # Owned by the workflow: written only through record_programming_ticket_change.
    status: Mapped[str] = mapped_column(String(20), default="OPEN")
    assignee_id: Mapped[int] = mapped_column(BigId, default=0, index=True)
    target_release: Mapped[str] = mapped_column(String(100), default="", index=True)
    planned_date: Mapped[datetime | None] = mapped_column(UtcDateTime)
    fix_version: Mapped[str] = mapped_column(String(100), default="")
    fix_notes: Mapped[str] = mapped_column(Text, default="")
    release_notes: Mapped[str] = mapped_column(Text, default="")
    window_start: Mapped[datetime | None] = mapped_column(UtcDateTime)
    window_end: Mapped[datetime | None] = mapped_column(UtcDateTime)
    cancel_reason: Mapped[str] = mapped_column(Text, default="")
    start_work_due: Mapped[datetime | None] = mapped_column(UtcDateTime)
    escalated_to_lead: Mapped[bool] = mapped_column(Boolean, default=False)
    # Sequence number of the last snapshot applied: an older one never overwrites a newer.
    event_seq: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ProgrammingTicketEvent(Base):
    __tablename__ = "programming_ticket_events"
    __table_args__ = (
        Index("ix_programming_ticket_events_ticket", "programming_ticket_id", "occurred_at"),
    )

    event_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    programming_ticket_id: Mapped[int] = mapped_column(BigId)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    type: Mapped[str] = mapped_column(String(40))
    actor_kind: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[int] = mapped_column(BigId, default=0)
    from_status: Mapped[str] = mapped_column(String(20), default="")
    to_status: Mapped[str] = mapped_column(String(20), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime)
