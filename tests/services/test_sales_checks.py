"""SalesService refuses what it cannot keep, naming the field; the front desk takes
requests for callers; and the sales office is told of a request made while NATS was away
(the outbox), once.

Real parts as in test_sales_service.py: the gRPC server with the role table, a migrated
database, a real nats-server (and, for the outage, a port where nothing listens).
"""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest
from sqlalchemy import select

from helpdesk.v1 import sales_pb2 as spb
from helpdesk.v1 import sales_pb2_grpc as sgrpc
from services.common.embedded import free_port
from services.common.events import EventPublisher
from services.tickets import models as m
from services.tickets.sales_events import SalesEventPublisher
from tests.services import sales_fixtures
from tests.services.sales_fixtures import (
    Office,
    fails,
    portal_request,
    sales_events,
    serve_sales,
)
from tests.support import eventually

office = sales_fixtures.office  # the fixture

pytestmark = [pytest.mark.db, pytest.mark.timeout(120)]
INVALID = grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"subject": ""}, "subject"),
        ({"subject": "Due\nrighe"}, "subject"),
        ({"subject": "x" * 301}, "subject"),
        ({"message": "x" * 20_001}, "message"),
        ({"kind": spb.SALES_REQUEST_KIND_UNSPECIFIED}, "kind"),
        ({"kind": 99}, "kind"),
        ({"request_id": "x" * 151}, "request_id"),
        ({"request_id": "email:forged"}, "request_id"),
    ],
)
async def test_a_bad_portal_request_is_refused_naming_the_field(
    office: Office, fields: dict[str, object], field: str
) -> None:
    message = await fails(
        INVALID, office.sales.CreateSalesRequest(portal_request(**fields), metadata=office.mario)
    )
    assert message.startswith(field), message
    listed = await office.sales.ListSalesRequests(
        spb.ListSalesRequestsRequest(), metadata=office.sara
    )
    assert not listed.requests  # nothing half-written


async def test_the_front_desk_takes_requests_for_a_customer_and_a_prospect(
    office: Office,
) -> None:
    for_customer = await office.sales.CreateSalesRequest(
        portal_request(contact_id=office.mario_id, kind=spb.SALES_REQUEST_KIND_CUSTOMISATION),
        metadata=office.front,
    )
    assert for_customer.source == spb.SALES_REQUEST_SOURCE_FRONT_DESK
    assert for_customer.organization_id == office.org_a
    assert for_customer.sender_name == "Mario Rossi"
    # The customer sees the request made for them.
    await office.sales.GetSalesRequest(
        spb.GetSalesRequestRequest(id=for_customer.id), metadata=office.mario
    )
    prospect = await office.sales.CreateSalesRequest(
        portal_request(
            kind=spb.SALES_REQUEST_KIND_INFORMATION,
            email="ugo@nuovo.example",
            name="Ugo Nuovo",
            company="Nuovo Srl",
            phone="+39 333 1234567",
            locale="en",
        ),
        metadata=office.front,
    )
    assert (prospect.sender, prospect.company, prospect.locale) == (
        "ugo@nuovo.example",
        "Nuovo Srl",
        "en",
    )
    assert prospect.organization_id == 0 and prospect.contact_id == 0
    for fields, field in (
        ({"email": "not-an-address"}, "email"),
        ({"email": ""}, "email"),
        ({"email": "a@b.it", "locale": "de"}, "locale"),
    ):
        message = await fails(
            INVALID,
            office.sales.CreateSalesRequest(portal_request(**fields), metadata=office.front),
        )
        assert message.startswith(field), message
    await fails(
        grpc.StatusCode.NOT_FOUND,
        office.sales.CreateSalesRequest(portal_request(contact_id=999_999), metadata=office.front),
    )


async def test_a_retried_request_is_one_request_and_keys_are_the_callers_own(
    office: Office,
) -> None:
    request = portal_request(request_id="form-1")
    first = await office.sales.CreateSalesRequest(request, metadata=office.mario)
    again = await office.sales.CreateSalesRequest(request, metadata=office.mario)
    # The same key from another customer is their own, new request.
    other = await office.sales.CreateSalesRequest(request, metadata=office.gino)
    assert first.id == again.id and other.id != first.id
    assert other.organization_id == office.org_b
    events = await sales_events(office, first.id)
    assert [e["type"] for e in events] == ["created"]


