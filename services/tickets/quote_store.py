"""Quotes in the tickets store: who sees which, the checks of a new one, and the replies.

Only the ticket's organisation sees its quotes: a customer sees a quote when they can see
its ticket (their own, their department's where the organisation shares them, every one
of the organisation for a referent); anyone else gets NOT_FOUND, as if it did not exist.
The desk sees every quote.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from helpdesk.v1 import sales_pb2 as spb
from services.common.access import Principal, Role
from services.common.local_dates import DISPLAY_ZONE
from services.common.rpc_errors import invalid, not_found, optional_text, require_text
from services.tickets import models as m
from services.tickets import quote_money as money
from services.tickets.quote_models import Quote, QuoteLine
from services.tickets.quote_pdf import PdfLine, PdfQuote
from services.tickets.ticket_visibility import visible_requesters
from workflows.quote_contracts import quote_workflow_id

MAX_TITLE = 300
MAX_DATES = 500
MAX_NOTES = 5000
# A quote valid for more than a year is a typing error.
MAX_VALIDITY = timedelta(days=366)
STATUS_PB = {
    "DRAFT": spb.QUOTE_STATUS_DRAFT,
    "SENT": spb.QUOTE_STATUS_SENT,
    "ACCEPTED": spb.QUOTE_STATUS_ACCEPTED,
    "DECLINED": spb.QUOTE_STATUS_DECLINED,
    "EXPIRED": spb.QUOTE_STATUS_EXPIRED,
}
STATUS_NAME = {v: k for k, v in STATUS_PB.items()}


def number(quote_id: int) -> str:
    return f"Q-{quote_id}"


def today() -> date:
    return datetime.now(UTC).astimezone(DISPLAY_ZONE).date()


def expiry_of(valid_until: date) -> datetime:
    """The instant a quote valid until ``valid_until`` expires: the end of that day on the
    desk's clock (Europe/Rome)."""
    next_day = datetime.combine(valid_until + timedelta(days=1), time(), DISPLAY_ZONE)
    return next_day.astimezone(UTC)


def valid_until_of(text: str) -> date:
    raw = text.strip()
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        invalid("valid_until", f"{text!r} is not a date (YYYY-MM-DD)")
    if day < today():
        invalid("valid_until", "is in the past")
    if day > today() + MAX_VALIDITY:
        invalid("valid_until", "is more than a year away")
    return day


def title_of(text: str) -> str:
    title = require_text("title", text, MAX_TITLE)
    if "\n" in title or "\r" in title:
        invalid("title", "must be a single line")
    return title


def lines_of(lines: Sequence[spb.QuoteLine]) -> list[money.Line]:
    if not lines:
        invalid("lines", "a quote needs at least one line")
    if len(lines) > money.MAX_LINES:
        invalid("lines", f"at most {money.MAX_LINES} lines")
    return [
        money.parse_line(i, x.description, x.quantity, x.unit or "hours", x.unit_price, x.vat_rate)
        for i, x in enumerate(lines)
    ]


def dates_of(text: str) -> str:
    return optional_text("proposed_dates", text, MAX_DATES)


def notes_of(text: str) -> str:
    return optional_text("notes", text, MAX_NOTES)


def line_rows(quote_id: int, lines: list[money.Line]) -> list[QuoteLine]:
    return [
        QuoteLine(
            quote_id=quote_id,
            position=i,
            description=x.description,
            quantity_hundredths=money.cents(x.quantity),
            unit=x.unit,
            unit_price_cents=money.cents(x.unit_price),
            vat_rate_hundredths=money.cents(x.vat_rate),
            net_cents=money.cents(x.net),
            vat_cents=money.cents(x.vat),
        )
        for i, x in enumerate(lines)
    ]


async def visible(session: AsyncSession, query: Select[Any], who: Principal) -> Select[Any]:
    """``query`` over quotes narrowed to what ``who`` may see, in the query itself."""
    if not who.is_customer:
        return query
    # A draft is the desk's until it is sent.
    query = query.where(Quote.organization_id == who.organization_id, Quote.status != "DRAFT")
    if who.role is Role.USER:
        requesters = await visible_requesters(session, who)
        query = query.join(m.Ticket, m.Ticket.id == Quote.ticket_id).where(
            m.Ticket.requester_id.in_(sorted(requesters))
        )
    return query


