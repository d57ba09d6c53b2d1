"""The tables of quotes (seed 003): a quote on a ticket and its lines. Amounts are integer
cents, quantities and VAT rates integer hundredths (``services.tickets.quote_money``)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from services.common.sqltypes import BigId, UtcDateTime
from services.tickets.models import Base


class Quote(Base):
    __tablename__ = "quotes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    organization_id: Mapped[int] = mapped_column(BigId, index=True)
    sales_request_id: Mapped[str] = mapped_column(String(64), default="")
    # DRAFT -> SENT -> ACCEPTED | DECLINED | EXPIRED
    status: Mapped[str] = mapped_column(String(20), default="DRAFT", index=True)
    title: Mapped[str] = mapped_column(String(300))
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    net_cents: Mapped[int] = mapped_column(BigId, default=0)
    vat_cents: Mapped[int] = mapped_column(BigId, default=0)
    valid_until: Mapped[date] = mapped_column(Date)
    # The end of valid_until in the organisation's time zone: when it expires.
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    proposed_dates: Mapped[str] = mapped_column(Text, default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int] = mapped_column(BigId, default=0)
    created_by_name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    reminded_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    decided_by_id: Mapped[int] = mapped_column(BigId, default=0)
    decided_by_name: Mapped[str] = mapped_column(String(200), default="")
    decline_reason: Mapped[str] = mapped_column(Text, default="")
    # The caller's idempotency key (scoped: "<kind>:<id>:<request_id>").
    request_key: Mapped[str] = mapped_column(String(250), unique=True)
    # Rendered once when sent: what the customer got is what is kept.
    pdf: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    # The latest event of its workflow written here (a retried activity writes nothing).
    event_seq: Mapped[int] = mapped_column(Integer, default=0)


class QuoteLine(Base):
    __tablename__ = "quote_lines"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    quote_id: Mapped[int] = mapped_column(ForeignKey("quotes.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(Text)
    quantity_hundredths: Mapped[int] = mapped_column(BigId)
    unit: Mapped[str] = mapped_column(String(10))
    unit_price_cents: Mapped[int] = mapped_column(BigId)
    vat_rate_hundredths: Mapped[int] = mapped_column(Integer)
    net_cents: Mapped[int] = mapped_column(BigId)
    vat_cents: Mapped[int] = mapped_column(BigId)
