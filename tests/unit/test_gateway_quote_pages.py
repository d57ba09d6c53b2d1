"""The quote pages in process with stand-in gRPC stubs: the console lists a ticket's quotes
and makes one from the form (its request ID, the empty rows left out, a refused line named
by its row on the form and what was typed kept, 400), sends a draft; the portal shows an
open quote's lines, totals, PDF and the Accept / Decline buttons, an expired one without
them, the PDF as an attachment, a decline without a reason as a readable 400, and another
organisation's quote as 404."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from fastapi import Request

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import sales_pb2 as spb
from helpdesk.v1 import tickets_pb2 as tpb
from services.gateway import quote_views as qv
from services.gateway.web import Viewer, Web
from tests.unit.gateway_fakes import CSRF, FakeBackend, gateway_client, rpc_error, viewer

pytestmark = pytest.mark.unit

NEXT_MONTH = (date.today() + timedelta(days=30)).isoformat()
LINES = [
    spb.QuoteLine(
        description="Installazione in sede",
        quantity="2",
        unit="days",
        unit_price="600.00",
        vat_rate="22",
        net="1200.00",
        vat="264.00",
        total="1464.00",
    ),
    spb.QuoteLine(
        description="Configurazione",
        quantity="3.5",
        unit="hours",
        unit_price="80.00",
        vat_rate="22",
        net="280.00",
        vat="61.60",
        total="341.60",
    ),
]


def quote(quote_id: int, status: spb.QuoteStatus.ValueType, **extra: Any) -> spb.Quote:
    values: dict[str, Any] = {
        "id": quote_id,
        "number": f"Q-{quote_id}",
        "ticket_id": 7,
        "organization_id": 3,
        "status": status,
        "title": "Installazione del gestionale",
        "lines": LINES,
        "currency": "EUR",
        "net_total": "1480.00",
        "vat_total": "325.60",
        "total": "1805.60",
        "valid_until": NEXT_MONTH,
        "proposed_dates": "15-16 gennaio, in sede",
    }
    values.update(extra)
    return spb.Quote(**values)


SENT = quote(12, spb.QUOTE_STATUS_SENT)
DRAFT = quote(13, spb.QUOTE_STATUS_DRAFT)
PDF = b"%PDF-1.4\n% Q-12\n%%EOF\n"


@pytest.fixture
def backend() -> FakeBackend:
    fake = FakeBackend(
        {
            "GetTicket": pb.Ticket(
                id=7,
                display_id="#7",
                subject="Nuova installazione",
                organization_id=3,
                requester_id=5,
                status=pb.TICKET_STATUS_PENDING,
            ),
            "ListComments": tpb.ListCommentsResponse(),
            "GetTicketHistory": tpb.GetTicketHistoryResponse(),
            "GetOrganization": dpb.Organization(id=3, name="Rossi Srl"),
            "GetContract": dpb.Contract(organization_id=3, is_default=True),
            "ListAgents": dpb.ListAgentsResponse(agents=[dpb.Agent(id=5, name="Anna Bianchi")]),
            "ListContacts": dpb.ListContactsResponse(),
            "ListTickets": tpb.ListTicketsResponse(),
            "ListQuotes": spb.ListQuotesResponse(quotes=[DRAFT, SENT]),
            "CreateQuote": DRAFT,
            "SendQuote": quote(13, spb.QUOTE_STATUS_SENT),
            "GetQuote": quote(12, spb.QUOTE_STATUS_SENT, pdf=PDF),
            "AcceptQuote": quote(12, spb.QUOTE_STATUS_ACCEPTED),
            "DeclineQuote": quote(12, spb.QUOTE_STATUS_DECLINED, decline_reason="Troppo caro"),
        }
    )
    return fake


@pytest.fixture
async def client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: FakeBackend
) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway_client(tmp_path, monkeypatch, backend, "AGENT") as http:
        who: dict[str, str] = http.who  # type: ignore[attr-defined]
        who["role"] = ""

        async def signed_in(self: Web, request: Request) -> Viewer:
            request.state.viewer = viewer(who["kind"], 3, who["role"])
            return request.state.viewer

        monkeypatch.setattr(Web, "viewer", signed_in)
        yield http


def as_customer(client: httpx.AsyncClient) -> None:
    client.who.update(kind="CONTACT", role="")  # type: ignore[attr-defined]


def form(**values: str) -> dict[str, str]:
    return {"csrf_token": CSRF, **values}


HTMX = {"HX-Request": "true"}


# -- console -----------------------------------------------------------------------------


async def test_both_ticket_pages_load_their_quotes(
    client: httpx.AsyncClient, backend: FakeBackend
) -> None:
    async def ticket(token: str, ticket_id: int) -> pb.Ticket:
        found: pb.Ticket = backend.replies["GetTicket"]
        return found

    async def comments(token: str, ticket_id: int) -> list[pb.Comment]:
        return []

    backend.ticket = ticket  # type: ignore[attr-defined]  # the portal's own helpers
    backend.comments = comments  # type: ignore[attr-defined]
    console = await client.get("/agent/tickets/7")
    assert console.status_code == 200
    assert 'hx-get="/agent/tickets/7/quotes" hx-trigger="load"' in console.text
    assert '<a href="/agent/tickets/7/quotes">Quotes for this ticket</a>' in console.text
    as_customer(client)
    portal = await client.get("/tickets/7")
    assert portal.status_code == 200
    assert 'hx-get="/tickets/7/quotes" hx-trigger="load"' in portal.text
    assert '<a href="/tickets/7/quotes">Quotes for this ticket</a>' in portal.text


async def test_the_console_lists_the_tickets_quotes(
    client: httpx.AsyncClient, backend: FakeBackend
) -> None:
    page = await client.get("/agent/tickets/7/quotes", headers=HTMX)
    assert page.status_code == 200
    assert "<html" not in page.text  # in place on the workspace
    assert backend.called("ListQuotes")[0].ticket_id == 7
    for shown in ("Q-12", "Q-13", "Installazione del gestionale", "1,805.60 EUR", "Draft", "Sent"):
        assert shown in page.text
    assert page.text.count(">Send quote</button>") == 1  # the draft only
    assert 'action="/agent/tickets/7/quotes/13/send"' in page.text
    assert 'name="request_id" value="web-' in page.text
    assert page.text.count("<legend>Line") == qv.FORM_LINES


async def test_without_javascript_the_quotes_are_a_page(client: httpx.AsyncClient) -> None:
    page = await client.get("/agent/tickets/7/quotes")
    assert "<h1" in page.text and "Nuova installazione" in page.text
    assert "Make a quote" in page.text


async def test_a_quote_is_made_from_the_filled_rows(
    client: httpx.AsyncClient, backend: FakeBackend
) -> None:
    sent = form(
        request_id="web-q1",
        title="Installazione del gestionale",
        valid_until=NEXT_MONTH,
        proposed_dates="15-16 gennaio",
        notes="Prezzi IVA esclusa",
        **{
            "lines[0].description": "Installazione in sede",
            "lines[0].quantity": "2",
            "lines[0].unit": "days",
            "lines[0].unit_price": "600",
            "lines[0].vat_rate": "22",
            "lines[2].description": "Configurazione",
            "lines[2].quantity": "3,5",
            "lines[2].unit": "hours",
            "lines[2].unit_price": "80,00",
            "lines[2].vat_rate": "22",
            "lines[1].unit": "hours",
            "lines[1].vat_rate": "22",
        },
    )
    first = await client.post("/agent/tickets/7/quotes", data=sent)
    assert first.status_code == 303
    assert first.headers["location"] == "/agent/tickets/7#quotes"
    await client.post("/agent/tickets/7/quotes", data=sent)  # a double click
    calls = backend.called("CreateQuote")
    assert [c.request_id for c in calls] == ["web-q1", "web-q1"]
    made = calls[0]
    assert (made.ticket_id, made.title, made.valid_until) == (
        7,
        "Installazione del gestionale",
        NEXT_MONTH,
    )
    assert [(x.description, x.quantity, x.unit, x.unit_price) for x in made.lines] == [
        ("Installazione in sede", "2", "days", "600"),
        ("Configurazione", "3.5", "hours", "80.00"),
    ]
    assert (made.proposed_dates, made.notes) == ("15-16 gennaio", "Prezzi IVA esclusa")


async def test_a_refused_line_is_named_by_its_row_and_kept(
    client: httpx.AsyncClient, backend: FakeBackend
) -> None:
    backend.replies["CreateQuote"] = rpc_error(
        grpc.StatusCode.INVALID_ARGUMENT, "lines[0].unit_price: 'tanto' is not an amount"
    )
    page = await client.post(
        "/agent/tickets/7/quotes",
        data=form(
            request_id="web-q2",
            title="Formazione",
            valid_until=NEXT_MONTH,
            **{
                "lines[1].description": "Giornata di formazione",
                "lines[1].quantity": "1",
                "lines[1].unit": "days",
                "lines[1].unit_price": "tanto",
                "lines[1].vat_rate": "22",
            },
        ),
    )
    assert page.status_code == 400
    assert "lines[1].unit_price: &#39;tanto&#39; is not an amount" in page.text
    assert 'role="alert"' in page.text
    assert 'name="lines[1].unit_price" inputmode="decimal" size="8" value="tanto"' in page.text
    assert 'value="Giornata di formazione"' in page.text
    assert 'name="request_id" value="web-q2"' in page.text  # the retry is the same quote


async def test_a_draft_is_sent(client: httpx.AsyncClient, backend: FakeBackend) -> None:
    sent = await client.post("/agent/tickets/7/quotes/13/send", data=form())
    assert sent.status_code == 303
    assert sent.headers["location"] == "/agent/tickets/7#quotes"
    assert backend.called("SendQuote")[0].id == 13


async def test_a_refused_send_says_why(client: httpx.AsyncClient, backend: FakeBackend) -> None:
    backend.replies["SendQuote"] = rpc_error(
        grpc.StatusCode.FAILED_PRECONDITION, "#7 already has an open quote, Q-12"
    )
    page = await client.post("/agent/tickets/7/quotes/13/send", data=form())
    assert page.status_code == 409
    assert "#7 already has an open quote, Q-12" in page.text


async def test_a_developer_sees_quotes_but_no_form(client: httpx.AsyncClient) -> None:
    client.who.update(role="DEVELOPER")  # type: ignore[attr-defined]
    page = await client.get("/agent/tickets/7/quotes", headers=HTMX)
    assert "Q-12" in page.text
    assert "Make a quote" not in page.text and "Send quote" not in page.text


async def test_a_customer_gets_no_console_quotes(client: httpx.AsyncClient) -> None:
    as_customer(client)
    assert (await client.get("/agent/tickets/7/quotes")).status_code == 403


# -- portal ------------------------------------------------------------------------------


async def test_an_open_quote_shows_lines_totals_and_the_answers(
    client: httpx.AsyncClient, backend: FakeBackend
) -> None:
    as_customer(client)
    backend.replies["ListQuotes"] = spb.ListQuotesResponse(quotes=[SENT])
    page = await client.get("/tickets/7/quotes", headers=HTMX)
    assert page.status_code == 200
    for shown in (
        "Installazione in sede",
        "2 days",
        "3.5 hours",
        "600.00",
        "1,480.00 EUR",
        "325.60 EUR",
        "1,805.60 EUR",
        "15-16 gennaio, in sede",
    ):
        assert shown in page.text
    assert '<a href="/tickets/7/quotes/12/pdf" download>Download PDF</a>' in page.text
    assert ">Accept</button>" in page.text
    assert ">Decline</button>" in page.text
    assert page.text.count(f'name="csrf_token" value="{CSRF}"') == 2


async def test_an_expired_quote_has_no_buttons(
    client: httpx.AsyncClient, backend: FakeBackend
) -> None:
    as_customer(client)
    yesterday = (date.today() - timedelta(days=2)).isoformat()
    backend.replies["ListQuotes"] = spb.ListQuotesResponse(
        quotes=[quote(12, spb.QUOTE_STATUS_SENT, valid_until=yesterday)]
    )
    page = await client.get("/tickets/7/quotes", headers=HTMX)
    assert "(expired)" in page.text and "Expired" in page.text
    assert ">Accept</button>" not in page.text and ">Decline</button>" not in page.text


async def test_the_pdf_is_a_download(client: httpx.AsyncClient, backend: FakeBackend) -> None:
    as_customer(client)
    got = await client.get("/tickets/7/quotes/12/pdf")
    assert got.status_code == 200
    assert got.headers["content-type"] == "application/pdf"
    assert got.headers["content-disposition"].startswith('attachment; filename="Q-12.pdf"')
    assert got.content == PDF
    assert backend.called("GetQuote")[0].with_pdf
    assert (await client.get("/tickets/8/quotes/12/pdf")).status_code == 404  # another ticket


async def test_another_organisations_quote_is_not_found(
    client: httpx.AsyncClient, backend: FakeBackend
) -> None:
    as_customer(client)
    backend.replies["GetQuote"] = rpc_error(grpc.StatusCode.NOT_FOUND, "quote 12")
    backend.replies["AcceptQuote"] = rpc_error(grpc.StatusCode.NOT_FOUND, "quote 12")
    backend.replies["DeclineQuote"] = rpc_error(grpc.StatusCode.NOT_FOUND, "quote 12")
    assert (await client.get("/tickets/7/quotes/12/pdf")).status_code == 404
    assert (await client.post("/tickets/7/quotes/12/accept", data=form())).status_code == 404
    declined = await client.post("/tickets/7/quotes/12/decline", data=form(reason="No"))
    assert declined.status_code == 404


async def test_accepting_goes_back_to_the_ticket(
    client: httpx.AsyncClient, backend: FakeBackend
) -> None:
    as_customer(client)
    answered = await client.post("/tickets/7/quotes/12/accept", data=form())
    assert answered.status_code == 303
    assert answered.headers["location"] == "/tickets/7?quote=accepted#quotes"
    assert backend.called("AcceptQuote")[0].id == 12
    backend.replies["ListQuotes"] = spb.ListQuotesResponse(
        quotes=[quote(12, spb.QUOTE_STATUS_ACCEPTED)]
    )
    shown = await client.get("/tickets/7/quotes?quote=accepted", headers=HTMX)
    assert "Thank you: you accepted the quote." in shown.text
    assert "Accepted" in shown.text and ">Accept</button>" not in shown.text
    without_csrf = await client.post("/tickets/7/quotes/12/accept", data={})
    assert without_csrf.status_code == 403
    assert len(backend.called("AcceptQuote")) == 1


async def test_an_answer_too_late_says_so(client: httpx.AsyncClient, backend: FakeBackend) -> None:
    as_customer(client)
    backend.replies["AcceptQuote"] = rpc_error(
        grpc.StatusCode.FAILED_PRECONDITION, "Q-12 is EXPIRED: it cannot become ACCEPTED"
    )
    page = await client.post("/tickets/7/quotes/12/accept", data=form())
    assert page.status_code == 409
    assert "Q-12 is EXPIRED: it cannot become ACCEPTED" in page.text


async def test_declining_needs_a_reason(client: httpx.AsyncClient, backend: FakeBackend) -> None:
    as_customer(client)
    page = await client.post("/tickets/7/quotes/12/decline", data=form(reason="  "))
    assert page.status_code == 400
    assert "Please write why you decline the quote." in page.text
    assert backend.called("DeclineQuote") == []
    answered = await client.post("/tickets/7/quotes/12/decline", data=form(reason="Troppo caro"))
    assert answered.status_code == 303
    assert answered.headers["location"] == "/tickets/7?quote=declined#quotes"
    assert backend.called("DeclineQuote")[0].reason == "Troppo caro"


async def test_the_portal_quotes_are_italian(
    client: httpx.AsyncClient, backend: FakeBackend
) -> None:
    as_customer(client)
    client.cookies.set("hd_lang", "it")
    backend.replies["ListQuotes"] = spb.ListQuotesResponse(quotes=[SENT])
    page = await client.get("/tickets/7/quotes", headers=HTMX)
    assert ">Accetta</button>" in page.text and ">Rifiuta</button>" in page.text
    assert "1.805,60 EUR" in page.text and "2 giorni" in page.text
    assert "Scarica il PDF" in page.text


def test_amounts_in_both_languages() -> None:
    assert qv.amount("1250.5", "it") == "1.250,50"
    assert qv.amount("1250.5", "en") == "1,250.50"
    assert qv.quantity("7.50", "it") == "7,5"
    assert qv.form_field("lines[1].unit_price", [0, 2]) == "lines[2].unit_price"
    assert qv.form_field("title", [0]) == "title"
