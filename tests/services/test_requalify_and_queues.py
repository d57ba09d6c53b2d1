"""The desk's daily work on the real parts (in-process gRPC, the Temporal dev server, the
database, nats-server): requalifying a ticket, no silent take-over, queues by urgency,
closing with the hours, and an email ticket timed from when our listener accepted it."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import update
from temporalio.client import Client

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import directory_pb2_grpc as dgrpc
from helpdesk.v1 import tickets_pb2 as tpb
from helpdesk.v1 import tickets_pb2_grpc as tgrpc
from services.common import db
from services.common.access import Principal, Role
from services.common.auth import bearer_metadata
from services.common.grpc_server import ServiceServer
from services.common.settings import Settings, async_database_url
from services.common.tokens import TokenSigner
from services.intake.app import MIGRATIONS as INTAKE_MIGRATIONS
from services.intake.app import VERSION_TABLE as INTAKE_VERSION_TABLE
from services.intake.mail_processor import MailProcessor
from services.intake.models import InboundMessage
from services.intake.smtp import store_message
from services.tickets import models as m
from services.tickets.directory import DirectoryServicer
from services.tickets.servicer import TicketServicer
from tests.support import SIGNING_KEY, TicketsStack, eventually, ticket_events, tickets_stack

pytestmark = [pytest.mark.db]

ADMIN = "desk-admin-token"
SERVICE = "desk-service-token"
MD = bearer_metadata(ADMIN)
SERVICE_MD = bearer_metadata(SERVICE)
SIGNER = TokenSigner(SIGNING_KEY)
ROME = ZoneInfo("Europe/Rome")


@dataclass
class Desk:
    tickets: tgrpc.TicketServiceStub
    stack: TicketsStack
    address: str
    nats_url: str
    lead_id: int
    other_id: int  # a second agent, "Bruno Secondo"

    def agent(self, agent_id: int, role: Role = Role.AGENT) -> tuple[tuple[str, str], ...]:
        return bearer_metadata(SIGNER.access_token(Principal(role=role, kind="AGENT", id=agent_id)))

    def customer(self) -> tuple[tuple[str, str], ...]:
        who = Principal(
            role=Role.USER,
            kind="CONTACT",
            id=self.stack.contact_id,
            organization_id=self.stack.org_id,
        )
        return bearer_metadata(SIGNER.access_token(who))

    async def create(self, subject: str, **fields: object) -> pb.Ticket:
        request = tpb.CreateTicketRequest(
            request_id=uuid.uuid4().hex,
            subject=subject,
            description="Dettagli",
            requester_id=self.stack.contact_id,
            **fields,  # type: ignore[arg-type]
        )
        return await self.tickets.CreateTicket(request, metadata=MD)

    async def history(self, ticket_id: int) -> list[pb.TicketEvent]:
        reply = await self.tickets.GetTicketHistory(
            tpb.GetTicketHistoryRequest(ticket_id=ticket_id), metadata=MD
        )
        return list(reply.events)


async def _opened(desk: Desk, ticket_id: int) -> bool:
    return any(e.type == "created" for e in await desk.history(ticket_id))


@pytest.fixture
async def desk(temporal_client: Client, database_url: str, nats_url: str) -> AsyncIterator[Desk]:
    settings = dataclasses.replace(
        Settings.from_env(), admin_token=ADMIN, service_token=SERVICE, signing_key=SIGNING_KEY
    )
    async with tickets_stack(temporal_client, database_url, nats_url) as stack:
        now = datetime.now(UTC)
        async with stack.sessions() as session:
            lead = m.Agent(
                name="Lia Capo",
                email="lia@desk.it",
                email_key=f"lia-{uuid.uuid4().hex}",
                role="TEAM_LEAD",
                created_at=now,
            )
            other = m.Agent(
                name="Bruno Secondo",
                email="bruno@desk.it",
                email_key=f"bruno-{uuid.uuid4().hex}",
                role="AGENT",
                created_at=now,
            )
            session.add_all([lead, other])
            await session.commit()
            ids = (lead.id, other.id)

        def register(server: grpc.aio.Server) -> None:
            tgrpc.add_TicketServiceServicer_to_server(
                TicketServicer(stack.sessions, temporal_client, stack.creator), server
            )
            dgrpc.add_DirectoryServiceServicer_to_server(
                DirectoryServicer(stack.sessions, stack.credentials), server
            )

        server = ServiceServer(settings, "127.0.0.1:0", ["helpdesk.v1.TicketService"], register)
        await server.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
        try:
            yield Desk(
                tgrpc.TicketServiceStub(channel),  # type: ignore[arg-type]
                stack,
                f"127.0.0.1:{server.port}",
                nats_url,
                *ids,
            )
        finally:
            await channel.close(None)
            await server.stop(1)


async def _code(call: object) -> tuple[grpc.StatusCode, str]:
    try:
        await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as err:
        return err.code(), err.details() or ""
    raise AssertionError("the call succeeded")


def _due(ticket: pb.Ticket, target: pb.SlaTarget.ValueType) -> datetime:
    clock = next(c for c in ticket.sla if c.target == target)
    return clock.due_at.ToDatetime(tzinfo=UTC)


async def test_requalify_moves_the_priority_and_reaches_the_report(desk: Desk) -> None:
    """An email ticket starts NON_BLOCKING; requalified BLOCKING (and HARDWARE, L2, with
    its product) it becomes HIGH with earlier due instants, the history says why, the
    report counts it BLOCKING; the same values again change nothing."""
    agent = desk.agent(desk.stack.agent_id)
    ticket = await desk.create("Stampante ferma al piano", channel=pb.CHANNEL_EMAIL)
    assert ticket.criticality == pb.CRITICALITY_NON_BLOCKING  # every channel starts qualified
    assert ticket.priority == pb.PRIORITY_NORMAL
    before = _due(ticket, pb.SLA_TARGET_FIRST_FEEDBACK)
    requalify = tpb.RequalifyTicketRequest(
        ticket_id=ticket.id,
        request_id="rq-1",
        criticality=pb.CRITICALITY_BLOCKING,
        kind=pb.TICKET_KIND_HARDWARE,
        product="Stampante HP 400",
        os="Windows 11",
        level=pb.SUPPORT_LEVEL_L2,
        reason="il reparto è fermo",
    )
    done = await desk.tickets.RequalifyTicket(requalify, metadata=agent)
    assert done.criticality == pb.CRITICALITY_BLOCKING
    assert done.kind == pb.TICKET_KIND_HARDWARE
    assert (done.product, done.os, done.version) == ("Stampante HP 400", "Windows 11", "")
    assert done.level == pb.SUPPORT_LEVEL_L2
    assert done.priority == pb.PRIORITY_HIGH
    assert _due(done, pb.SLA_TARGET_FIRST_FEEDBACK) < before  # HIGH's shorter target
    events = await desk.history(ticket.id)
    types = [e.type for e in events]
    assert types.count("requalified") == 1 and types.count("priority_changed") == 1
    said = next(e for e in events if e.type == "requalified").detail
    assert "criticality NON_BLOCKING -> BLOCKING" in said and "il reparto è fermo" in said
    assert "NORMAL -> HIGH" in next(e for e in events if e.type == "priority_changed").detail

    # A retry of the same request, then the same values under a new key: nothing new.
    await desk.tickets.RequalifyTicket(requalify, metadata=agent)
    requalify.request_id = "rq-2"
    again = await desk.tickets.RequalifyTicket(requalify, metadata=agent)
    assert again.priority == pb.PRIORITY_HIGH
    assert len(await desk.history(ticket.id)) == len(events)

    # Bad input, unknown IDs and customers change nothing.
    code, details = await _code(
        desk.tickets.RequalifyTicket(
            tpb.RequalifyTicketRequest(ticket_id=ticket.id, kind=pb.TICKET_KIND_BUG), metadata=agent
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "reason" in details
    code, _ = await _code(
        desk.tickets.RequalifyTicket(
            tpb.RequalifyTicketRequest(ticket_id=999_999, reason="x"), metadata=agent
        )
    )
    assert code == grpc.StatusCode.NOT_FOUND
    code, _ = await _code(
        desk.tickets.RequalifyTicket(
            tpb.RequalifyTicketRequest(
                ticket_id=ticket.id, criticality=pb.CRITICALITY_CRITICAL, reason="subito"
            ),
            metadata=desk.customer(),
        )
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert len(await desk.history(ticket.id)) == len(events)

    period_start, period_end = Timestamp(), Timestamp()
    period_start.FromDatetime(datetime.now(UTC) - timedelta(hours=1))
    period_end.FromDatetime(datetime.now(UTC) + timedelta(hours=1))
    report = await desk.tickets.GetReport(
        tpb.GetReportRequest(
            organization_id=desk.stack.org_id, period_start=period_start, period_end=period_end
        ),
        metadata=MD,
    )
    counts = {c.key: c.count for c in report.by_criticality}
    assert counts.get("BLOCKING") == 1 and counts.get("NON_BLOCKING", 0) == 0


async def test_no_silent_take_over(desk: Desk) -> None:
    """A ticket Anna holds: Bruno is refused, naming her; he takes it over with a reason
    (recorded, and the event names Anna for her notification); a team lead reassigns."""
    anna, bruno = desk.stack.agent_id, desk.other_id
    ticket = await desk.create("Gestionale lento", channel=pb.CHANNEL_PORTAL)
    await desk.tickets.AssignTicket(
        tpb.AssignTicketRequest(ticket_id=ticket.id, assignee_id=anna), metadata=desk.agent(anna)
    )
    code, details = await _code(
        desk.tickets.AssignTicket(
            tpb.AssignTicketRequest(ticket_id=ticket.id, assignee_id=bruno),
            metadata=desk.agent(bruno),
        )
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "Anna Agente" in details
    code, details = await _code(
        desk.tickets.AssignTicket(
            tpb.AssignTicketRequest(ticket_id=ticket.id, assignee_id=bruno, take_over=True),
            metadata=desk.agent(bruno),
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "reason" in details
    held = await desk.tickets.GetTicket(tpb.GetTicketRequest(id=ticket.id), metadata=MD)
    assert held.assignee_id == anna

    taken = await desk.tickets.AssignTicket(
        tpb.AssignTicketRequest(
            ticket_id=ticket.id, assignee_id=bruno, take_over=True, reason="Anna è in ferie"
        ),
        metadata=desk.agent(bruno),
    )
    assert taken.assignee_id == bruno
    said = [e.detail for e in await desk.history(ticket.id) if e.type == "assigned"]
    assert (
        said[-1] == f"assigned to agent #{bruno} (taken over from agent #{anna}: Anna è in ferie)"
    )

    async def told() -> dict[str, object] | None:
        events = await ticket_events(desk.nats_url, ticket.id, timeout=2)
        found = [
            e for e in events if e["type"] == "assigned" and e["ticket"].get("previous_assignee_id")
        ]
        return found[-1]["ticket"] if found else None

    payload = await eventually(told)
    assert payload["previous_assignee_id"] == anna
    assert payload["previous_assignee"]["email"].startswith("anna.")  # type: ignore[index]
    assert payload["assignment_reason"] == "Anna è in ferie"

    back = await desk.tickets.AssignTicket(
        tpb.AssignTicketRequest(ticket_id=ticket.id, assignee_id=anna),
        metadata=desk.agent(desk.lead_id, Role.TEAM_LEAD),
    )
    assert back.assignee_id == anna


async def test_queues_by_urgency_with_filters_and_stable_pages(desk: Desk) -> None:
    """The desk's default order is the nearest due first, each ticket saying which target
    is due; priority order, the filters, and pages of one that add up to the whole list."""
    agent = desk.agent(desk.stack.agent_id)
    low = await desk.create(
        "Richiesta listino", priority=pb.PRIORITY_LOW, kind=pb.TICKET_KIND_QUOTE
    )
    urgent = await desk.create(
        "Server bloccato", criticality=pb.CRITICALITY_CRITICAL, kind=pb.TICKET_KIND_INCIDENT
    )
    normal = await desk.create("Stampa lenta", kind=pb.TICKET_KIND_INCIDENT)
    high = await desk.create("Stampa ferma", criticality=pb.CRITICALITY_BLOCKING)
    # Each workflow records its ticket's opening in its own time: only a change made after
    # the four openings is "the last one changed".
    for ticket in (low, urgent, normal, high):
        await eventually(lambda t=ticket: _opened(desk, t.id), timeout=30)
    await desk.tickets.AssignTicket(
        tpb.AssignTicketRequest(ticket_id=low.id, assignee_id=desk.stack.agent_id), metadata=agent
    )

    async def listed(**fields: object) -> list[pb.Ticket]:
        reply = await desk.tickets.ListTickets(tpb.ListTicketsRequest(**fields), metadata=agent)  # type: ignore[arg-type]
        return list(reply.tickets)

    queue = await listed()
    assert [t.id for t in queue] == [urgent.id, high.id, normal.id, low.id]
    dues = [t.next_due_at.ToDatetime(tzinfo=UTC) for t in queue]
    assert dues == sorted(dues)
    first = queue[0]
    assert first.next_due_target == pb.SLA_TARGET_TAKEN_IN_CHARGE
    assert first.next_due_at == next(
        c.due_at for c in first.sla if c.target == first.next_due_target
    )
    # Taken in charge: the assigned ticket's next target is its first feedback.
    assert queue[3].next_due_target == pb.SLA_TARGET_FIRST_FEEDBACK

    by_priority = await listed(order_by=tpb.TICKET_ORDER_PRIORITY)
    assert [t.id for t in by_priority] == [urgent.id, high.id, normal.id, low.id]
    by_id = await listed(order_by=tpb.TICKET_ORDER_ID)
    assert [t.id for t in by_id] == [high.id, normal.id, urgent.id, low.id]
    by_update = await listed(order_by=tpb.TICKET_ORDER_UPDATED)
    assert by_update[0].id == low.id  # the last one changed (assigned)

    assert [t.id for t in await listed(unassigned_only=True)] == [urgent.id, high.id, normal.id]
    assert [t.id for t in await listed(subject_contains="STAMPA")] == [high.id, normal.id]
    assert [t.id for t in await listed(kinds=[pb.TICKET_KIND_INCIDENT])] == [urgent.id, normal.id]
    assert await listed(levels=[pb.SUPPORT_LEVEL_L2]) == []
    assert await listed(breached_only=True) == []
    # The queues' counts, in one call: what each list would hold.
    views = [
        tpb.ListTicketsRequest(),
        tpb.ListTicketsRequest(unassigned_only=True),
        tpb.ListTicketsRequest(subject_contains="STAMPA"),
        tpb.ListTicketsRequest(assignee_id=desk.stack.agent_id),
        tpb.ListTicketsRequest(levels=[pb.SUPPORT_LEVEL_L2]),
    ]
    counted = await desk.tickets.CountTickets(
        tpb.CountTicketsRequest(queries=views), metadata=agent
    )
    assert list(counted.counts) == [4, 3, 2, 1, 0]
    code, _ = await _code(
        desk.tickets.CountTickets(
            tpb.CountTicketsRequest(queries=[tpb.ListTicketsRequest()] * 21), metadata=agent
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    # Due within the minutes up to the urgent ticket's due: that one only.
    minutes = int((dues[0] - datetime.now(UTC)).total_seconds() // 60) + 1
    assert [t.id for t in await listed(due_within_minutes=minutes)] == [urgent.id]

    # Pages of one add up to the list, in its order; a token is its order's own.
    seen: list[int] = []
    token = ""
    while True:
        reply = await desk.tickets.ListTickets(
            tpb.ListTicketsRequest(page_size=1, page_token=token), metadata=agent
        )
        seen.extend(t.id for t in reply.tickets)
        token = reply.next_page_token
        if not token:
            break
        if len(seen) == 1:
            code, details = await _code(
                desk.tickets.ListTickets(
                    tpb.ListTicketsRequest(
                        page_size=1, page_token=token, order_by=tpb.TICKET_ORDER_PRIORITY
                    ),
                    metadata=agent,
                )
            )
            assert code == grpc.StatusCode.INVALID_ARGUMENT and "page_token" in details
    assert seen == [urgent.id, high.id, normal.id, low.id]

    # Customers keep their newest tickets first.
    mine = await desk.tickets.ListTickets(tpb.ListTicketsRequest(), metadata=desk.customer())
    assert [t.id for t in mine.tickets] == [high.id, normal.id, urgent.id, low.id]


async def test_closing_needs_hours_at_every_level_and_the_report_sums_them(desk: Desk) -> None:
    """A first-level close without hours is refused saying so; with hours it closes; the
    report sums them per agent and per organisation."""
    agent_id = desk.stack.agent_id
    agent = desk.agent(agent_id)
    actor = tpb.Actor(kind=pb.AUTHOR_KIND_AGENT, id=agent_id)
    one = await desk.create("Password dimenticata")
    two = await desk.create("Configurare la posta")
    for t in (one, two):
        await desk.tickets.AssignTicket(
            tpb.AssignTicketRequest(ticket_id=t.id, assignee_id=agent_id), metadata=agent
        )
    close = tpb.ChangeStatusRequest(ticket_id=one.id, status=pb.TICKET_STATUS_CLOSED, actor=actor)
    code, details = await _code(desk.tickets.ChangeStatus(close, metadata=agent))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "hours" in details
    still = await desk.tickets.GetTicket(tpb.GetTicketRequest(id=one.id), metadata=MD)
    assert still.status == pb.TICKET_STATUS_OPEN and still.level == pb.SUPPORT_LEVEL_L1

    close.hours_spent = 1.25
    close.request_id = "close-1"
    closed = await desk.tickets.ChangeStatus(close, metadata=agent)
    assert closed.status == pb.TICKET_STATUS_CLOSED and closed.hours_spent == 1.25
    assert (
        "1.25 h spent" in next(e for e in await desk.history(one.id) if e.type == "closed").detail
    )

    # Logged before: the close needs no more.
    await desk.tickets.LogTime(
        tpb.LogTimeRequest(ticket_id=two.id, request_id="lt-1", hours=0.5, actor=actor),
        metadata=agent,
    )
    done = await desk.tickets.ChangeStatus(
        tpb.ChangeStatusRequest(ticket_id=two.id, status=pb.TICKET_STATUS_CLOSED, actor=actor),
        metadata=agent,
    )
    assert done.status == pb.TICKET_STATUS_CLOSED and done.hours_spent == 0.5

    period_start, period_end = Timestamp(), Timestamp()
    period_start.FromDatetime(datetime.now(UTC) - timedelta(hours=1))
    period_end.FromDatetime(datetime.now(UTC) + timedelta(hours=1))
    report = await desk.tickets.GetReport(
        tpb.GetReportRequest(period_start=period_start, period_end=period_end), metadata=MD
    )
    assert report.hours_spent == pytest.approx(1.75)
    assert [(h.id, h.name, h.hours) for h in report.hours_by_agent] == [
        (agent_id, "Anna Agente", 1.75)
    ]
    assert [(h.id, h.hours) for h in report.hours_by_organization] == [(desk.stack.org_id, 1.75)]


async def test_first_read_shows_business_due_instants(desk: Desk) -> None:
    """A ticket that arrived on a Saturday morning (as intake says) is due on Monday's
    business hours from its very first read, the same instants its workflow keeps; only
    the help desk's services may say when a request arrived."""
    saturday = datetime(2026, 11, 28, 10, 0, tzinfo=ROME)
    arrived = Timestamp()
    arrived.FromDatetime(saturday)
    request = tpb.CreateTicketRequest(
        request_id=uuid.uuid4().hex,
        subject="Fattura elettronica rifiutata",
        requester_id=desk.stack.contact_id,
        channel=pb.CHANNEL_EMAIL,
        received_at=arrived,
    )
    first = await desk.tickets.CreateTicket(request, metadata=SERVICE_MD)
    monday_1230 = datetime(2026, 11, 30, 12, 30, tzinfo=ROME).astimezone(UTC)
    assert first.milestones.received_at.ToDatetime(tzinfo=UTC) == saturday.astimezone(UTC)
    assert _due(first, pb.SLA_TARGET_TAKEN_IN_CHARGE) == monday_1230  # 240 business minutes
    assert first.next_due_at.ToDatetime(tzinfo=UTC) == monday_1230

    async def recorded() -> pb.Ticket | None:
        t = await desk.tickets.GetTicket(tpb.GetTicketRequest(id=first.id), metadata=MD)
        return t if any(e.type == "created" for e in await desk.history(first.id)) else None

    later = await eventually(recorded)
    assert [(c.target, c.due_at) for c in later.sla] == [(c.target, c.due_at) for c in first.sla]

    request.request_id = uuid.uuid4().hex
    code, details = await _code(
        desk.tickets.CreateTicket(request, metadata=desk.agent(desk.stack.agent_id))
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED and "received_at" in details


async def test_an_email_ticket_counts_from_when_the_listener_accepted_it(
    desk: Desk, database_url: str
) -> None:
    """A mail accepted an hour ago and processed now: the ticket arrived an hour ago. A
    plain subject is NON_BLOCKING, a critical word in it CRITICAL."""
    url = async_database_url(database_url)
    await db.upgrade(INTAKE_MIGRATIONS, url, INTAKE_VERSION_TABLE)
    engine = db.make_engine(url)
    intake = db.make_sessionmaker(engine)
    channel = grpc.aio.insecure_channel(desk.address)
    processor = MailProcessor(
        intake,
        tgrpc.TicketServiceStub(channel),  # type: ignore[arg-type]
        dgrpc.DirectoryServiceStub(channel),  # type: ignore[arg-type]
        SERVICE,
        asyncio.Event(),
        "helpdesk.localhost",
        our_addresses={"assistenza@helpdesk.localhost"},
        critical_keywords=("bloccato",),
    )
    async with desk.stack.sessions() as session:
        contact = await session.get(m.Contact, desk.stack.contact_id)
        assert contact is not None
        contact.email_key = contact.email.lower()
        sender = contact.email
        await session.commit()
    try:
        accepted = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
        made = {}
        for subject in ("Domanda sul gestionale", "Magazzino bloccato"):
            msg = EmailMessage()
            msg["From"], msg["To"], msg["Subject"] = (
                sender,
                "assistenza@helpdesk.localhost",
                subject,
            )
            msg["Message-ID"] = f"<{uuid.uuid4().hex}@rossi.it>"
            msg.set_content("Buongiorno, ...")
            stored, _ = await store_message(
                intake, msg.as_bytes(), sender, ["assistenza@helpdesk.localhost"]
            )
            async with intake() as session:  # a backlog: accepted an hour before its turn
                await session.execute(
                    update(InboundMessage)
                    .where(InboundMessage.id == stored)
                    .values(received_at=accepted)
                )
                await session.commit()
            assert await processor.process(stored)
            async with intake() as session:
                row = await session.get(InboundMessage, stored)
                assert row is not None and row.ticket_id
                made[subject] = row.ticket_id
        plain = await desk.tickets.GetTicket(
            tpb.GetTicketRequest(id=made["Domanda sul gestionale"]), metadata=MD
        )
        assert plain.milestones.received_at.ToDatetime(tzinfo=UTC) == accepted
        assert plain.criticality == pb.CRITICALITY_NON_BLOCKING
        assert plain.priority == pb.PRIORITY_NORMAL
        critical = await desk.tickets.GetTicket(
            tpb.GetTicketRequest(id=made["Magazzino bloccato"]), metadata=MD
        )
        assert critical.criticality == pb.CRITICALITY_CRITICAL
        assert critical.priority == pb.PRIORITY_URGENT
    finally:
        await processor.close()
        await channel.close(None)
        await engine.dispose()
