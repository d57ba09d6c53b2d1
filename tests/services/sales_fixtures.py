"""The sales office's real parts for tests: SalesService (and the directory) over gRPC with
the bearer-token interceptor and the role table, on a migrated database, publishing its
outbox to a real nats-server."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from temporalio.client import Client

from helpdesk.v1 import directory_pb2_grpc as dgrpc
from helpdesk.v1 import sales_pb2 as spb
from helpdesk.v1 import sales_pb2_grpc as sgrpc
from services.common import db
from services.common.access import Principal, Role
from services.common.auth import bearer_metadata
from services.common.events import EventPublisher, SecretPublisher
from services.common.grpc_server import ServiceServer
from services.common.settings import Settings, async_database_url
from services.common.tokens import TokenSigner
from services.tickets import models as m
from services.tickets.app import MIGRATIONS, VERSION_TABLE
from services.tickets.credentials import Credentials
from services.tickets.directory import DirectoryServicer
from services.tickets.sales_events import SalesEventPublisher
from services.tickets.sales_rpc import SalesServicer
from tests.support import SIGNING_KEY, stream_events

SIGNER = TokenSigner(SIGNING_KEY)
SERVICE_TOKEN = "sales-service-token"
ADMIN_TOKEN = "sales-admin-token"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n"


@dataclass
class Office:
    sessions: Any
    sales: sgrpc.SalesServiceStub
    directory: dgrpc.DirectoryServiceStub
    events: SalesEventPublisher
    nats_url: str
    address: str
    org_a: int
    org_b: int
    # Tokens.
    mario: Any  # a USER of organisation A
    luisa: Any  # another USER of organisation A
    rita: Any  # the REFERENT of organisation A
    gino: Any  # a USER of organisation B
    front: Any  # the front desk
    agent: Any  # a support agent (reads only)
    sara: Any  # the sales office
    lead: Any  # a team lead
    admin: Any
    service: Any
    # IDs.
    mario_id: int
    sara_id: int
    piero_id: int  # another SALES agent
    anna_id: int  # the support agent
    lead_id: int
    sara_email: str


def _agent(name: str, role: str) -> m.Agent:
    return m.Agent(
        name=name,
        email=f"{name.split()[0].lower()}.{uuid.uuid4().hex[:6]}@desk.it",
        email_key=uuid.uuid4().hex,
        role=role,
        created_at=datetime.now(UTC),
    )


def _contact(org_id: int, name: str, role: str = "USER", locale: str = "it") -> m.Contact:
    return m.Contact(
        organization_id=org_id,
        name=name,
        email=f"{name.split()[0].lower()}.{uuid.uuid4().hex[:6]}@example.it",
        email_key=uuid.uuid4().hex,
        phone="+39 02 1234567",
        role=role,
        locale=locale,
        created_at=datetime.now(UTC),
    )


def _org(name: str) -> m.Organization:
    return m.Organization(
        name=name,
        name_key=uuid.uuid4().hex,
        email_domains=[],
        closed_ticket_policy="FOLLOW_UP",
        locale="it",
        created_at=datetime.now(UTC),
    )


async def serve_sales(
    sessions: Any, events: SalesEventPublisher, credentials: Credentials | None = None
) -> ServiceServer:
    """SalesService (and the directory, given ``credentials``) on a free port, with the
    role table and these test tokens."""
    settings = dataclasses.replace(
        Settings.from_env(),
        signing_key=SIGNING_KEY,
        service_token=SERVICE_TOKEN,
        admin_token=ADMIN_TOKEN,
    )

    # The sales requests need no Temporal: a client that never connects (the quotes,
    # which do, are tested on a real server in tests/workflows/test_quotes.py).
    temporal = await Client.connect("127.0.0.1:1", lazy=True)

    def register(server: grpc.aio.Server) -> None:
        servicer = SalesServicer(sessions, events, temporal)
        sgrpc.add_SalesServiceServicer_to_server(servicer, server)
        if credentials is not None:
            dgrpc.add_DirectoryServiceServicer_to_server(
                DirectoryServicer(sessions, credentials), server
            )

    server = ServiceServer(settings, "127.0.0.1:0", [], register)
    await server.start()
    return server


@pytest.fixture
async def office(database_url: str, nats_url: str) -> AsyncIterator[Office]:
    url = async_database_url(database_url)
    await db.upgrade(MIGRATIONS, url, VERSION_TABLE)
    engine = db.make_engine(url)
    sessions = db.make_sessionmaker(engine)
    async with sessions() as session:
        org_a, org_b = _org("Rossi Srl"), _org("Bianchi Spa")
        session.add_all([org_a, org_b])
        await session.flush()
        mario, luisa = _contact(org_a.id, "Mario Rossi"), _contact(org_a.id, "Luisa Verdi")
        rita = _contact(org_a.id, "Rita Referente", role="REFERENT")
        gino = _contact(org_b.id, "Gino Bianchi")
        sara, piero = _agent("Sara Vendite", "SALES"), _agent("Piero Commerciale", "SALES")
        anna, bea = _agent("Anna Agente", "AGENT"), _agent("Bea Capo", "TEAM_LEAD")
        franco = _agent("Franco Banco", "FRONT_DESK")
        session.add_all([mario, luisa, rita, gino, sara, piero, anna, bea, franco])
        await session.commit()
    publisher = EventPublisher(nats_url, "test-sales")
    events = SalesEventPublisher(sessions, publisher)
    secrets_out = SecretPublisher(nats_url, "test-sales-secrets")
    credentials = Credentials(sessions, SIGNER, secrets_out)
    server = await serve_sales(sessions, events, credentials)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")

    def customer(c: m.Contact) -> Any:
        return bearer_metadata(
            SIGNER.access_token(
                Principal(
                    role=Role(c.role),
                    kind="CONTACT",
                    id=c.id,
                    organization_id=c.organization_id,
                    name=c.name,
                )
            )
        )

    def desk(a: m.Agent) -> Any:
        return bearer_metadata(
            SIGNER.access_token(Principal(role=Role(a.role), kind="AGENT", id=a.id, name=a.name))
        )

    try:
        yield Office(
            sessions,
            sgrpc.SalesServiceStub(channel),
            dgrpc.DirectoryServiceStub(channel),
            events,
            nats_url,
            f"127.0.0.1:{server.port}",
            org_a.id,
            org_b.id,
            customer(mario),
            customer(luisa),
            customer(rita),
            customer(gino),
            desk(franco),
            desk(anna),
            desk(sara),
            desk(bea),
            bearer_metadata(ADMIN_TOKEN),
            bearer_metadata(SERVICE_TOKEN),
            mario.id,
            sara.id,
            piero.id,
            anna.id,
            bea.id,
            sara.email,
        )
    finally:
        await channel.close(None)
        await server.stop(1)
        await events.close()
        await publisher.close()
        await secrets_out.close()
        await engine.dispose()


async def fails(code: grpc.StatusCode, call: Awaitable[Any]) -> str:
    """The call's error message, after checking it failed with ``code``."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == code, caught.value.details()
    return str(caught.value.details())


async def sales_events(office: Office, request_id: str) -> list[dict[str, Any]]:
    """Every sales event of one request now on the HELPDESK stream, in order (after
    publishing what the outbox still holds)."""
    await office.events.publish_pending()
    return await stream_events(
        office.nats_url,
        "helpdesk.sales.>",
        lambda e: e["sales_request_id"] == request_id,
        timeout=3,
    )


def portal_request(**fields: Any) -> spb.CreateSalesRequestRequest:
    values: dict[str, Any] = {
        "request_id": uuid.uuid4().hex,
        "kind": spb.SALES_REQUEST_KIND_TRAINING,
        "subject": "Formazione in sede sul gestionale",
        "message": "Vorremmo due giornate di formazione per cinque persone.",
    }
    values.update(fields)
    return spb.CreateSalesRequestRequest(**values)
