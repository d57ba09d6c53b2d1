"""Seed 003's web form for people who are not customers: ``IntakeService.SubmitSalesRequest``
over a real in-process gRPC server (intake, and the directory it asks), with nats-server
for the polite reply's event. No token needed; one row per request ID; never a ticket; at
most 3 an hour from one address."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from helpdesk.v1 import directory_pb2_grpc as dgrpc
from helpdesk.v1 import intake_pb2 as ipb
from helpdesk.v1 import intake_pb2_grpc as igrpc
from helpdesk.v1 import sales_pb2 as spb
from helpdesk.v1 import tickets_pb2_grpc as tgrpc
from services.common import db
from services.common.auth import bearer_metadata
from services.common.embedded import free_port
from services.common.events import EventPublisher
from services.common.grpc_server import ServiceServer
from services.common.settings import Settings, async_database_url
from services.common.tokens import TokenSigner
from services.intake.app import MIGRATIONS as INTAKE_MIGRATIONS
from services.intake.app import VERSION_TABLE as INTAKE_VERSION_TABLE
from services.intake.models import SalesRequest
from services.intake.sales import MAX_PER_HOUR
from services.intake.servicer import IntakeServicer
from services.tickets import models as m
from services.tickets.app import MIGRATIONS as TICKETS_MIGRATIONS
from services.tickets.app import VERSION_TABLE as TICKETS_VERSION_TABLE
from services.tickets.credentials import Credentials
from services.tickets.directory import DirectoryServicer
from tests.support import SIGNING_KEY, stream_events

pytestmark = [pytest.mark.db, pytest.mark.timeout(120)]

ADMIN = "test-admin-token"
SERVICE = "test-service-token"


@dataclass
class Api:
    intake: igrpc.IntakeServiceStub
    sessions: async_sessionmaker[AsyncSession]  # intake's store and the directory's
    nats_url: str
    contact_email: str


@pytest.fixture
async def api(database_url: str, nats_url: str) -> AsyncIterator[Api]:
    settings = dataclasses.replace(
        Settings.from_env(), admin_token=ADMIN, service_token=SERVICE, signing_key=SIGNING_KEY
    )
    url = async_database_url(database_url)
    await db.upgrade(TICKETS_MIGRATIONS, url, TICKETS_VERSION_TABLE)
    await db.upgrade(INTAKE_MIGRATIONS, url, INTAKE_VERSION_TABLE)
    engine = db.make_engine(url)
    sessions = db.make_sessionmaker(engine)
    now = datetime.now(UTC)
    async with sessions() as session:
        org = m.Organization(
            name="Rossi Srl",
            name_key="rossi srl",
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
            email="mario@rossi.it",
            email_key="mario@rossi.it",
            phone="",
            role="USER",
            locale="it",
            created_at=now,
        )
        session.add(contact)
        await session.commit()
    events = EventPublisher(nats_url, "test-intake")
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
            ),
            server,
        )

    server = ServiceServer(settings, f"127.0.0.1:{port}", [], register)
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        yield Api(igrpc.IntakeServiceStub(channel), sessions, nats_url, "mario@rossi.it")
    finally:
        await channel.close(None)
        await loop_channel.close(None)
        await server.stop(1)
        await events.close()
        await engine.dispose()


def _form(**fields: Any) -> ipb.SubmitSalesRequestRequest:
    values: dict[str, Any] = {
        "request_id": uuid.uuid4().hex,
        "name": "Eva Verdi",
        "email": "Eva.Verdi@Example.com",
        "company": "Verdi Srl",
        "phone": "+39 02 1234567",
        "subject": "Preventivo per l'assistenza",
        "message": "Vorremmo un contratto di assistenza per 12 postazioni.",
        "locale": "en",
    }
    values.update(fields)
    return ipb.SubmitSalesRequestRequest(**values)


async def _code(call: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call  # type: ignore[misc]
    return err.value.code(), err.value.details() or ""


async def _prospect_events(api: Api, request_id: str) -> list[dict[str, Any]]:
    return await stream_events(
        api.nats_url, "helpdesk.mail.prospect", lambda e: e["request_id"] == request_id, 2
    )


async def _rows(api: Api, sender: str) -> int:
    async with api.sessions() as session:
        return int(
            await session.scalar(
                select(func.count()).select_from(SalesRequest).where(SalesRequest.sender == sender)
            )
            or 0
        )


async def test_a_form_becomes_one_sales_request_with_its_polite_reply(api: Api) -> None:
    form = _form()
    got = await api.intake.SubmitSalesRequest(form)  # no bearer token
    assert got.sender == "eva.verdi@example.com" and got.sender_name == "Eva Verdi"
    assert got.subject == "Preventivo per l'assistenza" and got.locale == "en"
    assert got.body.startswith("Vorremmo un contratto di assistenza per 12 postazioni.")
    assert "Azienda: Verdi Srl" in got.body and "Telefono: +39 02 1234567" in got.body
    assert got.message_id.startswith("web:") and got.received_at.seconds > 0
    # A retry is the same request: one row, one reply.
    again = await api.intake.SubmitSalesRequest(form)
    assert again == got
    assert await _rows(api, "eva.verdi@example.com") == 1
    listed = await api.intake.ListSalesRequests(
        spb.ListSalesRequestsRequest(), metadata=bearer_metadata(ADMIN)
    )
    assert [r.id for r in listed.requests] == [got.id]
    [event] = await _prospect_events(api, got.id)
    assert event["event_id"] == f"mail-prospect:{got.id}"
    assert event["type"] == "prospect" and event["sender"] == "eva.verdi@example.com"
    assert event["sender_name"] == "Eva Verdi" and event["locale"] == "en"
    assert event["message_id"] == "" and event["known_contact"] is False
    # The same request ID from another address is another request (and reveals nothing).
    other = await api.intake.SubmitSalesRequest(
        _form(request_id=form.request_id, email="bob@example.com")
    )
    assert other.id != got.id and other.sender == "bob@example.com"


async def test_a_known_contact_asking_for_a_quote_is_a_sales_request_too(api: Api) -> None:
    got = await api.intake.SubmitSalesRequest(
        _form(email="Mario@Rossi.it", name="Mario Rossi", locale="", company="", phone="")
    )
    assert got.sender == api.contact_email and got.locale == "it"
    assert "Azienda" not in got.body and "Telefono" not in got.body
    [event] = await _prospect_events(api, got.id)
    assert event["known_contact"] is True
    async with api.sessions() as session:  # never a ticket
        assert await session.scalar(select(func.count()).select_from(m.Ticket)) == 0


async def test_bad_fields_are_named_and_store_nothing(api: Api) -> None:
    cases = [
        (_form(name=" "), "name"),
        (_form(email=""), "email"),
        (_form(email="eva at example.com"), "email"),
        (_form(email="eva@example.com\nBcc: x@y.it"), "email"),
        (_form(subject=""), "subject"),
        (_form(subject="Riga\nBcc: spam@example.com"), "subject"),
        (_form(message=" "), "message"),
        (_form(message="x" * 20_001), "message"),
        (_form(locale="fr"), "locale"),
        (_form(company="x" * 201), "company"),
        (_form(phone="1" * 51), "phone"),
        (_form(request_id="r" * 151), "request_id"),
    ]
    for form, field in cases:
        code, details = await _code(api.intake.SubmitSalesRequest(form))
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (field, details)
        assert details.startswith(f"{field}:"), (field, details)
    async with api.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(SalesRequest)) == 0


async def test_at_most_three_an_hour_from_one_address(api: Api) -> None:
    first = _form()
    sent = [await api.intake.SubmitSalesRequest(first)]
    for _ in range(MAX_PER_HOUR - 1):
        sent.append(await api.intake.SubmitSalesRequest(_form()))
    for email in ("eva.verdi@example.com", "EVA.VERDI@EXAMPLE.COM"):
        code, details = await _code(api.intake.SubmitSalesRequest(_form(email=email)))
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "3 requests in the last hour" in details and "try again in" in details
    assert await _rows(api, "eva.verdi@example.com") == MAX_PER_HOUR
    # A retry of one already made is still answered; another address is not held back.
    assert (await api.intake.SubmitSalesRequest(first)).id == sent[0].id
    await api.intake.SubmitSalesRequest(_form(email="bob@example.com"))
    # An hour later the address may write again.
    async with api.sessions() as session:
        await session.execute(
            update(SalesRequest)
            .where(SalesRequest.sender == "eva.verdi@example.com")
            .values(received_at=datetime.now(UTC) - timedelta(hours=1, minutes=1))
        )
        await session.commit()
    await api.intake.SubmitSalesRequest(_form())
    assert await _rows(api, "eva.verdi@example.com") == MAX_PER_HOUR + 1
