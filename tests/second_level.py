"""An in-process second level for tests: the tickets stack, TicketService, DirectoryService
and DevEscalationService on one real gRPC server, and the dev_escalation activities on
their own task queue, all against ``client``'s Temporal server."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import grpc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.worker import Worker

from helpdesk.v1 import dev_escalation_pb2_grpc as egrpc
from helpdesk.v1 import directory_pb2_grpc as dgrpc
from helpdesk.v1 import tickets_pb2 as tpb
from helpdesk.v1 import tickets_pb2_grpc as tgrpc
from services.common import db
from services.common.auth import bearer_metadata
from services.common.events import EventPublisher
from services.common.grpc_server import ServiceServer
from services.common.settings import Settings, async_database_url
from services.dev_escalation.activities import ProgActivities
from services.dev_escalation.app import MIGRATIONS, VERSION_TABLE
from services.dev_escalation.directory import Directory
from services.dev_escalation.servicer import DevEscalationServicer
from services.tickets import models as m
from services.tickets.directory import DirectoryServicer
from services.tickets.servicer import TicketServicer
from tests.support import SIGNING_KEY, TicketsStack, stream_events, tickets_stack
from workflows.prog_contracts import DEV_ESCALATION_TASK_QUEUE

ADMIN = "test-admin-token"
SERVICE = "test-service-token"
MD = bearer_metadata(ADMIN)


@dataclass
class SecondLevel:
    stack: TicketsStack
    tickets: tgrpc.TicketServiceStub
    directory: dgrpc.DirectoryServiceStub
    dev: egrpc.DevEscalationServiceStub
    on_call_id: int  # a developer on call
    lead_id: int  # the development lead
    referent_id: int  # the organisation's referent

    def agent(self) -> tpb.Actor:
        return tpb.Actor(kind=2, id=self.stack.agent_id)  # AUTHOR_KIND_AGENT


async def _people(sessions: async_sessionmaker[AsyncSession], org_id: int) -> tuple[int, ...]:
    now = datetime.now(UTC)
    tag = uuid.uuid4().hex[:6]
    async with sessions() as session:
        on_call = m.Agent(
            name="Dario Dev",
            email=f"dario.{tag}@desk.it",
            email_key=f"dario.{tag}@desk.it",
            role="DEVELOPER",
            on_call=True,
            created_at=now,
        )
        lead = m.Agent(
            name="Lea Lead",
            email=f"lea.{tag}@desk.it",
            email_key=f"lea.{tag}@desk.it",
            role="DEVELOPER",
            development_lead=True,
            created_at=now,
        )
        referent = m.Contact(
            organization_id=org_id,
            name="Rita Referente",
            email=f"rita.{tag}@rossi.it",
            email_key=f"rita.{tag}@rossi.it",
            role="REFERENT",
            locale="it",
            created_at=now,
        )
        session.add_all([on_call, lead, referent])
        await session.commit()
        return on_call.id, lead.id, referent.id


@asynccontextmanager
async def second_level(
    client: Client, database_url: str, nats_url: str, **stack_options: Any
) -> AsyncIterator[SecondLevel]:
    settings = dataclasses.replace(
        Settings.from_env(), admin_token=ADMIN, service_token=SERVICE, signing_key=SIGNING_KEY
    )
    url = async_database_url(database_url)
    await db.upgrade(MIGRATIONS, url, VERSION_TABLE)
    engine = db.make_engine(url)
    dev_sessions = db.make_sessionmaker(engine)
    publisher = EventPublisher(nats_url, "test-dev-escalation")
    async with tickets_stack(client, database_url, nats_url, **stack_options) as stack:
        people = await _people(stack.sessions, stack.org_id)

        def register(srv: grpc.aio.Server) -> None:
            tgrpc.add_TicketServiceServicer_to_server(
                TicketServicer(stack.sessions, client, stack.creator), srv
            )
            dgrpc.add_DirectoryServiceServicer_to_server(
                DirectoryServicer(stack.sessions, stack.credentials), srv
            )
            egrpc.add_DevEscalationServiceServicer_to_server(
                DevEscalationServicer(dev_sessions, client), srv
            )

        server = ServiceServer(settings, "127.0.0.1:0", [], register)
        await server.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
        directory = Directory(dgrpc.DirectoryServiceStub(channel), SERVICE)  # type: ignore[arg-type]
        activities = ProgActivities(dev_sessions, publisher, directory)
        try:
            async with Worker(
                client,
                task_queue=DEV_ESCALATION_TASK_QUEUE,
                activities=[
                    activities.register_programming_ticket,
                    activities.record_programming_ticket_change,
                ],
            ):
                yield SecondLevel(
                    stack,
                    tgrpc.TicketServiceStub(channel),  # type: ignore[arg-type]
                    dgrpc.DirectoryServiceStub(channel),  # type: ignore[arg-type]
                    egrpc.DevEscalationServiceStub(channel),  # type: ignore[arg-type]
                    *people,
                )
        finally:
            await channel.close(None)
            await server.stop(1)
    await publisher.close()
    await engine.dispose()


async def prog_events(nats_url: str, prog_id: int, timeout: float = 10) -> list[dict[str, Any]]:
    """Every ``helpdesk.progticket.*`` event of one programming ticket, in order."""
    return await stream_events(
        nats_url,
        "helpdesk.progticket.>",
        lambda e: e["programming_ticket_id"] == prog_id,
        timeout,
    )