async def test_working_a_request_is_for_the_sales_office(office: Office) -> None:
    made = await office.sales.CreateSalesRequest(portal_request(), metadata=office.mario)
    denied = grpc.StatusCode.PERMISSION_DENIED
    reply = spb.ReplyToSalesRequestRequest(id=made.id, body="Salve")
    update = spb.UpdateSalesRequestRequest(id=made.id, status=spb.SALES_REQUEST_STATUS_WON)
    for reader in (office.agent, office.front, office.mario, office.rita):
        await fails(denied, office.sales.ReplyToSalesRequest(reply, metadata=reader))
        await fails(denied, office.sales.UpdateSalesRequest(update, metadata=reader))
    # A reader lists it; the support agent cannot make one.
    listed = await office.sales.ListSalesRequests(
        spb.ListSalesRequestsRequest(), metadata=office.agent
    )
    assert [r.id for r in listed.requests] == [made.id]
    await fails(denied, office.sales.CreateSalesRequest(portal_request(), metadata=office.agent))
    # Owners: only agents who may own one; unassign gives it back to nobody.
    await office.sales.AssignSalesRequest(
        spb.AssignSalesRequestRequest(id=made.id, owner_id=office.piero_id), metadata=office.sara
    )
    freed = await office.sales.AssignSalesRequest(
        spb.AssignSalesRequestRequest(id=made.id, unassign=True), metadata=office.sara
    )
    assert freed.owner_id == 0 and freed.owner_name == ""
    for bad, field in (
        (spb.AssignSalesRequestRequest(id=made.id), "owner_id"),
        (spb.AssignSalesRequestRequest(id=made.id, owner_id=3, unassign=True), "owner_id"),
        (spb.AssignSalesRequestRequest(owner_id=office.sara_id), "id"),
    ):
        message = await fails(INVALID, office.sales.AssignSalesRequest(bad, metadata=office.sara))
        assert message.startswith(field), message
    await fails(
        grpc.StatusCode.NOT_FOUND,
        office.sales.AssignSalesRequest(
            spb.AssignSalesRequestRequest(id=made.id, owner_id=999_999), metadata=office.sara
        ),
    )
    for bad, field in (
        (spb.UpdateSalesRequestRequest(id=made.id), "status"),
        (spb.UpdateSalesRequestRequest(id=made.id, status=42), "status"),
        (spb.UpdateSalesRequestRequest(id=made.id, status=2, note="x" * 2001), "note"),
    ):
        message = await fails(INVALID, office.sales.UpdateSalesRequest(bad, metadata=office.sara))
        assert message.startswith(field), message
    message = await fails(
        INVALID,
        office.sales.ReplyToSalesRequest(
            spb.ReplyToSalesRequestRequest(id=made.id, body="  "), metadata=office.sara
        ),
    )
    assert message.startswith("body")
    events = await sales_events(office, made.id)
    assert [e["type"] for e in events] == ["created", "assigned", "assigned"]
    assert events[1]["assigned_by_name"] == "Sara Vendite"
    assert events[2]["owner_id"] == 0


async def test_a_request_made_while_nats_is_away_is_told_once_it_is_back(
    office: Office,
) -> None:
    # A second server on the same store whose NATS does not answer (nothing listens there).
    away = EventPublisher(f"nats://127.0.0.1:{free_port()}", "test-sales-away")
    stalled = SalesEventPublisher(office.sessions, away)
    server = await serve_sales(office.sessions, stalled)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        made = await sgrpc.SalesServiceStub(channel).CreateSalesRequest(
            portal_request(request_id=uuid.uuid4().hex), metadata=office.mario
        )
        await asyncio.sleep(0.5)  # its publish after the commit is still trying to connect
        async with office.sessions() as session:
            waiting = list(
                await session.scalars(
                    select(m.SalesEvent).where(m.SalesEvent.published_at.is_(None))
                )
            )
        assert [e.payload["sales_request_id"] for e in waiting] == [made.id]
    finally:
        await channel.close(None)
        await server.stop(1)
        await stalled.close()
    # The sweep of a process whose NATS answers tells it, once.
    sweep = asyncio.create_task(office.events.run_forever())
    try:

        async def told() -> bool:
            async with office.sessions() as session:
                row = await session.scalar(select(m.SalesEvent))
                return row is not None and row.published_at is not None

        await eventually(told, timeout=10)
    finally:
        sweep.cancel()
    assert await office.events.publish_pending() == 0
    events = await sales_events(office, made.id)
    assert [e["type"] for e in events] == ["created"]
