"""A quote's mails through real parts: the SMTP relay on loopback, the delivery log's
database, and a gRPC SalesService that answers GetQuote with a real PDF (the tickets
service's own renderer), checking the service token.

- the quote goes to the requester in their language, its PDF attached, with the total, the
  validity date, the proposed dates and the portal page; a redelivered event sends nothing;
- the tickets service down: nothing is sent and the call asks for a retry; once it is back,
  the mail goes, with its PDF, under the same Message-ID;
- the reminder and the expiry reach the requester; the expiry, the acceptance and the
  refusal reach the ticket's assignee; no assignee: no agent mail, no failure.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import grpc
import pytest

from helpdesk.v1 import sales_pb2 as spb
from helpdesk.v1 import sales_pb2_grpc as sgrpc
from services.common.db import make_engine, make_sessionmaker, upgrade
from services.common.embedded import free_port
from services.common.mail_threading import MessageIds
from services.common.messages.quotes import decode as decode_quote_event
from services.common.messages.quotes import is_quote
from services.common.settings import async_database_url
from services.notify.app import MIGRATIONS_DIR, VERSION_TABLE
from services.notify.mailer import SmtpMailer
from services.notify.models import DeliveryStatus
from services.notify.notifier import RetryPolicy
from services.notify.quote_mails import QuoteMails
from services.notify.render import Renderer
from services.notify.store import DeliveryStore
from services.tickets import quote_pdf
from tests.services.notify_fixtures import MAIL_FROM, PORTAL_URL, Received, Relay, body_of

pytestmark = [pytest.mark.db, pytest.mark.timeout(60)]

SERVICE_TOKEN = "test-service-token"
SIGNING_KEY = "test-signing-key-for-quote-mails"
FAST_RETRY = RetryPolicy(base_delay=0.1, max_delay=0.5)
REQUESTER = "mario.rossi@acme.test"
ASSIGNEE = "laura.bianchi@helpdesk.test"


def make_quote_event(kind: str, **overrides: Any) -> dict[str, Any]:
    """A quote event as quote_activities writes it into the sales outbox."""
    event: dict[str, Any] = {
        "event_id": f"quote-3-ev-{uuid.uuid4().hex[:8]}",
        "type": kind,
        "occurred_at": "2027-01-05T09:15:00+00:00",
        "quote_id": 3,
        "number": "Q-3",
        "ticket_id": 42,
        "subject": "Migrazione del server gestionale",
        "organization_id": 1,
        "organization_name": "ACME S.r.l.",
        "status": "SENT",
        "title": "Migrazione del database su nuovo server",
        "total": "915.00",
        "currency": "EUR",
        "valid_until": "2027-01-15",
        "proposed_dates": "20-21 gennaio, in sede",
        "decided_by_name": "",
        "reason": "",
        "requester_id": 7,
        "requester_email": REQUESTER,
        "requester_name": "Mario Rossi",
        "locale": "it",
        "assignee_id": 3,
        "assignee_name": "Laura Bianchi",
        "assignee_email": ASSIGNEE,
    }
    event.update(overrides)
    return event


def quote_bytes(locale: str = "it") -> bytes:
    """The quote's PDF as the tickets service renders it."""
    return quote_pdf.render(
        quote_pdf.PdfQuote(
            number="Q-3",
            title="Migrazione del database su nuovo server",
            organization="ACME S.r.l.",
            ticket="#42",
            issued=date(2027, 1, 5),
            valid_until=date(2027, 1, 15),
            lines=[
                quote_pdf.PdfLine(
                    "Giornata di migrazione in sede", "1", "days", "750.00", "22", "750.00"
                )
            ],
            net_total="750.00",
            vat_total="165.00",
            total="915.00",
            currency="EUR",
            proposed_dates="20-21 gennaio, in sede",
            notes="",
            locale=locale,
        )
    )


