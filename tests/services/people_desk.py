"""The desk of the followers' and the answers' files tests: the tickets service in-process
(its workflow on the Temporal dev server, a real database), notify on nats-server mailing
the loopback SMTP relay, and intake's mail processor (``desk``, a fixture: a test module
takes it as ``desk = people_desk.desk``)."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
from nats.js.api import DeliverPolicy
from sqlalchemy import select
from temporalio.client import Client

from helpdesk.v1 import directory_pb2_grpc as dgrpc
from helpdesk.v1 import notify_pb2_grpc
from helpdesk.v1 import tickets_pb2 as tpb
from helpdesk.v1 import tickets_pb2_grpc as tgrpc
from services.common import db
from services.common.access import Principal, Role
from services.common.auth import bearer_metadata
from services.common.events import EventPublisher
from services.common.grpc_server import ServiceServer
from services.common.settings import Settings, async_database_url
from services.common.tokens import TokenSigner
from services.intake.app import MIGRATIONS as INTAKE_MIGRATIONS
from services.intake.app import VERSION_TABLE as INTAKE_VERSION_TABLE
from services.intake.mail_processor import MailProcessor
from services.notify.app import NotifyApp
from services.notify.notifier import RetryPolicy
from services.tickets import models as m
from services.tickets.directory import DirectoryServicer
from services.tickets.servicer import TicketServicer
from tests.services.notify_fixtures import CollectingHandler, Received, Relay, make_settings
from tests.support import SIGNING_KEY, TicketsStack, tickets_stack

ADMIN = "people-admin-token"
SERVICE = "people-service-token"
SUPPORT = "assistenza@helpdesk.localhost"
SIGNER = TokenSigner(SIGNING_KEY)
# An answer's files are mailed up to this much together (small, to test the limit cheaply).
MAIL_FILES_LIMIT = 256 * 1024


@dataclass
class Desk:
    stack: TicketsStack
    tickets: tgrpc.TicketServiceStub
    notify: notify_pb2_grpc.NotifyServiceStub
    mail: CollectingHandler
    processor: MailProcessor
    intake: Any  # intake's session factory
    agent: Any  # an agent's bearer metadata
    mario: str  # the requester of the stack's tickets
    luisa: str  # a colleague at the same organisation
    piero: str  # another colleague
    stranger: str  # a contact of another organisation

    def to(self, address: str, template: str = "") -> list[Received]:
        """The emails ``address`` received (of ``template``, read from the Message-ID)."""
        return [
            r
            for r in self.mail.received
            if address in r.rcpt_tos
            and (not template or str(r.message["Message-ID"]).startswith(f"<notify.{template}."))
        ]

    async def contact_id(self, email: str) -> int:
        async with self.stack.sessions() as session:
            found = await session.scalar(select(m.Contact.id).where(m.Contact.email_key == email))
            assert found is not None
            return int(found)


async def _contact(stack: TicketsStack, org_id: int, name: str, email: str) -> str:
    async with stack.sessions() as session:
        session.add(
            m.Contact(
                organization_id=org_id,
                name=name,
                email=email,
                email_key=email.lower(),
                role="USER",
                locale="it",
                created_at=datetime.now(UTC),
            )
        )
        await session.commit()
    return email


@pytest.fixture
async def desk(
    tmp_path: Path,
    temporal_client: Client,
    database_url: str,
    nats_url: str,
    relay: Relay,
) -> AsyncIterator[Desk]:
    """Tickets and directory over gRPC, notify mailing the loopback ``relay``
    (``tests/services/conftest.py``), intake's mail processor; Mario's colleagues."""
    settings = dataclasses.replace(
        Settings.from_env(),
        admin_token=ADMIN,
        service_token=SERVICE,
        signing_key=SIGNING_KEY,
        nats_url=nats_url,
    )
    publisher = EventPublisher(nats_url, "test-people")
    async with tickets_stack(temporal_client, database_url, nats_url) as stack:

        def register(server: grpc.aio.Server) -> None:
            tgrpc.add_TicketServiceServicer_to_server(
                TicketServicer(stack.sessions, temporal_client, stack.creator, SIGNER, publisher),
                server,
            )
            dgrpc.add_DirectoryServiceServicer_to_server(
                DirectoryServicer(stack.sessions, stack.credentials), server
            )

        server = ServiceServer(settings, "127.0.0.1:0", [], register)
        await server.start()
        # Notify downloads answers' files from this tickets service (the service token).
        notify_settings = dataclasses.replace(
            make_settings(
                tmp_path / "notify",
                database_url if database_url.startswith("postgres") else "",
                nats_url,
                relay.address,
            ),
            admin_token=ADMIN,
            service_token=SERVICE,
            signing_key=SIGNING_KEY,
            tickets_addr=f"127.0.0.1:{server.port}",
            mail_max_attachment_bytes=MAIL_FILES_LIMIT,
        )
        notify = NotifyApp(
            notify_settings,
            durable=f"notify-people-{uuid.uuid4().hex[:8]}",
            deliver_policy=DeliverPolicy.NEW,
            retry=RetryPolicy(base_delay=0.1, max_delay=0.5),
        )
        await notify.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
        notify_channel = grpc.aio.insecure_channel(f"127.0.0.1:{notify.port}")
        intake_url = async_database_url(
            database_url if database_url.startswith("postgres") else f"sqlite:///{tmp_path}/in.db"
        )
        await db.upgrade(INTAKE_MIGRATIONS, intake_url, INTAKE_VERSION_TABLE)
        engine = db.make_engine(intake_url)
        intake = db.make_sessionmaker(engine)
        processor = MailProcessor(
            intake,
            tgrpc.TicketServiceStub(channel),  # type: ignore[arg-type]
            dgrpc.DirectoryServiceStub(channel),  # type: ignore[arg-type]
            SERVICE,
            asyncio.Event(),
            "helpdesk.localhost",
            our_addresses={SUPPORT},
        )
        async with stack.sessions() as session:
            mario = await session.get(m.Contact, stack.contact_id)
            assert mario is not None
            mario.email_key = mario.email.lower()  # found by its address, as in life
            other = m.Organization(
                name="Altra Spa",
                name_key=uuid.uuid4().hex,
                email_domains=["altra.it"],
                closed_ticket_policy="FOLLOW_UP",
                locale="it",
                created_at=datetime.now(UTC),
            )
            session.add(other)
            await session.commit()
            mario_email, other_id = mario.email.lower(), other.id
        agent = Principal(role=Role.AGENT, kind="AGENT", id=stack.agent_id, name="Anna")
        try:
            yield Desk(
                stack,
                tgrpc.TicketServiceStub(channel),
                notify_pb2_grpc.NotifyServiceStub(notify_channel),
                relay.handler,
                processor,
                intake,
                bearer_metadata(SIGNER.access_token(agent)),
                mario_email,
                await _contact(stack, stack.org_id, "Luisa Bianchi", "luisa@rossi.it"),
                await _contact(stack, stack.org_id, "Piero Verdi", "piero@rossi.it"),
                await _contact(stack, other_id, "Esterno Neri", "esterno@altra.it"),
            )
        finally:
            await processor.close()
            await engine.dispose()
            await channel.close(None)
            await notify_channel.close(None)
            await notify.stop()
            await server.stop(1)
    await publisher.close()


async def taken(desk: Desk, subject: str) -> int:
    """A new ticket of the stack's requester, assigned to the stack's agent."""
    ticket_id = await desk.stack.new_ticket(subject)
    await desk.tickets.AssignTicket(
        tpb.AssignTicketRequest(ticket_id=ticket_id, assignee_id=desk.stack.agent_id),
        metadata=desk.agent,
    )
    return ticket_id
