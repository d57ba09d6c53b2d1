"""Intake hands its sales requests to the sales office (seed 003), with real parts:
IntakeService and the directory over gRPC, SalesService (the tickets process's) on a
port of its own that is down at first and comes up later, one migrated database,
nats-server for the events. A request stored while the sales office is away is handed
over by the sweep, once; a reply threaded to a request waits while it is away."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import grpc
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from helpdesk.v1 import directory_pb2_grpc as dgrpc
from helpdesk.v1 import intake_pb2 as ipb
from helpdesk.v1 import intake_pb2_grpc as igrpc
from helpdesk.v1 import sales_pb2 as spb
from helpdesk.v1 import sales_pb2_grpc as sgrpc
from helpdesk.v1 import tickets_pb2_grpc as tgrpc
from services.common import db
from services.common.auth import bearer_metadata
from services.common.embedded import free_port
from services.common.events import EventPublisher
from services.common.grpc_server import ServiceServer
from services.common.mail_threading import sales_thread_id
from services.common.settings import Settings, async_database_url
from services.common.tokens import TokenSigner
from services.intake.app import MIGRATIONS as INTAKE_MIGRATIONS
from services.intake.app import VERSION_TABLE as INTAKE_VERSION_TABLE
from services.intake.mail_processor import MailProcessor
from services.intake.models import InboundMessage, SalesRequest
from services.intake.sales_forward import SalesForwarder
from services.intake.servicer import IntakeServicer
from services.intake.smtp import store_message
from services.tickets import models as m
from services.tickets.app import MIGRATIONS as TICKETS_MIGRATIONS
from services.tickets.app import VERSION_TABLE as TICKETS_VERSION_TABLE
from services.tickets.credentials import Credentials
from services.tickets.directory import DirectoryServicer
from services.tickets.sales_events import SalesEventPublisher
from services.tickets.sales_rpc import SalesServicer
from tests.support import SIGNING_KEY, eventually

pytestmark = [pytest.mark.db, pytest.mark.timeout(120)]

ADMIN = "test-admin-token"
SERVICE = "test-service-token"
DOMAIN = "helpdesk.localhost"


@dataclass
class World:
    intake: igrpc.IntakeServiceStub
    sessions: async_sessionmaker[AsyncSession]
    forwarder: SalesForwarder
    processor: MailProcessor
    sales: sgrpc.SalesServiceStub  # the sales office's address, up or not
    settings: Settings
    nats_url: str
    sales_port: int
    contact_id: int
    servers: list[ServiceServer]

    async def sales_office_up(self) -> None:
        """SalesService comes up on its address (as the tickets process restarting)."""
        publisher = EventPublisher(self.nats_url, "test-sales-office")
        events = SalesEventPublisher(self.sessions, publisher)

        # The sales requests need no Temporal: a client that never connects.
        temporal = await Client.connect("127.0.0.1:1", lazy=True)

        def register(server: grpc.aio.Server) -> None:
            servicer = SalesServicer(self.sessions, events, temporal)
            sgrpc.add_SalesServiceServicer_to_server(servicer, server)

        server = ServiceServer(self.settings, f"127.0.0.1:{self.sales_port}", [], register)
        await server.start()
        self.servers.append(server)

    async def swept(self) -> int:
        """The sweep once the sales office answers again (the channel reconnects after
        its backoff, as it does for the process's own sweep)."""
        return int(await eventually(self.forwarder.sweep, timeout=20, every=0.3))

    async def office_requests(self) -> list[spb.SalesRequest]:
        reply = await self.sales.ListSalesRequests(
            spb.ListSalesRequestsRequest(page_size=50), metadata=bearer_metadata(ADMIN), timeout=10
        )
        return list(reply.requests)

    async def intake_row(self, row_id: str) -> SalesRequest:
        async with self.sessions() as session:
            row = await session.get(SalesRequest, row_id)
            assert row is not None
            return row


@pytest.fixture
async def world(database_url: str, nats_url: str) -> AsyncIterator[World]:
    settings = dataclasses.replace(
        Settings.from_env(), admin_token=ADMIN, service_token=SERVICE, signing_key=SIGNING_KEY
    )
    url = async_database_url(database_url)
    await db.upgrade(TICKETS_MIGRATIONS, url, TICKETS_VERSION_TABLE)
    await db.upgrade(INTAKE_MIGRATIONS, url, INTAKE_VERSION_TABLE)
    engine = db.make_engine(url)
    sessions = db.make_sessionmaker(engine)
    now = datetime.now(UTC)
    tag = uuid.uuid4().hex[:8]
    async with sessions() as session:
        org = m.Organization(
            name=f"Rossi Srl {tag}",
            name_key=f"rossi srl {tag}",
            email_domains=[f"rossi-{tag}.it"],
            closed_ticket_policy="FOLLOW_UP",
            locale="it",
            created_at=now,
        )
        session.add(org)
        await session.flush()
        contact = m.Contact(
            organization_id=org.id,
            name="Mario Rossi",
            email=f"mario@rossi-{tag}.it",
            email_key=f"mario@rossi-{tag}.it",
            phone="",
            role="USER",
            locale="it",
            created_at=now,
        )
        session.add(contact)
        await session.commit()
    events = EventPublisher(nats_url, "test-intake")
    sales_port = free_port()  # nothing listens there yet: the sales office is down
    sales_channel = grpc.aio.insecure_channel(f"127.0.0.1:{sales_port}")
    sales = sgrpc.SalesServiceStub(sales_channel)
    forwarder = SalesForwarder(sessions, sales, SERVICE)  # type: ignore[arg-type]
    port = free_port()
    loop_channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")

    def register(server: grpc.aio.Server) -> None:
        dgrpc.add_DirectoryServiceServicer_to_server(
            DirectoryServicer(sessions, Credentials(sessions, TokenSigner(SIGNING_KEY), None)),
            server,
        )
        igrpc.add_IntakeServiceServicer_to_server(
            IntakeServicer(
                sessions,
                tgrpc.TicketServiceStub(loop_channel),  # type: ignore[arg-type]
                dgrpc.DirectoryServiceStub(loop_channel),  # type: ignore[arg-type]
                SERVICE,
                events=events,
                forwarder=forwarder,
            ),
            server,
        )

    server = ServiceServer(settings, f"127.0.0.1:{port}", [], register)
    await server.start()
    processor = MailProcessor(
        sessions,
        tgrpc.TicketServiceStub(loop_channel),  # type: ignore[arg-type]
        dgrpc.DirectoryServiceStub(loop_channel),  # type: ignore[arg-type]
        SERVICE,
        asyncio.Event(),
        DOMAIN,
        events=events,
        our_addresses={f"assistenza@{DOMAIN}"},
        sales=sales,  # type: ignore[arg-type]
        forwarder=forwarder,
    )
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    servers = [server]
    try:
        yield World(
            igrpc.IntakeServiceStub(channel),
            sessions,
            forwarder,
            processor,
            sales,
            settings,
            nats_url,
            sales_port,
            contact.id,
            servers,
        )
    finally:
        await processor.close()
        await channel.close(None)
        await loop_channel.close(None)
        await sales_channel.close(None)
        for s in servers:
            await s.stop(1)
        await events.close()
        await engine.dispose()


def _form(email: str, **fields: Any) -> ipb.SubmitSalesRequestRequest:
    values: dict[str, Any] = {
        "request_id": uuid.uuid4().hex,
        "name": "Eva Verdi",
        "email": email,
        "company": "Verdi S.n.c.",
        "phone": "+39 02 7654321",
        "subject": "Prezzi del gestionale",
        "message": "Vorrei un'offerta per 5 postazioni.",
        "locale": "it",
    }
    values.update(fields)
    return ipb.SubmitSalesRequestRequest(**values)


async def test_a_form_sent_while_the_sales_office_is_down_is_handed_over_by_the_sweep(
    world: World,
) -> None:
    email = f"eva.{uuid.uuid4().hex[:6]}@example.com"
    request = _form(email)
    stored = await world.intake.SubmitSalesRequest(request, timeout=20)
    # Recorded and confirmed all the same; not handed over yet.
    assert (await world.intake_row(stored.id)).forwarded_at is None
    assert await world.forwarder.sweep() == 0  # still down: nothing lost, nothing sent

    await world.sales_office_up()
    assert await world.swept() == 1
    assert (await world.intake_row(stored.id)).forwarded_at is not None
    [office] = [r for r in await world.office_requests() if r.sender == email]
    assert office.id == stored.id
    assert office.status == spb.SALES_REQUEST_STATUS_NEW
    assert office.source == spb.SALES_REQUEST_SOURCE_WEB_FORM
    assert (office.company, office.phone) == ("Verdi S.n.c.", "+39 02 7654321")
    assert office.body.startswith("Vorrei un'offerta per 5 postazioni.")
    assert office.contact_id == 0 and office.organization_id == 0

    # The same form again, a forward again, a sweep again: still one request.
    await world.intake.SubmitSalesRequest(request, timeout=20)
    assert await world.forwarder.forward(stored.id)
    assert await world.forwarder.sweep() == 0
    async with world.sessions() as session:
        count = await session.scalar(
            select(func.count()).select_from(m.SalesRequest).where(m.SalesRequest.sender == email)
        )
    assert count == 1


async def test_a_form_from_a_known_contact_is_handed_over_at_once_naming_them(
    world: World,
) -> None:
    await world.sales_office_up()
    async with world.sessions() as session:
        contact = await session.get(m.Contact, world.contact_id)
        assert contact is not None
        email = contact.email
    stored = await world.intake.SubmitSalesRequest(_form(email, company=""), timeout=20)
    assert (await world.intake_row(stored.id)).forwarded_at is not None
    [office] = [r for r in await world.office_requests() if r.id == stored.id]
    assert office.contact_id == world.contact_id
    assert office.organization_id > 0
    assert office.company == ""


async def test_a_prospect_mail_stored_before_the_hand_over_existed_is_swept_over(
    world: World,
) -> None:
    """A row from before this change (no forwarded_at): the sweep hands it over with its
    mail's Message-ID, as an email."""
    message_id = make_msgid(domain="example.com")
    inbound_id, row_id = uuid.uuid4().hex, uuid.uuid4().hex
    sender = f"old.{uuid.uuid4().hex[:6]}@example.com"
    async with world.sessions() as session:
        session.add(
            InboundMessage(
                id=inbound_id,
                dedup_key=f"mid:{message_id}",
                mail_from=sender,
                rcpt_to=[f"assistenza@{DOMAIN}"],
                raw=b"Subject: x\r\n\r\nx\r\n",
                status="PROSPECT",
                received_at=datetime.now(UTC),
            )
        )
        session.add(
            SalesRequest(
                id=row_id,
                inbound_message_id=inbound_id,
                sender=sender,
                sender_name="Olga Vecchi",
                subject="Informazioni",
                body="Che cosa fate?",
                locale="it",
                attachment_names=["brochure.pdf"],
                received_at=datetime.now(UTC),
            )
        )
        await session.commit()
    await world.sales_office_up()
    assert await world.swept() >= 1
    reply = await world.sales.GetSalesRequest(
        spb.GetSalesRequestRequest(id=row_id), metadata=bearer_metadata(ADMIN), timeout=10
    )
    assert reply.source == spb.SALES_REQUEST_SOURCE_EMAIL
    assert reply.message_id == message_id
    assert list(reply.attachment_names) == ["brochure.pdf"]
    assert reply.sender_name == "Olga Vecchi"


def _reply_mail(sender: str, sales_id: str, text: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Eva Verdi <{sender}>"
    msg["To"] = f"assistenza@{DOMAIN}"
    msg["Subject"] = "Re: Prezzi del gestionale [V-1]"
    msg["Message-ID"] = make_msgid(domain="example.com")
    msg["In-Reply-To"] = f"<notify.sales_answer.{'0' * 32}@{DOMAIN}>"
    msg["References"] = f"{sales_thread_id(sales_id, DOMAIN)} <notify.x@{DOMAIN}>"
    msg.set_content(f"{text}\n\nIl giorno lun 1 dic 2026, Ufficio ha scritto:\n> la nostra offerta")
    return bytes(msg)


async def test_a_reply_waits_while_the_sales_office_is_down_then_joins_the_conversation(
    world: World,
) -> None:
    email = f"eva.{uuid.uuid4().hex[:6]}@example.com"
    stored = await world.intake.SubmitSalesRequest(_form(email), timeout=20)
    raw = _reply_mail(email, stored.id, "Va bene, procediamo.")
    message_id, _ = await store_message(world.sessions, raw, email, [f"assistenza@{DOMAIN}"])

    assert not await world.processor.process(message_id)  # away: kept for a retry
    async with world.sessions() as session:
        row = await session.get(InboundMessage, message_id)
        assert row is not None
        assert row.status == "RECEIVED" and "UNAVAILABLE" in row.detail

    await world.sales_office_up()

    async def attempt() -> bool:
        async with world.sessions() as session:  # due now rather than after its backoff
            await session.execute(
                update(InboundMessage)
                .where(InboundMessage.id == message_id)
                .values(next_attempt_at=None)
            )
            await session.commit()
        return await world.processor.process(message_id)

    # No sweep first: the reply hands its request over itself, then joins it.
    assert await eventually(attempt, timeout=20, every=0.3)
    assert (await world.intake_row(stored.id)).forwarded_at is not None
    async with world.sessions() as session:
        row = await session.get(InboundMessage, message_id)
        assert row is not None
        assert row.status == "SALES_REPLY", row.detail
        assert row.ticket_id == 0
    got = await world.sales.GetSalesRequest(
        spb.GetSalesRequestRequest(id=stored.id), metadata=bearer_metadata(ADMIN), timeout=10
    )
    inbound = [msg for msg in got.messages if msg.inbound]
    assert [msg.body for msg in inbound][-1] == "Va bene, procediamo."
    # A stranger quoting the same thread is not threaded: the normal way (a prospect).
    stranger = f"mallory.{uuid.uuid4().hex[:6]}@example.com"
    other_id, _ = await store_message(
        world.sessions,
        _reply_mail(stranger, stored.id, "Sono io"),
        stranger,
        [f"assistenza@{DOMAIN}"],
    )
    assert await world.processor.process(other_id)
    async with world.sessions() as session:
        row = await session.get(InboundMessage, other_id)
        assert row is not None
        assert row.status == "PROSPECT", row.detail
