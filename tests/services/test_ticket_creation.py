"""Creating a ticket on the real stack (SQLite or PostgreSQL, the Temporal dev server): the
reply is the ticket as stored, a request ID makes one ticket however often it is sent, the
workflow's first record marks the ticket started, and a ticket whose workflow could not be
started is started by the reconciler."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import grpc
import pytest
from sqlalchemy import event, func, select
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import tickets_pb2 as tpb
from services.common import db
from services.common.auth import bearer_metadata
from services.common.settings import async_database_url
from services.tickets import creation
from services.tickets import models as m
from services.tickets.creation import NewTicket, TicketCreator
from tests.services.ticket_api import ADMIN_TOKEN, Api
from tests.support import TicketsStack, eventually
from workflows.contracts import ticket_workflow_id

pytestmark = [pytest.mark.db]

MD = bearer_metadata(ADMIN_TOKEN)


def _new(stack: TicketsStack, request_id: str | None) -> NewTicket:
    return NewTicket(
        request_id=request_id,
        subject="Stampa fattura non funziona",
        description="Errore 42",
        requester_id=stack.contact_id,
        channel="PORTAL",
        priority="NORMAL",
    )


async def _recorded(stack: TicketsStack, ticket_id: int) -> bool:
    row = await stack.ticket(ticket_id)
    return row.workflow_started and row.event_seq >= 1


async def _created_events(stack: TicketsStack, ticket_id: int) -> int:
    async with stack.sessions() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(m.TicketEvent)
                .where(m.TicketEvent.ticket_id == ticket_id, m.TicketEvent.type == "created")
            )
            or 0
        )


@contextmanager
def _statements(creator: TicketCreator) -> Iterator[list[str]]:
    """The SQL ``creator``'s engine runs inside the block (its own engine: the workflow's
    activities, on the stack's, are not counted)."""
    seen: list[str] = []
    engine = creator.sessions.kw["bind"].sync_engine

    def record(*args: Any) -> None:
        seen.append(" ".join(str(args[2]).split()))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def test_the_reply_is_the_ticket_as_stored(api: Api) -> None:
    stack = api.stack
    shot = pb.Attachment(filename="errore.png", content_type="image/png", content=b"\x89PNG")
    log = pb.Attachment(filename="app.log", content=b"boom")
    reply = await api.tickets.CreateTicket(
        tpb.CreateTicketRequest(
            request_id=uuid.uuid4().hex,
            subject="Schermata nera",
            description="Dopo l'aggiornamento",
            requester_id=stack.contact_id,
            channel=pb.CHANNEL_PORTAL,
            product="Gestionale",
            callback_number="+39 02 1234",
            attachments=[shot, log],
        ),
        metadata=MD,
    )
    await eventually(lambda: _recorded(stack, reply.id))
    stored = await api.tickets.GetTicket(tpb.GetTicketRequest(id=reply.id), metadata=MD)
    # Recording "created" touches the row (updated_at) and counts the clock from the
    # workflow's start: those may differ by the moments between; the rest is the same.
    assert [(c.target, c.due_at, c.state) for c in reply.sla] == [
        (c.target, c.due_at, c.state) for c in stored.sla
    ]
    for a, b in zip(reply.sla, stored.sla, strict=True):
        assert abs(a.remaining_business_seconds - b.remaining_business_seconds) <= 60
    for t in (reply, stored):
        t.ClearField("sla")
        t.ClearField("updated_at")
    assert reply == stored
    assert [a.filename for a in reply.attachments] == ["errore.png", "app.log"]
    assert reply.organization_name and reply.requester_email


async def test_a_creation_writes_once_and_reads_nothing_back(api: Api) -> None:
    stack = api.stack
    # Its own engine on the same store: only the creation's statements are counted.
    engine = db.make_engine(async_database_url(str(stack.sessions.kw["bind"].url)))
    creator = TicketCreator(db.make_sessionmaker(engine), stack.client, 14 * 86400)
    try:
        with _statements(creator) as seen:
            row, created = await creator.create(_new(stack, uuid.uuid4().hex))
        assert created
        writes = [s for s in seen if s.split()[0] in ("INSERT", "UPDATE", "DELETE")]
        first_write = seen.index(writes[0])
        # The requester (with its organisation) is read once; after the insert nothing is
        # read back and the ticket is not marked started: the workflow's record does that.
        assert sum("FROM contacts" in s for s in seen) == 1
        assert not any(s.startswith("SELECT") and "FROM tickets" in s for s in seen[first_write:])
        assert not any(s.startswith("UPDATE tickets") for s in seen)
        await eventually(lambda: _recorded(stack, row.id))
        assert await _created_events(stack, row.id) == 1
    finally:
        await engine.dispose()


async def test_one_request_id_makes_one_ticket_even_when_sent_at_once(api: Api) -> None:
    stack = api.stack
    request = tpb.CreateTicketRequest(
        request_id="portal-form-7", subject="Doppio clic", requester_id=stack.contact_id
    )
    replies = await asyncio.gather(
        *(api.tickets.CreateTicket(request, metadata=MD) for _ in range(4))
    )
    assert len({r.id for r in replies}) == 1
    later = await api.tickets.CreateTicket(request, metadata=MD)
    assert later.id == replies[0].id
    async with stack.sessions() as session:
        count = await session.scalar(select(func.count()).select_from(m.Ticket))
    assert count == 1
    await eventually(lambda: _recorded(stack, later.id))
    assert await _created_events(stack, later.id) == 1


async def _fail_starts(*args: Any, **kwargs: Any) -> None:
    raise RPCError("temporal is down", RPCStatusCode.UNAVAILABLE, b"")


async def test_a_ticket_whose_start_failed_is_started_by_the_reconciler(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = api.stack
    with monkeypatch.context() as patched:
        patched.setattr(creation, "start_ticket_workflow", _fail_starts)
        with pytest.raises(RPCError):
            await stack.creator.create(_new(stack, "lost-start"))
    async with stack.sessions() as session:
        row = (
            await session.scalars(select(m.Ticket).where(m.Ticket.request_id == "lost-start"))
        ).one()
    assert row.workflow_started is False
    assert await stack.creator.reconcile() == 1
    handle = stack.client.get_workflow_handle(ticket_workflow_id(row.id))
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    await eventually(lambda: _recorded(stack, row.id))
    assert await stack.creator.reconcile() == 0
    assert await _created_events(stack, row.id) == 1


async def test_a_retry_after_a_failed_start_starts_the_same_ticket(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = api.stack
    request = tpb.CreateTicketRequest(
        request_id="retry-me", subject="Riprova", requester_id=stack.contact_id
    )
    with monkeypatch.context() as patched:
        patched.setattr(creation, "start_ticket_workflow", _fail_starts)
        with pytest.raises(grpc.aio.AioRpcError):
            await api.tickets.CreateTicket(request, metadata=MD)
    retried = await api.tickets.CreateTicket(request, metadata=MD)
    async with stack.sessions() as session:
        ids = (await session.scalars(select(m.Ticket.id))).all()
    assert ids == [retried.id]
    await eventually(lambda: _recorded(stack, retried.id))
    assert await _created_events(stack, retried.id) == 1
