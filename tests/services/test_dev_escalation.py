"""The dev_escalation service on real parts: its store (SQLite or PostgreSQL), its activities
on their task queue, the programming-ticket workflow on the Temporal dev server, events on
nats-server, and the DirectoryService of the tickets service over gRPC for the recipients."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import nats
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import func, select
from temporalio.client import Client

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import dev_escalation_pb2 as epb
from helpdesk.v1 import dev_escalation_pb2_grpc as egrpc
from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import directory_pb2_grpc as dgrpc
from services.common.access import Principal, Role
from services.common.auth import bearer_metadata
from services.common.embedded import free_port
from services.common.events import ensure_stream
from services.common.grpc_server import ServiceServer
from services.common.settings import Settings
from services.common.tokens import TokenSigner
from services.dev_escalation import models as m
from services.tickets.directory import DirectoryServicer
from tests.support import (
    SIGNING_KEY,
    DevStack,
    TicketsStack,
    dev_escalation_stack,
    eventually,
    tickets_stack,
)
from workflows.contracts import WORKFLOW_TASK_QUEUE
from workflows.prog_contracts import (
    PROGTICKET_WORKFLOW,
    ProgChangeRecord,
    ProgState,
    ProgWorkflowInput,
    RegisterProgInput,
    prog_event_id,
    progticket_workflow_id,
)

pytestmark = [pytest.mark.db]

ADMIN = "dev-admin-token"
SERVICE = "dev-service-token"
SIGNER = TokenSigner(SIGNING_KEY)


@dataclass
class People:
    on_call: dpb.Agent
    off_duty: dpb.Agent
    lead: dpb.Agent
    referent: dpb.Contact


@dataclass
class System:
    stack: TicketsStack
    dev: DevStack
    client: Client
    channel: grpc.aio.Channel
    nats_url: str
    org_name: str
    people: People

    @property
    def rpc(self) -> egrpc.DevEscalationServiceStub:
        return egrpc.DevEscalationServiceStub(self.channel)

    def as_developer(self, agent_id: int, role: Role = Role.DEVELOPER) -> Any:
        return bearer_metadata(SIGNER.access_token(Principal(role=role, kind="AGENT", id=agent_id)))

    async def register(
        self,
        urgency: str = "LOW",
        title: str = "Crash in stampa fattura",
        key: str = "",
        created_at: datetime | None = None,
    ) -> int:
        return int(
            await self.dev.activities.register_programming_ticket(
                RegisterProgInput(
                    request_key=key or uuid.uuid4().hex,
                    support_ticket_id=987,
                    organization_id=self.stack.org_id,
                    title=title,
                    technical_description="NullPointer in PrintService.render",
                    urgency=urgency,
                    created_at=created_at or datetime.now(UTC),
                )
            )
        )

    def state(self, prog_id: int, urgency: str = "LOW", **changes: Any) -> ProgState:
        return dataclasses.replace(
            ProgState(
                id=prog_id,
                support_ticket_id=987,
                organization_id=self.stack.org_id,
                title="Crash in stampa fattura",
                technical_description="NullPointer in PrintService.render",
                urgency=urgency,
                created_at=datetime.now(UTC),
            ),
            **changes,
        )

    async def start_workflow(self, state: ProgState, **options: Any) -> None:
        await self.client.start_workflow(
            PROGTICKET_WORKFLOW,
            ProgWorkflowInput(state=state, **options),
            id=progticket_workflow_id(state.id),
            task_queue=WORKFLOW_TASK_QUEUE,
        )


@pytest.fixture
async def system(
    temporal_client: Client, database_url: str, nats_url: str
) -> AsyncIterator[System]:
    settings = dataclasses.replace(
        Settings.from_env(), admin_token=ADMIN, service_token=SERVICE, signing_key=SIGNING_KEY
    )
    port = free_port()
    address = f"127.0.0.1:{port}"
    async with (
        tickets_stack(temporal_client, database_url, nats_url) as stack,
        dev_escalation_stack(temporal_client, database_url, nats_url, address, SERVICE) as dev,
    ):

        def register(srv: grpc.aio.Server) -> None:
            dgrpc.add_DirectoryServiceServicer_to_server(
                DirectoryServicer(stack.sessions, stack.credentials), srv
            )
            egrpc.add_DevEscalationServiceServicer_to_server(dev.servicer, srv)

        srv = ServiceServer(settings, address, [], register)
        await srv.start()
        channel = grpc.aio.insecure_channel(address)
        try:
            directory = dgrpc.DirectoryServiceStub(channel)  # type: ignore[arg-type]
            admin = bearer_metadata(ADMIN)

            async def agent(role: int, on_call: bool = False, lead: bool = False) -> dpb.Agent:
                reply: dpb.Agent = await directory.CreateAgent(
                    dpb.CreateAgentRequest(
                        name=f"Dev {uuid.uuid4().hex[:4]}",
                        email=f"dev.{uuid.uuid4().hex[:8]}@desk.it",
                        role=role,
                        on_call=on_call,
                        development_lead=lead,
                    ),
                    metadata=admin,
                )
                return reply

            referent: dpb.Contact = await directory.AddContact(
                dpb.AddContactRequest(
                    organization_id=stack.org_id,
                    name="Giulia Referente",
                    email=f"giulia.{uuid.uuid4().hex[:6]}@rossi.it",
                    role=pb.CONTACT_ROLE_REFERENT,
                    locale="en",
                ),
                metadata=admin,
            )
            people = People(
                on_call=await agent(pb.AGENT_ROLE_DEVELOPER, on_call=True),
                off_duty=await agent(pb.AGENT_ROLE_DEVELOPER),
                lead=await agent(pb.AGENT_ROLE_TEAM_LEAD, lead=True),
                referent=referent,
            )
            org: dpb.Organization = await directory.GetOrganization(
                dpb.GetOrganizationRequest(id=stack.org_id), metadata=admin
            )
            yield System(stack, dev, temporal_client, channel, nats_url, org.name, people)
        finally:
            await channel.close(None)
            await srv.stop(1)


async def prog_events(
    nats_url: str, prog_id: int, timeout: float = 5
) -> list[tuple[str, str, dict[str, Any]]]:
    """(subject, Nats-Msg-Id, body) of every event of one programming ticket in the stream."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        await ensure_stream(js)
        sub = await js.subscribe("helpdesk.progticket.>", ordered_consumer=True)
        found = []
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            try:
                msg = await sub.next_msg(timeout=0.5)
            except nats.errors.TimeoutError:
                break
            body = json.loads(msg.data)
            if body["programming_ticket_id"] == prog_id:
                found.append((msg.subject, (msg.headers or {}).get("Nats-Msg-Id", ""), body))
        await sub.unsubscribe()
        return found
    finally:
        await nc.close()


