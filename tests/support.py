"""Helpers shared by tests: an in-process tickets stack on real servers, event readers."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.worker import Worker

from services.common import db
from services.common.events import EventPublisher, SecretPublisher, ensure_stream
from services.common.settings import async_database_url
from services.common.tokens import TokenSigner
from services.tickets import models as m
from services.tickets.activities import TicketActivities
from services.tickets.app import MIGRATIONS, VERSION_TABLE
from services.tickets.creation import NewTicket, TicketCreator
from services.tickets.credentials import Credentials
from workflows.contracts import TICKETS_TASK_QUEUE, WORKFLOW_TASK_QUEUE
from workflows.worker import WORKFLOWS

SIGNING_KEY = "test-signing-key-0123456789abcdef0123456789"


@dataclass
class TicketsStack:
    sessions: async_sessionmaker[AsyncSession]
    creator: TicketCreator
    client: Client
    credentials: Credentials
    org_id: int
    contact_id: int
    agent_id: int

    async def new_ticket(
        self, subject: str = "Stampa fattura non funziona", received_at: datetime | None = None
    ) -> int:
        row, _ = await self.creator.create(
            NewTicket(
                request_id=uuid.uuid4().hex,
                subject=subject,
                description="Errore 42",
                requester_id=self.contact_id,
                channel="PORTAL",
                priority="NORMAL",
                received_at=received_at,
            )
        )
        return row.id

    async def ticket(self, ticket_id: int) -> m.Ticket:
        async with self.sessions() as session:
            row = await session.get(m.Ticket, ticket_id)
            assert row is not None
            return row


@asynccontextmanager
async def tickets_stack(
    client: Client,
    database_url: str,
    nats_url: str,
    auto_close_after_seconds: int = 14 * 86400,
    max_history_events: int = 2000,
) -> AsyncIterator[TicketsStack]:
    """Migrated store with one organisation, contact and agent; the ticket workflow and the
    tickets activities running in this process against ``client``'s server."""
    url = async_database_url(database_url)
    await db.upgrade(MIGRATIONS, url, VERSION_TABLE)
    engine = db.make_engine(url)
    sessions = db.make_sessionmaker(engine)
    now = datetime.now(UTC)
    async with sessions() as session:
        org = m.Organization(
            name=f"Rossi Srl {uuid.uuid4().hex[:6]}",
            name_key=uuid.uuid4().hex,
            email_domains=["rossi.it"],
            closed_ticket_policy="FOLLOW_UP",
            locale="it",
            created_at=now,
        )
        session.add(org)
        await session.flush()
        contact = m.Contact(
            organization_id=org.id,
            name="Mario Rossi",
            email=f"mario.{uuid.uuid4().hex[:6]}@rossi.it",
            email_key=uuid.uuid4().hex,
            phone="",
            role="USER",
            locale="it",
            created_at=now,
        )
        agent = m.Agent(
            name="Anna Agente",
            email=f"anna.{uuid.uuid4().hex[:6]}@desk.it",
            email_key=uuid.uuid4().hex,
            role="AGENT",
            created_at=now,
        )
        session.add_all([contact, agent])
        await session.commit()
        ids = (org.id, contact.id, agent.id)
    publisher = EventPublisher(nats_url, "test-tickets")
    activities = TicketActivities(sessions, publisher)
    secrets_out = SecretPublisher(nats_url, "test-secrets")
    credentials = Credentials(sessions, TokenSigner(SIGNING_KEY), secrets_out)
    creator = TicketCreator(sessions, client, auto_close_after_seconds, max_history_events)
    async with (
        Worker(client, task_queue=WORKFLOW_TASK_QUEUE, workflows=WORKFLOWS),
        Worker(
            client,
            task_queue=TICKETS_TASK_QUEUE,
            activities=[
                activities.record_ticket_change,
                activities.report_organizations,
                activities.send_organization_report,
                activities.record_maintenance_change,
                activities.send_desk_digest,
                activities.record_quote_change,
            ],
        ),
    ):
        yield TicketsStack(sessions, creator, client, credentials, *ids)
    await publisher.close()
    await secrets_out.close()
    await engine.dispose()


@dataclass
class DevStack:
    """The dev_escalation store, its activities (on their task queue) and its servicer."""

    sessions: async_sessionmaker[AsyncSession]
    activities: Any  # services.dev_escalation.activities.ProgActivities
    servicer: Any  # services.dev_escalation.servicer.DevEscalationServicer


@asynccontextmanager
async def dev_escalation_stack(
    client: Client, database_url: str, nats_url: str, tickets_addr: str, service_token: str
) -> AsyncIterator[DevStack]:
    """Migrated dev_escalation store and its activity worker against ``client``'s server;
    the directory is asked over gRPC at ``tickets_addr`` with ``service_token``."""
    import grpc

    from helpdesk.v1 import directory_pb2_grpc
    from services.dev_escalation import app as dev_app
    from services.dev_escalation.activities import ProgActivities
    from services.dev_escalation.directory import Directory
    from services.dev_escalation.servicer import DevEscalationServicer
    from workflows.prog_contracts import DEV_ESCALATION_TASK_QUEUE

    url = async_database_url(database_url)
    await db.upgrade(dev_app.MIGRATIONS, url, dev_app.VERSION_TABLE)
    engine = db.make_engine(url)
    sessions = db.make_sessionmaker(engine)
    publisher = EventPublisher(nats_url, "test-dev-escalation")
    channel = grpc.aio.insecure_channel(tickets_addr)
    directory = Directory(
        directory_pb2_grpc.DirectoryServiceStub(channel),  # type: ignore[arg-type]
        service_token,
    )
    activities = ProgActivities(sessions, publisher, directory)
    async with Worker(
        client,
        task_queue=DEV_ESCALATION_TASK_QUEUE,
        activities=[
            activities.register_programming_ticket,
            activities.record_programming_ticket_change,
        ],
    ):
        yield DevStack(sessions, activities, DevEscalationServicer(sessions, client))
    await publisher.close()
    await channel.close(None)
    await engine.dispose()


async def stream_events(
    nats_url: str, subject: str, keep: Any = None, timeout: float = 10
) -> list[dict[str, Any]]:
    """Every event on ``subject`` now in the HELPDESK stream (those ``keep`` accepts), in order."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        await ensure_stream(js)
        sub = await js.subscribe(subject, ordered_consumer=True)
        found: list[dict[str, Any]] = []
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            try:
                msg = await sub.next_msg(timeout=0.5)
            except nats.errors.TimeoutError:
                break
            body = json.loads(msg.data)
            if keep is None or keep(body):
                found.append(body)
        await sub.unsubscribe()
        return found
    finally:
        await nc.close()


async def ticket_events(nats_url: str, ticket_id: int, timeout: float = 10) -> list[dict[str, Any]]:
    """Every event of one ticket now in the HELPDESK stream, in order."""
    return await stream_events(
        nats_url, "helpdesk.ticket.>", lambda e: e["ticket_id"] == ticket_id, timeout
    )


async def eventually(check: Any, timeout: float = 20, every: float = 0.2) -> Any:
    """Poll ``check`` (sync or async, returning truthy) until it holds or time runs out."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while True:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")
        await asyncio.sleep(every)


ROOT = Path(__file__).resolve().parent.parent