@dataclass
class Sales(sgrpc.SalesServiceServicer):
    """SalesService's GetQuote: the quotes it holds, for the service token only."""

    quotes: dict[int, spb.Quote] = field(default_factory=dict)
    calls: list[tuple[int, bool]] = field(default_factory=list)

    async def GetQuote(self, request: spb.GetQuoteRequest, context: Any) -> spb.Quote:
        if ("authorization", f"Bearer {SERVICE_TOKEN}") not in context.invocation_metadata():
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "no valid token")
        self.calls.append((request.id, request.with_pdf))
        quote = self.quotes.get(request.id)
        if quote is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"quote {request.id} not found")
        assert quote is not None
        answer = spb.Quote()
        answer.CopyFrom(quote)
        if not request.with_pdf:
            answer.ClearField("pdf")
        return answer


@dataclass
class Desk:
    """The delivery log, the relay, the SalesService on a port; ``mails`` builds the class
    under test against ``sales_addr`` (the real one, or a port nobody answers on)."""

    store: DeliveryStore
    relay: Relay
    sales: Sales
    sales_addr: str
    channels: list[grpc.aio.Channel] = field(default_factory=list)

    def mails(self, sales_addr: str | None = None) -> QuoteMails:
        channel = grpc.aio.insecure_channel(sales_addr or self.sales_addr)
        self.channels.append(channel)
        return QuoteMails(
            self.store,
            Renderer(portal_url=PORTAL_URL),
            SmtpMailer(self.relay.address),
            MAIL_FROM,
            FAST_RETRY,
            signing_key=SIGNING_KEY,
            sales=sgrpc.SalesServiceStub(channel),
            service_token=SERVICE_TOKEN,
        )

    def received(self, to: str) -> list[Received]:
        return [r for r in self.relay.handler.received if r.rcpt_tos == [to]]

    async def rows(self) -> list[Any]:
        return list(await self.store.list_page(ticket_id=0, recipient="", after_id=0, limit=100))


