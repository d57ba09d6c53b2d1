"""Quotes as the pages show them: amounts in the reader's language, the status in words,
and whether the customer may still answer (sent, and its validity not over)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from helpdesk.v1 import sales_pb2 as spb
from services.common.local_dates import DISPLAY_ZONE, month_name
from services.gateway.texts import translate

STATUS = {
    spb.QUOTE_STATUS_DRAFT: "Draft",
    spb.QUOTE_STATUS_SENT: "Sent",
    spb.QUOTE_STATUS_ACCEPTED: "Accepted",
    spb.QUOTE_STATUS_DECLINED: "Declined",
    spb.QUOTE_STATUS_EXPIRED: "Expired",
}
STATUS_KEY = {
    spb.QUOTE_STATUS_DRAFT: "draft",
    spb.QUOTE_STATUS_SENT: "sent",
    spb.QUOTE_STATUS_ACCEPTED: "accepted",
    spb.QUOTE_STATUS_DECLINED: "declined",
    spb.QUOTE_STATUS_EXPIRED: "expired",
}
UNITS = {"hours": "hours", "days": "days", "units": "units"}
# The console's form: this many line rows; the empty ones are left out.
FORM_LINES = 3
LINE_FIELDS = ("description", "quantity", "unit", "unit_price", "vat_rate")


def amount(text: str, locale: str) -> str:
    """``1250.5`` as ``1.250,50`` (Italian) or ``1,250.50`` (English)."""
    try:
        value = Decimal(text or "0")
    except InvalidOperation:
        return text
    shown = f"{value:,.2f}"
    if locale == "it":
        shown = shown.replace(",", " ").replace(".", ",").replace(" ", ".")
    return shown


def quantity(text: str, locale: str) -> str:
    """``7.50`` as ``7,5`` / ``7.5``: no trailing zeros."""
    try:
        value = Decimal(text or "0").normalize()
    except InvalidOperation:
        return text
    shown = f"{value:f}"
    return shown.replace(".", ",") if locale == "it" else shown


def iso_day(text: str, locale: str) -> str:
    """``2027-01-31`` as ``31 gennaio 2027`` / ``31 January 2027``."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return text
    return f"{day.day} {month_name(day.month, locale)} {day.year}"


def today() -> date:
    return datetime.now(DISPLAY_ZONE).date()


def is_expired(q: spb.Quote, on: date | None = None) -> bool:
    """Expired, or sent and past its last valid day (its workflow may not have said so yet)."""
    if q.status == spb.QUOTE_STATUS_EXPIRED:
        return True
    if q.status != spb.QUOTE_STATUS_SENT:
        return False
    try:
        return date.fromisoformat(q.valid_until) < (on or today())
    except ValueError:
        return False


@dataclass(frozen=True)
class QuoteView:
    q: spb.Quote
    status: str
    status_key: str
    total: str
    net_total: str
    vat_total: str
    valid_until: str
    lines: list[dict[str, str]]
    draft: bool
    open: bool
    expired: bool
    decided: str


def quote_view(q: spb.Quote, locale: str, on: date | None = None) -> QuoteView:
    expired = is_expired(q, on)
    key = "expired" if expired else STATUS_KEY.get(q.status, "draft")
    words = translate(locale, "Expired" if expired else STATUS.get(q.status, "Draft"))
    lines = [
        {
            "description": line.description,
            "quantity": quantity(line.quantity, locale),
            "unit": translate(locale, UNITS.get(line.unit, line.unit)),
            "unit_price": amount(line.unit_price, locale),
            "vat_rate": line.vat_rate,
            "net": amount(line.net, locale),
            "vat": amount(line.vat, locale),
            "total": amount(line.total, locale),
        }
        for line in q.lines
    ]
    decided = ""
    if q.HasField("decided_at"):
        when = q.decided_at.ToDatetime(tzinfo=UTC).astimezone(DISPLAY_ZONE)
        decided = iso_day(when.date().isoformat(), locale)
    return QuoteView(
        q=q,
        status=words,
        status_key=key,
        total=amount(q.total, locale),
        net_total=amount(q.net_total, locale),
        vat_total=amount(q.vat_total, locale),
        valid_until=iso_day(q.valid_until, locale),
        lines=lines,
        draft=q.status == spb.QUOTE_STATUS_DRAFT,
        open=q.status == spb.QUOTE_STATUS_SENT and not expired,
        expired=expired,
        decided=decided,
    )


def blank_form(request_id: str) -> dict[str, Any]:
    """The console's empty form: one request ID, three empty line rows (VAT 22%)."""
    return {
        "request_id": request_id,
        "title": "",
        "valid_until": "",
        "proposed_dates": "",
        "notes": "",
        "lines": [
            {"description": "", "quantity": "", "unit": "hours", "unit_price": "", "vat_rate": "22"}
            for _ in range(FORM_LINES)
        ],
    }


def _decimal(text: str) -> str:
    """``80,50`` as ``80.50``: people type Italian decimals; the service reads points."""
    return text.replace(" ", "").replace(",", ".") if "," in text else text


def lines_of(rows: list[dict[str, str]]) -> tuple[list[spb.QuoteLine], list[int]]:
    """The rows someone wrote in (empty ones left out), and each one's row on the form."""
    lines: list[spb.QuoteLine] = []
    rows_used: list[int] = []
    for index, row in enumerate(rows):
        if not (row["description"] or row["quantity"] or row["unit_price"]):
            continue
        lines.append(
            spb.QuoteLine(
                description=row["description"],
                quantity=_decimal(row["quantity"]),
                unit=row["unit"],
                unit_price=_decimal(row["unit_price"]),
                vat_rate=_decimal(row["vat_rate"]),
            )
        )
        rows_used.append(index)
    return lines, rows_used


def form_field(field: str, rows_used: list[int]) -> str:
    """The service's ``lines[1].unit_price`` as the form's row (empty rows were left out)."""
    if field.startswith("lines[") and "]" in field:
        head, _, rest = field[len("lines[") :].partition("]")
        if head.isdigit() and int(head) < len(rows_used):
            return f"lines[{rows_used[int(head)]}]{rest}"
    return field