async def rpc_error(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    return err.value


def ts(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


# Activities ------------------------------------------------------------------------------


async def test_register_returns_one_id_per_request_key_under_retries_and_races(
    system: System,
) -> None:
    key = uuid.uuid4().hex
    ids = await asyncio.gather(*(system.register("AVERAGE", key=key) for _ in range(5)))
    assert len(set(ids)) == 1
    assert await system.register("AVERAGE", key=key) == ids[0]
    other = await system.register("AVERAGE")
    assert other != ids[0]
    async with system.dev.sessions() as session:
        row = await session.get(m.ProgrammingTicket, ids[0])
        assert row is not None
        assert (row.status, row.urgency, row.urgency_rank) == ("OPEN", "AVERAGE", 2)
        count = await session.scalar(
            select(func.count())
            .select_from(m.ProgrammingTicket)
            .where(m.ProgrammingTicket.request_key == key)
        )
    assert count == 1
    got = await system.rpc.GetProgrammingTicket(
        epb.GetProgrammingTicketRequest(id=ids[0]), metadata=bearer_metadata(ADMIN)
    )
    assert got.status == epb.PROG_STATUS_OPEN
    assert got.urgency == epb.PROG_URGENCY_AVERAGE
    assert got.workflow_id == f"progticket-{ids[0]}"


async def test_record_writes_and_publishes_each_event_once_with_its_recipients(
    system: System,
) -> None:
    prog_id = await system.register("HIGH")
    due = datetime.now(UTC) + timedelta(hours=1)
    created = ProgChangeRecord(
        event_id=prog_event_id(prog_id, 1),
        event_type="created",
        occurred_at=datetime.now(UTC),
        actor_kind="SYSTEM",
        actor_id=0,
        state=system.state(prog_id, "HIGH", start_work_due=due, event_seq=1),
        from_status="OPEN",
        to_status="OPEN",
        detail="HIGH: on-call developers told",
    )
    activities = system.dev.activities
    # A retried activity: the second run writes nothing and publishes nothing new.
    await activities.record_programming_ticket_change(created)
    await activities.record_programming_ticket_change(created)

    window = (datetime.now(UTC) + timedelta(days=1), datetime.now(UTC) + timedelta(days=1, hours=2))
    later = [
        ("start_overdue", system.state(prog_id, "HIGH", escalated_to_lead=True, event_seq=2)),
        (
            "started",
            system.state(
                prog_id,
                "HIGH",
                status="IN_PROGRESS",
                assignee_id=system.people.off_duty.id,
                escalated_to_lead=True,
                event_seq=3,
            ),
        ),
        (
            "remote_update_announced",
            system.state(
                prog_id,
                "HIGH",
                status="RELEASED",
                assignee_id=system.people.off_duty.id,
                window_start=window[0],
                window_end=window[1],
                release_notes="Corretta la stampa",
                event_seq=4,
            ),
        ),
    ]
    for kind, state in later:
        await activities.record_programming_ticket_change(
            ProgChangeRecord(
                event_id=prog_event_id(prog_id, state.event_seq),
                event_type=kind,
                occurred_at=datetime.now(UTC),
                actor_kind="AGENT" if kind == "started" else "SYSTEM",
                actor_id=system.people.off_duty.id if kind == "started" else 0,
                state=state,
                from_status="OPEN",
                to_status=state.status,
            )
        )
    # An old snapshot arriving late never overwrites a newer one.
    stale = dataclasses.replace(created, event_id=f"{prog_event_id(prog_id, 1)}-late")
    await activities.record_programming_ticket_change(stale)

    async with system.dev.sessions() as session:
        row = await session.get(m.ProgrammingTicket, prog_id)
        assert row is not None
        assert (row.status, row.event_seq, row.assignee_id) == (
            "RELEASED",
            4,
            system.people.off_duty.id,
        )
        assert row.release_notes == "Corretta la stampa"
        types = list(
            await session.scalars(
                select(m.ProgrammingTicketEvent.type)
                .where(m.ProgrammingTicketEvent.programming_ticket_id == prog_id)
                .order_by(m.ProgrammingTicketEvent.seq, m.ProgrammingTicketEvent.event_id)
            )
        )
    assert types == ["created", "created", "start_overdue", "started", "remote_update_announced"]

    events = await prog_events(system.nats_url, prog_id)
    subjects = [subject for subject, _, _ in events]
    assert subjects == [
        "helpdesk.progticket.created",
        "helpdesk.progticket.start_overdue",
        "helpdesk.progticket.started",
        "helpdesk.progticket.remote_update_announced",
        "helpdesk.progticket.created",  # the late one: its own event ID
    ]
    by_type = {body["type"]: (msg_id, body) for _, msg_id, body in events[:4]}
    msg_id, body = by_type["created"]
    assert msg_id == body["event_id"] == prog_event_id(prog_id, 1)
    ticket = body["programming_ticket"]
    assert ticket["display_id"] == f"P-{prog_id}"
    assert ticket["support_display_id"] == "#987"
    assert ticket["organization_name"] == system.org_name
    assert ticket["urgency"] == "HIGH" and ticket["start_work_due"] == due.isoformat()
    on_call = system.people.on_call
    assert body["recipients"] == [
        {
            "kind": "AGENT",
            "id": on_call.id,
            "name": on_call.name,
            "email": on_call.email,
            "locale": "it",
        }
    ]
    lead = system.people.lead
    assert [r["email"] for r in by_type["start_overdue"][1]["recipients"]] == [lead.email]
    started = by_type["started"][1]
    assert started["recipients"] == []
    assert started["actor"] == {
        "kind": "AGENT",
        "id": system.people.off_duty.id,
        "name": system.people.off_duty.name,
    }
    assert started["programming_ticket"]["assignee"]["email"] == system.people.off_duty.email
    announced = by_type["remote_update_announced"][1]
    referent = system.people.referent
    assert announced["recipients"] == [
        {
            "kind": "CONTACT",
            "id": referent.id,
            "name": referent.name,
            "email": referent.email,
            "locale": "en",
        }
    ]
    assert announced["programming_ticket"]["remote_update"] == {
        "starts_at": window[0].isoformat(),
        "ends_at": window[1].isoformat(),
    }


# The RPCs ---------------------------------------------------------------------------------


async def test_a_developer_schedules_starts_fixes_and_ships_through_the_workflow(
    system: System,
) -> None:
    rpc = system.rpc
    dev_id = system.people.off_duty.id
    me = system.as_developer(dev_id)
    prog_id = await system.register("LOW")
    await system.start_workflow(system.state(prog_id, "LOW"))
    await eventually(lambda: _status_is(system, prog_id, "OPEN", seq=1))

    planned = datetime(2026, 12, 15, tzinfo=UTC)
    scheduled = await rpc.Schedule(
        epb.ScheduleRequest(id=prog_id, target_release="4.2", planned_date=ts(planned)),
        metadata=me,
    )
    assert scheduled.status == epb.PROG_STATUS_SCHEDULED
    assert scheduled.target_release == "4.2"
    assert scheduled.planned_date.ToDatetime(tzinfo=UTC) == planned
    # The store answers the same right after (the update returns once it is recorded).
    shown = await rpc.GetProgrammingTicket(epb.GetProgrammingTicketRequest(id=prog_id), metadata=me)
    assert (shown.status, shown.target_release) == (epb.PROG_STATUS_SCHEDULED, "4.2")
    queue = await rpc.ListProgrammingTickets(
        epb.ListProgrammingTicketsRequest(release="4.2"), metadata=me
    )
    assert [t.id for t in queue.tickets] == [prog_id]

    # Admin and service tokens must name the developer; a developer acts as themselves.
    err = await rpc_error(
        rpc.StartWork(epb.StartWorkRequest(id=prog_id), metadata=bearer_metadata(ADMIN))
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "developer_id" in err.details()
    err = await rpc_error(
        rpc.StartWork(
            epb.StartWorkRequest(id=prog_id, developer_id=system.people.on_call.id), metadata=me
        )
    )
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED

    started = await rpc.StartWork(epb.StartWorkRequest(id=prog_id), metadata=me)
    assert (started.status, started.assignee_id) == (epb.PROG_STATUS_IN_PROGRESS, dev_id)
    err = await rpc_error(rpc.StartWork(epb.StartWorkRequest(id=prog_id), metadata=me))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert f"P-{prog_id}" in err.details() and "IN_PROGRESS" in err.details()

    fixed = await rpc.MarkFixed(
        epb.MarkFixedRequest(id=prog_id, fix_version="4.2.1", notes="null check"), metadata=me
    )
    assert (fixed.status, fixed.fix_version, fixed.fix_notes) == (
        epb.PROG_STATUS_FIXED,
        "4.2.1",
        "null check",
    )

    # Bad input never reaches the workflow.
    for bad in (
        epb.ShipUpdateRequest(id=prog_id, release_notes="  "),
        epb.ShipUpdateRequest(
            id=prog_id,
            release_notes="x",
            remote_update=epb.RemoteUpdateWindow(
                starts_at=ts(planned), ends_at=ts(planned - timedelta(hours=1))
            ),
        ),
    ):
        err = await rpc_error(rpc.ShipUpdate(bad, metadata=me))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    err = await rpc_error(rpc.Cancel(epb.CancelProgrammingTicketRequest(id=prog_id), metadata=me))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "reason" in err.details()

    shipped = await rpc.ShipUpdate(
        epb.ShipUpdateRequest(id=prog_id, release_notes="Corretta la stampa della fattura"),
        metadata=me,
    )
    assert shipped.status == epb.PROG_STATUS_RELEASED
    assert shipped.release_notes == "Corretta la stampa della fattura"
    # RELEASED is final: the workflow has ended, the store says why nothing more is legal.
    await system.client.get_workflow_handle(progticket_workflow_id(prog_id)).result()
    err = await rpc_error(
        rpc.Cancel(epb.CancelProgrammingTicketRequest(id=prog_id, reason="oops"), metadata=me)
    )
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "RELEASED" in err.details()

    events = await prog_events(system.nats_url, prog_id)
    assert [body["type"] for _, _, body in events] == [
        "created",
        "scheduled",
        "started",
        "fixed",
        "shipped",
    ]
    assert [msg_id for _, msg_id, _ in events] == [prog_event_id(prog_id, n) for n in range(1, 6)]
    assert all(body["recipients"] == [] for _, _, body in events)
    shipped_event = events[-1][2]
    assert shipped_event["programming_ticket"]["release_notes"] == (
        "Corretta la stampa della fattura"
    )
    assert shipped_event["actor"]["id"] == dev_id


async def test_high_urgency_escalates_to_the_lead_and_a_remote_update_tells_the_referents(
    system: System,
) -> None:
    rpc = system.rpc
    lead = system.as_developer(system.people.lead.id, Role.TEAM_LEAD)
    prog_id = await system.register("HIGH")
    await system.start_workflow(
        system.state(prog_id, "HIGH"), start_work_within_seconds=1, remote_update_notice_seconds=1
    )
    await eventually(lambda: _status_is(system, prog_id, "OPEN", seq=2), timeout=30)
    shown = await rpc.GetProgrammingTicket(
        epb.GetProgrammingTicketRequest(id=prog_id), metadata=lead
    )
    assert shown.escalated_to_lead and shown.HasField("start_work_due")

    # A team lead names the developer who takes it.
    dev_id = system.people.on_call.id
    started = await rpc.StartWork(
        epb.StartWorkRequest(id=prog_id, developer_id=dev_id), metadata=lead
    )
    assert started.assignee_id == dev_id
    await rpc.MarkFixed(epb.MarkFixedRequest(id=prog_id, fix_version="4.3"), metadata=lead)
    starts = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    shipped = await rpc.ShipUpdate(
        epb.ShipUpdateRequest(
            id=prog_id,
            release_notes="Aggiornamento remoto",
            remote_update=epb.RemoteUpdateWindow(
                starts_at=ts(starts), ends_at=ts(starts + timedelta(seconds=2))
            ),
            developer_id=dev_id,
        ),
        metadata=bearer_metadata(SERVICE),
    )
    assert shipped.status == epb.PROG_STATUS_RELEASED
    assert shipped.remote_update.starts_at.ToDatetime(tzinfo=UTC) == starts
    await asyncio.wait_for(
        system.client.get_workflow_handle(progticket_workflow_id(prog_id)).result(), 60
    )

    events = await prog_events(system.nats_url, prog_id)
    kinds = [body["type"] for _, _, body in events]
    assert kinds == [
        "created",
        "start_overdue",
        "started",
        "fixed",
        "shipped",
        "remote_update_announced",
        "remote_update_completed",
    ]
    recipients = {body["type"]: [r["email"] for r in body["recipients"]] for _, _, body in events}
    assert recipients["created"] == [system.people.on_call.email]
    assert recipients["start_overdue"] == [system.people.lead.email]
    referent = [system.people.referent.email]
    assert recipients["remote_update_announced"] == referent
    assert recipients["remote_update_completed"] == referent
    assert recipients["started"] == recipients["shipped"] == []


async def test_the_queue_is_ordered_by_urgency_then_age_with_stable_pages(system: System) -> None:
    rpc = system.rpc
    me = system.as_developer(system.people.off_duty.id)
    ids = {}
    for urgency in ("SECONDARY", "LOW", "HIGH", "AVERAGE", "HIGH", "LOW"):
        ids.setdefault(urgency, []).append(await system.register(urgency))
    expected = [*ids["HIGH"], *ids["AVERAGE"], *ids["LOW"], *ids["SECONDARY"]]

    seen: list[int] = []
    token = ""
    while True:
        page = await rpc.ListProgrammingTickets(
            epb.ListProgrammingTicketsRequest(page_size=2, page_token=token), metadata=me
        )
        assert len(page.tickets) <= 2
        seen += [t.id for t in page.tickets]
        if len(seen) == 2:
            # An older HIGH ticket arriving after the first page sorts before it: the pages
            # still to come do not shift (nothing repeated, nothing skipped).
            early = await system.register("HIGH", created_at=datetime.now(UTC) - timedelta(days=1))
        token = page.next_page_token
        if not token:
            break
    assert seen == expected
    first = await rpc.ListProgrammingTickets(
        epb.ListProgrammingTicketsRequest(page_size=1), metadata=me
    )
    assert [t.id for t in first.tickets] == [early]

    high = await rpc.ListProgrammingTickets(
        epb.ListProgrammingTicketsRequest(
            urgencies=[epb.PROG_URGENCY_HIGH], statuses=[epb.PROG_STATUS_OPEN]
        ),
        metadata=me,
    )
    assert len(high.tickets) == 3 and all(t.urgency == epb.PROG_URGENCY_HIGH for t in high.tickets)
    none = await rpc.ListProgrammingTickets(
        epb.ListProgrammingTicketsRequest(statuses=[epb.PROG_STATUS_FIXED]), metadata=me
    )
    assert list(none.tickets) == []
    mine = await rpc.ListProgrammingTickets(
        epb.ListProgrammingTicketsRequest(support_ticket_id=987, page_size=500), metadata=me
    )
    assert len(mine.tickets) == 7

    for request, field in (
        (epb.ListProgrammingTicketsRequest(page_size=-1), "page_size"),
        (epb.ListProgrammingTicketsRequest(page_size=501), "page_size"),
        (epb.ListProgrammingTicketsRequest(page_token="not-a-token"), "page_token"),
        (epb.ListProgrammingTicketsRequest(urgencies=[9]), "urgencies"),  # type: ignore[list-item]
        (epb.ListProgrammingTicketsRequest(statuses=[0]), "statuses"),  # type: ignore[list-item]
    ):
        err = await rpc_error(rpc.ListProgrammingTickets(request, metadata=me))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, field
        assert field in err.details()


async def test_unknown_programming_tickets_are_not_found(system: System) -> None:
    rpc = system.rpc
    me = system.as_developer(system.people.off_duty.id)
    missing = 424242
    for call in (
        rpc.GetProgrammingTicket(epb.GetProgrammingTicketRequest(id=missing), metadata=me),
        rpc.StartWork(epb.StartWorkRequest(id=missing), metadata=me),
        rpc.Schedule(epb.ScheduleRequest(id=missing, target_release="1"), metadata=me),
        rpc.MarkFixed(epb.MarkFixedRequest(id=missing, fix_version="1"), metadata=me),
        rpc.ShipUpdate(epb.ShipUpdateRequest(id=missing, release_notes="x"), metadata=me),
        rpc.Cancel(epb.CancelProgrammingTicketRequest(id=missing, reason="x"), metadata=me),
    ):
        err = await rpc_error(call)
        assert err.code() == grpc.StatusCode.NOT_FOUND, err
        assert f"programming ticket {missing}" in err.details()
    err = await rpc_error(rpc.GetProgrammingTicket(epb.GetProgrammingTicketRequest(), metadata=me))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    # A support agent has no business in the developers' queue.
    agent = bearer_metadata(
        SIGNER.access_token(Principal(role=Role.AGENT, kind="AGENT", id=system.stack.agent_id))
    )
    err = await rpc_error(
        rpc.ListProgrammingTickets(epb.ListProgrammingTicketsRequest(), metadata=agent)
    )
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_cancel_records_the_reason_and_ends_the_ticket(system: System) -> None:
    rpc = system.rpc
    me = system.as_developer(system.people.off_duty.id)
    prog_id = await system.register("AVERAGE")
    await system.start_workflow(system.state(prog_id, "AVERAGE"))
    await eventually(lambda: _status_is(system, prog_id, "OPEN", seq=1))
    cancelled = await rpc.Cancel(
        epb.CancelProgrammingTicketRequest(id=prog_id, reason="non è un bug: configurazione"),
        metadata=me,
    )
    assert cancelled.status == epb.PROG_STATUS_CANCELLED
    assert cancelled.cancel_reason == "non è un bug: configurazione"
    await system.client.get_workflow_handle(progticket_workflow_id(prog_id)).result()
    err = await rpc_error(
        rpc.ShipUpdate(epb.ShipUpdateRequest(id=prog_id, release_notes="x"), metadata=me)
    )
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "CANCELLED" in err.details()
    events = await prog_events(system.nats_url, prog_id)
    assert [body["type"] for _, _, body in events] == ["created", "cancelled"]
    assert events[-1][2]["programming_ticket"]["cancel_reason"] == "non è un bug: configurazione"


async def _status_is(system: System, prog_id: int, status: str, seq: int) -> bool:
    async with system.dev.sessions() as session:
        row = await session.get(m.ProgrammingTicket, prog_id)
        return row is not None and row.status == status and row.event_seq >= seq


async def test_a_workflow_started_without_registering_still_lands_in_the_store(
    system: System,
) -> None:
    """An operator (or a test) may start ``progticket-<id>`` by hand: its first event
    creates the row, and later registrations still get fresh IDs."""
    registered = await system.register("LOW")
    by_hand = registered + 10
    await system.start_workflow(system.state(by_hand, "SECONDARY"))
    await eventually(lambda: _status_is(system, by_hand, "OPEN", seq=1))
    got = await system.rpc.GetProgrammingTicket(
        epb.GetProgrammingTicketRequest(id=by_hand), metadata=bearer_metadata(ADMIN)
    )
    assert got.urgency == epb.PROG_URGENCY_SECONDARY
    after = await system.register("LOW")
    assert after not in (registered, by_hand)
    started = await system.rpc.StartWork(
        epb.StartWorkRequest(id=by_hand, developer_id=system.people.off_duty.id),
        metadata=bearer_metadata(ADMIN),
    )
    assert started.status == epb.PROG_STATUS_IN_PROGRESS
