"""Quotes from the command line (seed 003): the desk writes and sends a quote on a ticket;
an admin records a customer's answer given by phone.

    helpdesk quote create --ticket ID --title T --line "DESCRIPTION;QTY;UNIT;PRICE[;VAT]" ...
                          --valid-until YYYY-MM-DD [--dates TEXT] [--notes TEXT]
    helpdesk quote send ID
    helpdesk quote show ID [--pdf FILE]
    helpdesk quote list [--ticket ID] [--org ID] [--status STATUS]
    helpdesk quote accept ID
    helpdesk quote decline ID --reason TEXT

A line's unit is hours, days or units; VAT defaults to 22 (%). Amounts are written as
they are meant ("80", "1250.50"): the service computes the totals in exact decimals.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from helpdesk.v1 import sales_pb2
from services.cli import enums, render
from services.cli.args import Verbs, positive_int, ticket_id
from services.cli.client import Client
from services.cli.commands import Result, request_id

QUOTE_STATUS = enums.EnumWords(sales_pb2.QuoteStatus, "QUOTE_STATUS_")


def quote_id(text: str) -> int:
    """``12`` or ``Q-12``."""
    cleaned = text.strip()
    if cleaned[:1] in ("Q", "q"):
        cleaned = cleaned[1:].removeprefix("-")
    return positive_int(cleaned)


def quote_line(text: str) -> sales_pb2.QuoteLine:
    """``DESCRIPTION;QTY;UNIT;PRICE[;VAT]``."""
    parts = [p.strip() for p in text.split(";")]
    if len(parts) not in (4, 5):
        raise argparse.ArgumentTypeError(
            f"a line is DESCRIPTION;QTY;UNIT;PRICE[;VAT], not {text!r}"
        )
    line = sales_pb2.QuoteLine(
        description=parts[0], quantity=parts[1], unit=parts[2], unit_price=parts[3]
    )
    if len(parts) == 5:
        line.vat_rate = parts[4]
    return line


def quote_text(q: sales_pb2.Quote) -> str:
    head = f"{q.number} for #{q.ticket_id}: {render.one_line(q.title)}\n" + render.fields(
        [
            ("status", QUOTE_STATUS.label(q.status)),
            ("organisation", q.organization_name or "-"),
            ("valid until", q.valid_until),
            ("proposed dates", render.one_line(q.proposed_dates) or "-"),
            ("net", f"{q.net_total} {q.currency}"),
            ("VAT", f"{q.vat_total} {q.currency}"),
            ("total", f"{q.total} {q.currency}"),
            ("sent", render.when(q.sent_at) if q.HasField("sent_at") else "-"),
            ("answered by", q.decided_by_name or "-"),
            ("reason", render.one_line(q.decline_reason) or "-"),
            ("workflow", q.workflow_id or "-"),
        ]
    )
    rows = render.table(
        ["description", "quantity", "unit price", "VAT %", "net"],
        (
            [
                render.clip(x.description, 50),
                f"{x.quantity} {x.unit}",
                x.unit_price,
                x.vat_rate,
                x.net,
            ]
            for x in q.lines
        ),
    )
    return f"{head}\n\n{rows}"


def quote_create(c: Client, a: argparse.Namespace) -> Result:
    quote = c.call(
        c.sales.CreateQuote,
        sales_pb2.CreateQuoteRequest(
            request_id=request_id(),
            ticket_id=a.ticket,
            title=a.title,
            lines=a.lines,
            valid_until=a.valid_until,
            proposed_dates=a.dates or "",
            notes=a.notes or "",
        ),
    )
    return Result(quote_text(quote), quote)


def quote_send(c: Client, a: argparse.Namespace) -> Result:
    quote = c.call(c.sales.SendQuote, sales_pb2.SendQuoteRequest(id=a.id))
    return Result(quote_text(quote), quote)


def quote_show(c: Client, a: argparse.Namespace) -> Result:
    quote = c.call(c.sales.GetQuote, sales_pb2.GetQuoteRequest(id=a.id, with_pdf=bool(a.pdf)))
    text = quote_text(quote)
    if a.pdf:
        if not quote.pdf:
            text += "\n\nno PDF yet: it is made when the quote is sent"
        else:
            Path(a.pdf).write_bytes(quote.pdf)
            text += f"\n\nPDF written to {a.pdf} ({len(quote.pdf)} bytes)"
        quote.ClearField("pdf")  # never printed as JSON
    return Result(text, quote)


def quote_list(c: Client, a: argparse.Namespace) -> Result:
    reply = c.call(
        c.sales.ListQuotes,
        sales_pb2.ListQuotesRequest(
            ticket_id=a.ticket or 0,
            organization_id=a.org or 0,
            status=a.status or sales_pb2.QUOTE_STATUS_UNSPECIFIED,
            page_size=50,
        ),
    )
    text = render.table(
        ["quote", "ticket", "status", "total", "valid until", "title"],
        (
            [
                q.number,
                f"#{q.ticket_id}",
                QUOTE_STATUS.label(q.status),
                f"{q.total} {q.currency}",
                q.valid_until,
                render.clip(q.title, render.SUBJECT_WIDTH),
            ]
            for q in reply.quotes
        ),
    )
    return Result(text, reply)


def quote_accept(c: Client, a: argparse.Namespace) -> Result:
    quote = c.call(c.sales.AcceptQuote, sales_pb2.AcceptQuoteRequest(id=a.id))
    return Result(quote_text(quote), quote)


def quote_decline(c: Client, a: argparse.Namespace) -> Result:
    quote = c.call(c.sales.DeclineQuote, sales_pb2.DeclineQuoteRequest(id=a.id, reason=a.reason))
    return Result(quote_text(quote), quote)


def add_commands(verbs: Verbs) -> None:
    """The ``quote`` group of ``helpdesk``."""
    quote = verbs.group("quote", "quotes before an intervention (seed 003)")
    leaf = verbs.leaf
    p = leaf(quote, "create", quote_create, "a draft quote on a ticket")
    p.add_argument("--ticket", type=ticket_id, required=True)
    p.add_argument("--title", required=True)
    p.add_argument(
        "--line",
        dest="lines",
        type=quote_line,
        action="append",
        required=True,
        metavar="DESCRIPTION;QTY;UNIT;PRICE[;VAT]",
        help="unit: hours, days or units; VAT in percent (default 22)",
    )
    p.add_argument("--valid-until", required=True, metavar="YYYY-MM-DD")
    p.add_argument("--dates", help="the proposed activity dates")
    p.add_argument("--notes")
    p = leaf(quote, "send", quote_send, "email it to the customer; the ticket waits")
    p.add_argument("id", type=quote_id)
    p = leaf(quote, "show", quote_show, "one quote")
    p.add_argument("id", type=quote_id)
    p.add_argument("--pdf", metavar="FILE", help="also write its PDF here")
    p = leaf(quote, "list", quote_list, "quotes, newest first")
    p.add_argument("--ticket", type=ticket_id)
    p.add_argument("--org", type=positive_int, metavar="ID")
    p.add_argument("--status", type=QUOTE_STATUS, metavar="STATUS")
    p = leaf(quote, "accept", quote_accept, "record the customer's yes")
    p.add_argument("id", type=quote_id)
    p = leaf(quote, "decline", quote_decline, "record the customer's no, with the reason")
    p.add_argument("id", type=quote_id)
    p.add_argument("--reason", required=True)