@pytest.fixture
async def desk(database_url: str, relay: Relay) -> AsyncIterator[Desk]:
    url = async_database_url(database_url)
    await upgrade(MIGRATIONS_DIR, url, VERSION_TABLE)
    engine = make_engine(url)
    sales = Sales(
        {
            3: spb.Quote(
                id=3,
                number="Q-3",
                ticket_id=42,
                organization_id=1,
                title="Migrazione del database su nuovo server",
                total="915.00",
                pdf=quote_bytes(),
            ),
            # Another organisation's quote, of another ticket.
            4: spb.Quote(id=4, number="Q-4", ticket_id=77, organization_id=2, pdf=quote_bytes()),
        }
    )
    server = grpc.aio.server()
    sgrpc.add_SalesServiceServicer_to_server(sales, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    d = Desk(DeliveryStore(make_sessionmaker(engine)), relay, sales, f"127.0.0.1:{port}")
    try:
        yield d
    finally:
        for channel in d.channels:
            await channel.close(None)
        await server.stop(None)
        await engine.dispose()


def _attachments(mail: Received) -> list[tuple[str, str, bytes]]:
    found = []
    for part in mail.message.iter_attachments():
        data = part.get_payload(decode=True)
        assert isinstance(data, bytes)
        found.append((str(part.get_filename()), part.get_content_type(), data))
    return found


def _message_id(event_id: str, template: str) -> str:
    return MessageIds(SIGNING_KEY, "helpdesk.test").notification(event_id, template, 42)


@pytest.mark.unit
def test_a_body_that_is_no_quote_event_is_refused_naming_the_field() -> None:
    good = make_quote_event("quote_sent")
    assert decode_quote_event(json.dumps(good).encode())["number"] == "Q-3"
    for key, value, named in (
        ("quote_id", "3", "quote_id"),
        ("type", "quote_signed", "type"),
        ("valid_until", "15/01/2027", "valid_until"),
        ("event_id", "", "event_id"),
    ):
        bad = dict(good, **{key: value})
        with pytest.raises(ValueError, match=named):
            decode_quote_event(json.dumps(bad).encode())
    with pytest.raises(ValueError, match="JSON"):
        decode_quote_event(b"{not json")
    # What the sales consumer routes here: quote events only, not the requests' own.
    assert is_quote(json.dumps(good).encode())
    assert not is_quote(json.dumps({"type": "created"}).encode())
    assert not is_quote(b"\xff")


async def test_the_customer_gets_the_quote_with_its_pdf_once(desk: Desk) -> None:
    event = make_quote_event("quote_sent")
    mails = desk.mails()
    assert await mails.handle(event) is None

    [mail] = desk.received(REQUESTER)
    assert mail.message["Subject"] == "Preventivo Q-3 per la richiesta #42"
    assert mail.message["Message-ID"] == _message_id(event["event_id"], "quote_sent")
    # In the ticket's thread, as every mail about #42.
    assert "<ticket-42@helpdesk.test>" in str(mail.message["References"])
    text = mail.message.get_body(("plain",))
    assert text is not None and text["Content-Language"] == "it"
    body = body_of(mail.message)
    assert "Gentile Mario Rossi," in body
    assert "Migrazione del database su nuovo server" in body
    assert "Totale: 915,00 € (IVA inclusa)" in body
    assert "venerdì 15 gennaio 2027" in body
    assert "20-21 gennaio, in sede" in body
    assert f"{PORTAL_URL}/tickets/42" in body
    assert "«Accetta»" in body and "«Rifiuta»" in body
    [(name, content_type, data)] = _attachments(mail)
    assert (name, content_type) == ("preventivo-Q-3.pdf", "application/pdf")
    assert data == quote_bytes() and data.startswith(b"%PDF")
    assert desk.sales.calls == [(3, True)]  # asked with the service token, for the PDF

    # Redelivered (a consumer that crashed before its ack): nothing is sent again.
    assert await desk.mails().handle(event) is None
    assert len(desk.relay.handler.received) == 1
    [row] = await desk.rows()
    assert (row.status, row.template, row.recipient) == (
        DeliveryStatus.SENT,
        "quote_sent",
        REQUESTER,
    )
    assert row.ticket_id == 42 and row.subject == "Preventivo Q-3 per la richiesta #42"


async def test_an_english_customer_reads_the_quote_in_english(desk: Desk) -> None:
    event = make_quote_event("quote_sent", locale="en", requester_name="John Smith", total="1250.5")
    assert await desk.mails().handle(event) is None
    [mail] = desk.received(REQUESTER)
    assert mail.message["Subject"] == "Quote Q-3 for request #42"
    body = body_of(mail.message)
    assert "Dear John Smith," in body
    assert "Total: €1,250.50 (VAT included)" in body
    assert "Friday 15 January 2027" in body
    [(name, content_type, _)] = _attachments(mail)
    assert (name, content_type) == ("quote-Q-3.pdf", "application/pdf")


async def test_with_the_tickets_service_down_the_quote_waits_for_its_pdf(desk: Desk) -> None:
    event = make_quote_event("quote_sent")
    nobody = f"127.0.0.1:{free_port()}"
    retry = await desk.mails(nobody).handle(event)
    assert retry is not None and retry > 0  # the consumer tries again later
    assert desk.relay.handler.received == []  # never without its PDF
    [row] = await desk.rows()
    assert row.status == DeliveryStatus.PENDING and "UNAVAILABLE" in row.error

    # The service is back: the mail goes, with its PDF, under the same Message-ID.
    assert await desk.mails().handle(event) is None
    [mail] = desk.received(REQUESTER)
    assert mail.message["Message-ID"] == row.message_id
    assert [a[0] for a in _attachments(mail)] == ["preventivo-Q-3.pdf"]
    [row] = await desk.rows()
    assert row.status == DeliveryStatus.SENT and row.attempts == 2


async def test_a_quote_of_another_ticket_is_never_attached(desk: Desk) -> None:
    # An event naming quote 4 for ticket 42: quote 4 is another organisation's (ticket 77).
    event = make_quote_event("quote_sent", quote_id=4, number="Q-4")
    retry = await desk.mails().handle(event)
    assert retry is not None
    assert desk.relay.handler.received == []
    [row] = await desk.rows()
    assert row.status == DeliveryStatus.PENDING and "ticket 77" in row.error


async def test_the_reminder_reaches_the_customer_once(desk: Desk) -> None:
    event = make_quote_event("quote_reminder")
    assert await desk.mails().handle(event) is None
    assert await desk.mails().handle(event) is None  # redelivered
    [mail] = desk.received(REQUESTER)
    assert mail.message["Subject"] == "Promemoria: il preventivo Q-3 scade venerdì 15 gennaio 2027"
    body = body_of(mail.message)
    assert "scade alla fine di venerdì 15 gennaio 2027" in body
    assert "915,00 €" in body and f"{PORTAL_URL}/tickets/42" in body
    assert _attachments(mail) == []
    assert desk.received(ASSIGNEE) == []  # the agent is not reminded
    assert desk.sales.calls == []  # no PDF asked for


async def test_an_expired_quote_goes_back_to_the_assignee(desk: Desk) -> None:
    event = make_quote_event("quote_expired", status="EXPIRED")
    assert await desk.mails().handle(event) is None
    [agent] = desk.received(ASSIGNEE)
    assert agent.message["Subject"] == "Q-3 scaduto senza risposta: #42 torna a te"
    assert "Ciao Laura Bianchi," in body_of(agent.message)
    assert f"{PORTAL_URL}/agent/tickets/42" in body_of(agent.message)
    assert "<ticket-42@helpdesk.test>" in str(agent.message["References"])
    [customer] = desk.received(REQUESTER)
    assert customer.message["Subject"] == "Il preventivo Q-3 è scaduto (richiesta #42)"
    assert "scaduto venerdì 15 gennaio 2027" in body_of(customer.message)
    assert agent.message["Message-ID"] != customer.message["Message-ID"]


async def test_the_assignee_hears_of_an_acceptance_and_of_a_refusal(desk: Desk) -> None:
    accepted = make_quote_event("quote_accepted", status="ACCEPTED", decided_by_name="Mario Rossi")
    assert await desk.mails().handle(accepted) is None
    [mail] = desk.received(ASSIGNEE)
    assert mail.message["Subject"] == ("Q-3 accettato da Mario Rossi: pianifica l'intervento (#42)")
    body = body_of(mail.message)
    assert "Date proposte: 20-21 gennaio, in sede" in body
    assert "Pianifica l'intervento" in body

    declined = make_quote_event(
        "quote_declined",
        status="DECLINED",
        decided_by_name="Mario Rossi",
        reason="Preferiamo rimandare a dopo l'estate.",
    )
    assert await desk.mails().handle(declined) is None
    [_, mail] = desk.received(ASSIGNEE)
    assert mail.message["Subject"] == "Q-3 rifiutato da Mario Rossi (#42)"
    assert "Motivo: Preferiamo rimandare a dopo l'estate." in body_of(mail.message)
    assert desk.received(REQUESTER) == []  # the customer decided: nothing to tell them


async def test_without_an_assignee_no_agent_mail_and_no_failure(desk: Desk) -> None:
    unassigned = {"assignee_id": 0, "assignee_name": "", "assignee_email": ""}
    for kind in ("quote_accepted", "quote_declined"):
        assert await desk.mails().handle(make_quote_event(kind, **unassigned)) is None
    assert desk.relay.handler.received == []
    assert await desk.rows() == []
    # The expiry still tells the customer.
    assert await desk.mails().handle(make_quote_event("quote_expired", **unassigned)) is None
    assert [r.rcpt_tos for r in desk.relay.handler.received] == [[REQUESTER]]
