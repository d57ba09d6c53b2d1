"""Quotes before an intervention (seed 003) on the time-skipping test server: SalesService
over gRPC (token interceptor and role table included), the ticket's and the quote's
workflows, the real tickets activities, store and nats-server.

What a person checks: the quote's totals are exact and its PDF says them; the ticket
waits PENDING while the quote is open; accepting brings it back OPEN (twice is one
answer, a later decline is refused); declining solves it with the reason; an unanswered
quote reminds the customer once, then expires and the ticket goes back to the agent;
another organisation's customer cannot see it or answer it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from pypdf import PdfReader
from temporalio.testing import WorkflowEnvironment

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import sales_pb2 as spb
from helpdesk.v1 import sales_pb2_grpc as sgrpc
from helpdesk.v1 import tickets_pb2 as tpb
from helpdesk.v1 import tickets_pb2_grpc as tgrpc
from services.cli.main import main
from services.common.access import Principal, Role
from services.common.auth import bearer_metadata
from services.common.events import EventPublisher
from services.common.grpc_server import ServiceServer
from services.common.local_dates import DISPLAY_ZONE
from services.common.settings import Settings
from services.common.tokens import TokenSigner
from services.tickets import models as m
from services.tickets.sales_events import SalesEventPublisher
from services.tickets.sales_rpc import SalesServicer
from services.tickets.servicer import TicketServicer
from tests.support import SIGNING_KEY, TicketsStack, eventually, stream_events, tickets_stack
from workflows.quote_contracts import quote_workflow_id

pytestmark = [pytest.mark.workflow, pytest.mark.db, pytest.mark.timeout(240)]

SIGNER = TokenSigner(SIGNING_KEY)


LINES = [
    spb.QuoteLine(
        description="Installazione del modulo Fatture in sede",
        quantity="7.5",
        unit="hours",
        unit_price="80",
        vat_rate="22",
    ),
    spb.QuoteLine(
        description="Licenza modulo Fatture", quantity="1", unit="units", unit_price="150.00"
    ),
]


@dataclass
class Desk:
    env: WorkflowEnvironment
    stack: TicketsStack
    sales: sgrpc.SalesServiceStub
    tickets: tgrpc.TicketServiceStub
    outbox: SalesEventPublisher
    agent: Any
    customer: Any  # the requester
    stranger: Any  # a customer of another organisation
    nats_url: str
    address: str  # where SalesService and TicketService listen

    async def ticket(self, ticket_id: int) -> str:
        got = await self.tickets.GetTicket(tpb.GetTicketRequest(id=ticket_id), metadata=self.agent)
        return pb.TicketStatus.Name(got.status).removeprefix("TICKET_STATUS_")

    async def sales_events(self, quote_id: int) -> list[str]:
        await self.outbox.publish_pending()
        found = await stream_events(
            self.nats_url, "helpdesk.sales.>", lambda e: e.get("quote_id") == quote_id, 3
        )
        return [str(e["type"]) for e in found]


def _md(who: Principal) -> Any:
    return bearer_metadata(SIGNER.access_token(who))


@asynccontextmanager
async def desk(env: WorkflowEnvironment, database_url: str, nats_url: str) -> AsyncIterator[Desk]:
    settings = dataclasses.replace(
        Settings.from_env(), signing_key=SIGNING_KEY, nats_url=nats_url, service_token="s"
    )
    async with tickets_stack(env.client, database_url, nats_url) as stack:
        async with stack.sessions() as session:
            other = m.Organization(
                name=f"Bianchi {uuid.uuid4().hex[:6]}",
                name_key=uuid.uuid4().hex,
                email_domains=[],
                closed_ticket_policy="FOLLOW_UP",
                locale="it",
                created_at=datetime.now(UTC),
            )
            session.add(other)
            await session.flush()
            gino = m.Contact(
                organization_id=other.id,
                name="Gino Bianchi",
                email=f"gino.{uuid.uuid4().hex[:6]}@bianchi.it",
                email_key=uuid.uuid4().hex,
                phone="",
                role="REFERENT",
                locale="it",
                created_at=datetime.now(UTC),
            )
            session.add(gino)
            await session.commit()
            stranger = _md(
                Principal(Role.REFERENT, "CONTACT", gino.id, other.id, name="Gino Bianchi")
            )
        publisher = EventPublisher(nats_url, "test-quotes")
        outbox = SalesEventPublisher(stack.sessions, publisher)

        def register(server: grpc.aio.Server) -> None:
            sgrpc.add_SalesServiceServicer_to_server(
                SalesServicer(stack.sessions, outbox, env.client), server
            )
            tgrpc.add_TicketServiceServicer_to_server(
                TicketServicer(stack.sessions, env.client, stack.creator, SIGNER), server
            )

        server = ServiceServer(settings, "127.0.0.1:0", [], register)
        await server.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
        try:
            yield Desk(
                env,
                stack,
                sgrpc.SalesServiceStub(channel),
                tgrpc.TicketServiceStub(channel),
                outbox,
                _md(Principal(Role.AGENT, "AGENT", stack.agent_id, name="Anna Agente")),
                _md(
                    Principal(
                        Role.USER, "CONTACT", stack.contact_id, stack.org_id, name="Mario Rossi"
                    )
                ),
                stranger,
                nats_url,
                f"127.0.0.1:{server.port}",
            )
        finally:
            await channel.close(None)
            await server.stop(1)
            await outbox.close()
            await publisher.close()


async def _advance(env: WorkflowEnvironment, delta: timedelta) -> None:
    # Advance once with auto-skipping off (see the developers' guide, machine facts).
    with env.auto_time_skipping_disabled():
        await env.sleep(delta)


async def _fails(code: grpc.StatusCode, call: Any) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == code, caught.value.details()
    return str(caught.value.details())


def _in_days(days: int) -> str:
    return (datetime.now(UTC).astimezone(DISPLAY_ZONE).date() + timedelta(days=days)).isoformat()


async def _sent_quote(d: Desk, days: int = 10) -> tuple[int, spb.Quote]:
    ticket_id = await d.stack.new_ticket("Serve il modulo Fatture")
    await d.tickets.AssignTicket(
        tpb.AssignTicketRequest(ticket_id=ticket_id, assignee_id=d.stack.agent_id),
        metadata=d.agent,
    )
    draft = await d.sales.CreateQuote(
        spb.CreateQuoteRequest(
            request_id=uuid.uuid4().hex,
            ticket_id=ticket_id,
            title="Modulo Fatture: installazione e licenza",
            lines=LINES,
            valid_until=_in_days(days),
            proposed_dates="15-16 gennaio, in sede",
        ),
        metadata=d.agent,
    )
    assert draft.status == spb.QUOTE_STATUS_DRAFT
    sent = await d.sales.SendQuote(spb.SendQuoteRequest(id=draft.id), metadata=d.agent)
    return ticket_id, sent


async def test_an_accepted_quote_brings_the_ticket_back_with_the_activity(
    time_skipping_env: WorkflowEnvironment, database_url: str, nats_url: str
) -> None:
    async with desk(time_skipping_env, database_url, nats_url) as d:
        ticket_id, quote = await _sent_quote(d)
        # Exact amounts: 7.5 h x 80.00 + 1 x 150.00, VAT 22% on each line.
        assert [x.net for x in quote.lines] == ["600.00", "150.00"]
        assert [x.vat for x in quote.lines] == ["132.00", "33.00"]
        assert (quote.net_total, quote.vat_total, quote.total) == ("750.00", "165.00", "915.00")
        assert quote.status == spb.QUOTE_STATUS_SENT
        assert quote.workflow_id == quote_workflow_id(quote.id)
        assert await d.ticket(ticket_id) == "PENDING"
        # The customer sees it, with the PDF that says the same.
        mine = await d.sales.GetQuote(
            spb.GetQuoteRequest(id=quote.id, with_pdf=True), metadata=d.customer
        )
        text = PdfReader(io.BytesIO(mine.pdf)).pages[0].extract_text()
        assert f"Preventivo {quote.number}" in text and "915.00 EUR" in text
        # Another organisation's customer: no such quote.
        await _fails(
            grpc.StatusCode.NOT_FOUND,
            d.sales.GetQuote(spb.GetQuoteRequest(id=quote.id), metadata=d.stranger),
        )
        await _fails(
            grpc.StatusCode.NOT_FOUND,
            d.sales.AcceptQuote(spb.AcceptQuoteRequest(id=quote.id), metadata=d.stranger),
        )
        accepted = await d.sales.AcceptQuote(
            spb.AcceptQuoteRequest(id=quote.id), metadata=d.customer
        )
        assert accepted.status == spb.QUOTE_STATUS_ACCEPTED
        assert accepted.decided_by_name == "Mario Rossi"
        again = await d.sales.AcceptQuote(spb.AcceptQuoteRequest(id=quote.id), metadata=d.customer)
        assert again.status == spb.QUOTE_STATUS_ACCEPTED and again.decided_at == accepted.decided_at
        message = await _fails(
            grpc.StatusCode.FAILED_PRECONDITION,
            d.sales.DeclineQuote(
                spb.DeclineQuoteRequest(id=quote.id, reason="ci ho ripensato"),
                metadata=d.customer,
            ),
        )
        assert "ACCEPTED" in message and "DECLINED" in message
        assert await eventually(lambda: _status_is(d, ticket_id, "OPEN"), timeout=20), (
            "the ticket did not come back OPEN"
        )
        history = await d.tickets.GetTicketHistory(
            tpb.GetTicketHistoryRequest(ticket_id=ticket_id), metadata=d.agent
        )
        details = [e.detail for e in history.events if e.type == "quote_accepted"]
        assert details == [
            f"{quote.number} accepted by Mario Rossi; activity: 15-16 gennaio, in sede"
        ]
        assert await eventually(
            lambda: _has(d, quote.id, ["quote_sent", "quote_accepted"]), timeout=20
        )
        report = await _quote_report(d)
        assert (report.sent, report.accepted, report.open) == (1, 1, 0)
        assert report.accepted_total == "915.00"


async def _quote_report(d: Desk) -> tpb.QuoteReport:
    """This month's quotes of the desk's organisation, as the report shows them."""
    request = tpb.GetReportRequest(organization_id=d.stack.org_id)
    now = datetime.now(UTC)
    request.period_start.FromDatetime(now - timedelta(days=1))
    request.period_end.FromDatetime(now + timedelta(days=31))
    return (await d.tickets.GetReport(request, metadata=d.agent)).quotes


async def _status_is(d: Desk, ticket_id: int, status: str) -> bool:
    return await d.ticket(ticket_id) == status


async def _has(d: Desk, quote_id: int, wanted: list[str]) -> bool:
    return await d.sales_events(quote_id) == wanted


async def test_a_declined_quote_solves_the_ticket_with_the_reason(
    time_skipping_env: WorkflowEnvironment, database_url: str, nats_url: str
) -> None:
    async with desk(time_skipping_env, database_url, nats_url) as d:
        ticket_id, quote = await _sent_quote(d)
        await _fails(
            grpc.StatusCode.INVALID_ARGUMENT,
            d.sales.DeclineQuote(spb.DeclineQuoteRequest(id=quote.id), metadata=d.customer),
        )
        declined = await d.sales.DeclineQuote(
            spb.DeclineQuoteRequest(id=quote.id, reason="Troppo caro per quest'anno"),
            metadata=d.customer,
        )
        assert declined.status == spb.QUOTE_STATUS_DECLINED
        assert declined.decline_reason == "Troppo caro per quest'anno"
        assert await eventually(lambda: _status_is(d, ticket_id, "SOLVED"), timeout=20)
        history = await d.tickets.GetTicketHistory(
            tpb.GetTicketHistoryRequest(ticket_id=ticket_id), metadata=d.agent
        )
        solved = [e.detail for e in history.events if e.type == "solved"]
        assert solved == [f"{quote.number} declined by Mario Rossi: Troppo caro per quest'anno"]


async def test_an_unanswered_quote_reminds_once_then_expires(
    time_skipping_env: WorkflowEnvironment, database_url: str, nats_url: str
) -> None:
    env = time_skipping_env
    async with desk(env, database_url, nats_url) as d:
        ticket_id, quote = await _sent_quote(d, days=7)
        await _advance(env, timedelta(days=4))
        await eventually(lambda: _has(d, quote.id, ["quote_sent"]), timeout=20)
        # Three days before the end of its last day: one reminder, still open.
        await _advance(env, timedelta(days=1, hours=12))
        assert await eventually(
            lambda: _has(d, quote.id, ["quote_sent", "quote_reminder"]), timeout=20
        )
        assert await d.ticket(ticket_id) == "PENDING"
        await _advance(env, timedelta(days=3))
        assert await eventually(
            lambda: _has(d, quote.id, ["quote_sent", "quote_reminder", "quote_expired"]),
            timeout=20,
        )
        expired = await d.sales.GetQuote(spb.GetQuoteRequest(id=quote.id), metadata=d.customer)
        assert expired.status == spb.QUOTE_STATUS_EXPIRED and expired.HasField("reminded_at")
        assert await eventually(lambda: _status_is(d, ticket_id, "OPEN"), timeout=20)
        message = await _fails(
            grpc.StatusCode.FAILED_PRECONDITION,
            d.sales.AcceptQuote(spb.AcceptQuoteRequest(id=quote.id), metadata=d.customer),
        )
        assert "EXPIRED" in message
        report = await _quote_report(d)
        assert (report.sent, report.expired, report.accepted, report.open) == (1, 1, 0, 0)
        assert report.accepted_total == "0.00"


async def test_bad_quotes_are_refused_and_change_nothing(
    time_skipping_env: WorkflowEnvironment, database_url: str, nats_url: str
) -> None:
    async with desk(time_skipping_env, database_url, nats_url) as d:
        ticket_id, quote = await _sent_quote(d)

        def draft(**fields: Any) -> spb.CreateQuoteRequest:
            values: dict[str, Any] = {
                "ticket_id": ticket_id,
                "title": "Altro",
                "lines": LINES,
                "valid_until": _in_days(5),
            }
            values.update(fields)
            return spb.CreateQuoteRequest(**values)

        cases = {
            "lines[0].unit_price": draft(
                lines=[spb.QuoteLine(description="x", quantity="1", unit_price="12.345")]
            ),
            "lines[0].quantity": draft(
                lines=[spb.QuoteLine(description="x", quantity="0", unit_price="10")]
            ),
            "lines[0].unit": draft(
                lines=[spb.QuoteLine(description="x", quantity="1", unit="kg", unit_price="1")]
            ),
            "lines": draft(lines=[]),
            "valid_until": draft(valid_until=_in_days(-1)),
            "title": draft(title=" "),
        }
        for field, request in cases.items():
            message = await _fails(
                grpc.StatusCode.INVALID_ARGUMENT, d.sales.CreateQuote(request, metadata=d.agent)
            )
            assert message.startswith(f"{field}:"), message
        # Customers do not write quotes.
        await _fails(
            grpc.StatusCode.PERMISSION_DENIED, d.sales.CreateQuote(draft(), metadata=d.customer)
        )
        # One open quote per ticket.
        second = await d.sales.CreateQuote(draft(request_id="second"), metadata=d.agent)
        again = await d.sales.CreateQuote(draft(request_id="second"), metadata=d.agent)
        assert again.id == second.id
        message = await _fails(
            grpc.StatusCode.FAILED_PRECONDITION,
            d.sales.SendQuote(spb.SendQuoteRequest(id=second.id), metadata=d.agent),
        )
        assert quote.number in message
        still = await d.sales.GetQuote(spb.GetQuoteRequest(id=second.id), metadata=d.agent)
        assert still.status == spb.QUOTE_STATUS_DRAFT
        listed = await d.sales.ListQuotes(
            spb.ListQuotesRequest(ticket_id=ticket_id), metadata=d.customer
        )
        assert [q.id for q in listed.quotes] == [quote.id]  # drafts are the desk's
        desk_list = await d.sales.ListQuotes(
            spb.ListQuotesRequest(ticket_id=ticket_id), metadata=d.agent
        )
        assert [q.id for q in desk_list.quotes] == [second.id, quote.id]
        others = await d.sales.ListQuotes(spb.ListQuotesRequest(), metadata=d.stranger)
        assert list(others.quotes) == []


async def test_the_cli_makes_sends_and_shows_a_quote(
    time_skipping_env: WorkflowEnvironment,
    database_url: str,
    nats_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``helpdesk quote`` against the real service, as the agent at a terminal."""
    async with desk(time_skipping_env, database_url, nats_url) as d:
        ticket_id = await d.stack.new_ticket("Personalizzazione del report IVA")
        monkeypatch.setenv("HELPDESK_DATA_DIR", str(tmp_path))
        monkeypatch.setenv("HELPDESK_TICKETS_ADDR", d.address)
        token = SIGNER.access_token(
            Principal(Role.AGENT, "AGENT", d.stack.agent_id, name="Anna Agente")
        )

        async def helpdesk(*argv: str) -> str:
            code = await asyncio.to_thread(main, ["--token", token, *argv])
            captured = capsys.readouterr()
            assert code == 0, captured.err
            return captured.out

        made = await helpdesk(
            "--json", "quote", "create", "--ticket", f"#{ticket_id}",
            "--title", "Report IVA personalizzato",
            "--line", "Analisi e sviluppo;12;hours;85",
            "--line", "Collaudo in sede;1;days;600;22",
            "--valid-until", _in_days(30), "--dates", "entro febbraio",
        )  # fmt: skip
        number = json.loads(made)["number"]
        sent = await helpdesk("quote", "send", number)
        assert "SENT" in sent and "total" in sent and "1976.40 EUR" in sent
        pdf = tmp_path / "preventivo.pdf"
        await helpdesk("quote", "show", number, "--pdf", str(pdf))
        assert "1976.40 EUR" in PdfReader(pdf).pages[0].extract_text()
        listed = await helpdesk("quote", "list", "--ticket", str(ticket_id))
        assert number in listed and "SENT" in listed
        assert await d.ticket(ticket_id) == "PENDING"
