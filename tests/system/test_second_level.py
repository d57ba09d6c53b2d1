"""Second level through the real system (seed 002): a support ticket escalated to the
developers' service, fixed and shipped; the customer's update email arrives; the agent
verifies, logs the hours and closes. Every service as a process, the Temporal dev server,
nats-server, an SMTP relay, on SQLite or PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import Client

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import dev_escalation_pb2 as epb
from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import tickets_pb2 as tpb
from services.common.embedded import EmbeddedProcess
from tests.support import eventually
from tests.system.conftest import CORE, agent_actor, mail_arrives, running_system, setup_directory
from tests.system.harness import Mailbox, System
from workflows.prog_contracts import progticket_workflow_id

pytestmark = [pytest.mark.system, pytest.mark.db]


@pytest.fixture
async def full_system(
    tmp_path: Path,
    temporal_dev_server: EmbeddedProcess,
    temporal_client: Client,
    nats_url: str,
    database_url: str,
) -> AsyncIterator[tuple[System, Mailbox]]:
    async with running_system(
        tmp_path, temporal_dev_server, nats_url, database_url, (*CORE, "dev_escalation")
    ) as running:
        yield running


async def test_escalate_fix_ship_verify_and_close_with_the_hours(
    full_system: tuple[System, Mailbox], temporal_client: Client
) -> None:
    sut, box = full_system
    md = sut.metadata
    _, contact, agent = await setup_directory(sut, pb.CLOSED_TICKET_POLICY_FOLLOW_UP)
    developer = await sut.directory().CreateAgent(
        dpb.CreateAgentRequest(
            name="Dario Sviluppo",
            email=f"dario.{uuid.uuid4().hex[:6]}@desk.it",
            role=pb.AGENT_ROLE_DEVELOPER,
            on_call=True,
        ),
        metadata=md,
    )
    tickets, dev = sut.tickets(), sut.dev()
    ticket = await tickets.CreateTicket(
        tpb.CreateTicketRequest(
            request_id=uuid.uuid4().hex,
            subject="La stampa della fattura si blocca",
            description="Errore 1234 stampando con il logo",
            requester_id=contact.id,
            channel=pb.CHANNEL_EMAIL,
        ),
        metadata=md,
    )
    await tickets.AssignTicket(
        tpb.AssignTicketRequest(ticket_id=ticket.id, assignee_id=agent.id), metadata=md
    )
    escalation = tpb.EscalateToDevelopmentRequest(
        ticket_id=ticket.id,
        request_id=uuid.uuid4().hex,
        title="InvoicePrinter crash with a logo",
        technical_description="NullPointerException in InvoicePrinter.render",
        urgency=epb.PROG_URGENCY_HIGH,
        actor=agent_actor(agent),
    )
    escalated = await tickets.EscalateToDevelopment(escalation, metadata=md)
    again = await tickets.EscalateToDevelopment(escalation, metadata=md)  # a retry
    prog_id = escalated.programming_ticket.id
    assert again.programming_ticket.id == prog_id
    assert escalated.ticket.status == pb.TICKET_STATUS_ON_HOLD
    assert escalated.ticket.level == pb.SUPPORT_LEVEL_L2

    # A crash of the developers' service loses nothing.
    sut.kill("dev_escalation")
    sut.start("dev_escalation")
    await sut.wait_serving("dev_escalation")

    # The Temporal UI shows the programming ticket under its support ticket.
    child = await temporal_client.get_workflow_handle(progticket_workflow_id(prog_id)).describe()
    assert child.parent_id == f"ticket-{ticket.id}"

    # The developers' queue shows it; the on-call developer takes it, fixes and ships.
    queue = await dev.ListProgrammingTickets(
        epb.ListProgrammingTicketsRequest(urgencies=[epb.PROG_URGENCY_HIGH]), metadata=md
    )
    assert prog_id in [p.id for p in queue.tickets]
    await dev.StartWork(epb.StartWorkRequest(id=prog_id, developer_id=developer.id), metadata=md)
    await dev.MarkFixed(
        epb.MarkFixedRequest(id=prog_id, fix_version="5.2.1", developer_id=developer.id),
        metadata=md,
    )
    shipped = await dev.ShipUpdate(
        epb.ShipUpdateRequest(
            id=prog_id,
            release_notes="Ora la fattura si stampa anche con il logo aziendale.",
            developer_id=developer.id,
        ),
        metadata=md,
    )
    assert shipped.status == epb.PROG_STATUS_RELEASED

    # The customer's update email arrives; the ticket awaits verification.
    await mail_arrives(box, ticket.id, "con il logo aziendale")

    async def awaiting() -> pb.Ticket | None:
        t = await tickets.GetTicket(tpb.GetTicketRequest(id=ticket.id), metadata=md)
        return t if t.awaiting_verification and t.status == pb.TICKET_STATUS_OPEN else None

    await eventually(awaiting, timeout=30)

    # The agent verifies with the customer, records the hours, closes.
    await tickets.LogTime(
        tpb.LogTimeRequest(
            ticket_id=ticket.id,
            request_id=uuid.uuid4().hex,
            hours=1.5,
            note="verifica con il cliente",
            actor=agent_actor(agent),
        ),
        metadata=md,
    )
    closed = await tickets.ChangeStatus(
        tpb.ChangeStatusRequest(
            ticket_id=ticket.id, status=pb.TICKET_STATUS_CLOSED, actor=agent_actor(agent)
        ),
        metadata=md,
    )
    assert closed.status == pb.TICKET_STATUS_CLOSED
    assert closed.hours_spent == pytest.approx(1.5)
    assert [(p.id, p.status) for p in closed.programming_tickets] == [(prog_id, "RELEASED")]

    # The on-call developer was told once, and the customer's update came once.
    told = [
        m
        for m in box.messages
        if developer.email in str(m["To"]) and f"P-{prog_id}" in str(m["Subject"])
    ]
    assert len(told) == 1
    updates = [
        m
        for m in box.about(ticket.id)
        if "con il logo aziendale" in m.get_body(("plain",)).get_content()
    ]
    assert len(updates) == 1