async def visible_row(session: AsyncSession, quote_id: int, who: Principal) -> Quote:
    if quote_id <= 0:
        invalid("id", "must be a positive ID")
    query = await visible(session, select(Quote).where(Quote.id == quote_id), who)
    row: Quote | None = (await session.scalars(query)).first()
    if row is None:
        not_found(f"quote {quote_id}")
    return row


async def lines(session: AsyncSession, quote_id: int) -> list[QuoteLine]:
    rows = await session.scalars(
        select(QuoteLine).where(QuoteLine.quote_id == quote_id).order_by(QuoteLine.position)
    )
    return list(rows)


def _stamp(out: spb.Quote, field: str, when: datetime | None) -> None:
    if when is not None:
        getattr(out, field).FromDatetime(when)


def _hundredths(value: int) -> str:
    return money.from_cents(value)


def _rate(value: int) -> str:
    """22.00 -> "22", 5.50 -> "5.5": a VAT rate as people write it."""
    text = money.from_cents(value)
    return text.rstrip("0").rstrip(".") if "." in text else text


async def quote_pb(session: AsyncSession, row: Quote, with_pdf: bool = False) -> spb.Quote:
    org = await session.get(m.Organization, row.organization_id)
    out = spb.Quote(
        id=row.id,
        number=number(row.id),
        ticket_id=row.ticket_id,
        organization_id=row.organization_id,
        organization_name=org.name if org is not None else "",
        status=STATUS_PB.get(row.status, spb.QUOTE_STATUS_UNSPECIFIED),
        title=row.title,
        currency=row.currency,
        net_total=money.from_cents(row.net_cents),
        vat_total=money.from_cents(row.vat_cents),
        total=money.from_cents(row.net_cents + row.vat_cents),
        valid_until=row.valid_until.isoformat(),
        proposed_dates=row.proposed_dates,
        notes=row.notes,
        created_by_id=row.created_by_id,
        created_by_name=row.created_by_name,
        decided_by_name=row.decided_by_name,
        decline_reason=row.decline_reason,
        workflow_id=quote_workflow_id(row.id) if row.sent_at is not None else "",
        sales_request_id=row.sales_request_id,
    )
    for x in await lines(session, row.id):
        out.lines.append(
            spb.QuoteLine(
                description=x.description,
                quantity=_hundredths(x.quantity_hundredths),
                unit=x.unit,
                unit_price=money.from_cents(x.unit_price_cents),
                vat_rate=_rate(x.vat_rate_hundredths),
                net=money.from_cents(x.net_cents),
                vat=money.from_cents(x.vat_cents),
                total=money.from_cents(x.net_cents + x.vat_cents),
            )
        )
    _stamp(out, "created_at", row.created_at)
    _stamp(out, "sent_at", row.sent_at)
    _stamp(out, "reminded_at", row.reminded_at)
    _stamp(out, "decided_at", row.decided_at)
    if with_pdf and row.pdf:
        out.pdf = row.pdf
    return out


async def pdf_of(session: AsyncSession, row: Quote, locale: str) -> PdfQuote:
    """What the PDF shows, from the stored quote."""
    out = await quote_pb(session, row)
    return PdfQuote(
        number=out.number,
        title=row.title,
        organization=out.organization_name,
        ticket=f"#{row.ticket_id}",
        issued=(row.sent_at or datetime.now(UTC)).astimezone(DISPLAY_ZONE).date(),
        valid_until=row.valid_until,
        lines=[
            PdfLine(x.description, x.quantity, x.unit, x.unit_price, x.vat_rate, x.net)
            for x in out.lines
        ],
        net_total=out.net_total,
        vat_total=out.vat_total,
        total=out.total,
        currency=row.currency,
        proposed_dates=row.proposed_dates,
        notes=row.notes,
        locale=locale,
    )
