"""The PDF of a quote, as the customer receives it (Italian or English).

fpdf2's core Helvetica covers Latin-1 (Italian accents included); any other character is
shown as "?" rather than failing the quote. Amounts are written as the store keeps them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from fpdf import FPDF

TEXTS = {
    "it": {
        "title": "Preventivo",
        "for": "Per",
        "ticket": "Richiesta di assistenza",
        "date": "Data",
        "valid": "Valido fino al",
        "description": "Descrizione",
        "quantity": "Quantità",
        "price": "Prezzo unitario",
        "vat": "IVA %",
        "net": "Imponibile",
        "net_total": "Totale imponibile",
        "vat_total": "Totale IVA",
        "total": "Totale",
        "dates": "Date proposte per l'attività",
        "notes": "Note",
        "accept": "Per accettare o rifiutare il preventivo, usi il portale di assistenza.",
        "hours": "ore",
        "days": "giorni",
        "units": "pz.",
    },
    "en": {
        "title": "Quote",
        "for": "For",
        "ticket": "Support ticket",
        "date": "Date",
        "valid": "Valid until",
        "description": "Description",
        "quantity": "Quantity",
        "price": "Unit price",
        "vat": "VAT %",
        "net": "Net",
        "net_total": "Net total",
        "vat_total": "VAT",
        "total": "Total",
        "dates": "Proposed activity dates",
        "notes": "Notes",
        "accept": "To accept or decline this quote, use the support portal.",
        "hours": "hours",
        "days": "days",
        "units": "units",
    },
}


@dataclass(frozen=True)
class PdfLine:
    description: str
    quantity: str
    unit: str
    unit_price: str
    vat_rate: str
    net: str


@dataclass(frozen=True)
class PdfQuote:
    number: str
    title: str
    organization: str
    ticket: str
    issued: date
    valid_until: date
    lines: list[PdfLine]
    net_total: str
    vat_total: str
    total: str
    currency: str
    proposed_dates: str
    notes: str
    locale: str = "it"


def _day(day: date, locale: str) -> str:
    return day.strftime("%d/%m/%Y") if locale == "it" else day.isoformat()


def _latin1(text: str) -> str:
    return text.encode("latin-1", "replace").decode("latin-1")


def render(quote: PdfQuote) -> bytes:
    t = TEXTS.get(quote.locale, TEXTS["it"])
    pdf = FPDF(format="A4")
    pdf.set_title(_latin1(f"{t['title']} {quote.number}"))
    # Dated the day it was issued: the same quote renders the same bytes.
    pdf.set_creation_date(datetime.combine(quote.issued, time(), UTC))
    pdf.add_page()
    pdf.set_font("helvetica", style="B", size=16)
    pdf.cell(text=_latin1(f"{t['title']} {quote.number}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", size=11)
    pdf.multi_cell(0, 6, _latin1(quote.title), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    for label, value in (
        (t["for"], quote.organization),
        (t["ticket"], quote.ticket),
        (t["date"], _day(quote.issued, quote.locale)),
        (t["valid"], _day(quote.valid_until, quote.locale)),
    ):
        pdf.cell(text=_latin1(f"{label}: {value}"), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    widths = (78, 24, 28, 18, 32)
    pdf.set_font("helvetica", style="B", size=10)
    for width, head in zip(
        widths, (t["description"], t["quantity"], t["price"], t["vat"], t["net"]), strict=True
    ):
        pdf.cell(width, 7, _latin1(head), border="B")
    pdf.ln()
    pdf.set_font("helvetica", size=10)
    for line in quote.lines:
        unit = t.get(line.unit, line.unit)
        cells = (
            line.description,
            f"{line.quantity} {unit}",
            line.unit_price,
            line.vat_rate,
            line.net,
        )
        for i, (width, value) in enumerate(zip(widths, cells, strict=True)):
            pdf.cell(width, 7, _latin1(value[:60]), align="L" if i == 0 else "R")
        pdf.ln()
    pdf.ln(3)
    for label, amount, bold in (
        (t["net_total"], quote.net_total, ""),
        (t["vat_total"], quote.vat_total, ""),
        (t["total"], quote.total, "B"),
    ):
        pdf.set_font("helvetica", style=bold, size=11)
        pdf.cell(sum(widths[:-1]), 7, _latin1(label), align="R")
        pdf.cell(widths[-1], 7, _latin1(f"{amount} {quote.currency}"), align="R")
        pdf.ln()
    pdf.set_font("helvetica", size=10)
    for label, text in ((t["dates"], quote.proposed_dates), (t["notes"], quote.notes)):
        if text:
            pdf.ln(3)
            pdf.multi_cell(0, 6, _latin1(f"{label}: {text}"), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    pdf.multi_cell(0, 6, _latin1(t["accept"]), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
