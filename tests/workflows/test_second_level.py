"""The second level on the time-skipping test server (seed 002): programming tickets as
child workflows, their timers, and the support ticket coming back for verification. Real
tickets and dev_escalation activities, store and nats-server; calls over gRPC."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from temporalio.testing import WorkflowEnvironment

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import dev_escalation_pb2 as epb
from helpdesk.v1 import tickets_pb2 as tpb
from tests.second_level import MD, SecondLevel, prog_events, second_level
from tests.support import eventually, ticket_events
from workflows.prog_contracts import ProgState, progticket_workflow_id

pytestmark = [pytest.mark.workflow, pytest.mark.db]


async def _advance(env: WorkflowEnvironment, delta: timedelta) -> None:
    # Advance once with auto-skipping off (see the developers' guide, machine facts).
    with env.auto_time_skipping_disabled():
        await env.sleep(delta)


async def _escalate(sl: SecondLevel, urgency: int, title: str = "Crash in fatturazione") -> int:
    ticket_id = await sl.stack.new_ticket()
    await sl.tickets.AssignTicket(
        tpb.AssignTicketRequest(ticket_id=ticket_id, assignee_id=sl.stack.agent_id), metadata=MD
    )
    reply = await sl.tickets.EscalateToDevelopment(
        tpb.EscalateToDevelopmentRequest(
            ticket_id=ticket_id,
            request_id=uuid.uuid4().hex,
            title=title,
            technical_description="NullPointerException in InvoicePrinter.render",
            urgency=urgency,
            actor=sl.agent(),
        ),
        metadata=MD,
    )
    assert reply.ticket.status == pb.TICKET_STATUS_ON_HOLD
    assert reply.ticket.level == pb.SUPPORT_LEVEL_L2
    assert reply.ticket.hold_reason == pb.HOLD_REASON_DEVELOPMENT
    return reply.programming_ticket.id


def _ts(when: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(when)
    return stamp


async def _back_open(sl: SecondLevel, prog_id: int) -> pb.Ticket:
    """The support ticket, once its workflow has taken the programming ticket's outcome."""

    async def check() -> pb.Ticket | None:
        ticket = await _ticket_of(sl, prog_id)
        return ticket if ticket.status == pb.TICKET_STATUS_OPEN else None

    ticket: pb.Ticket = await eventually(check)
    return ticket


async def _ticket_of(sl: SecondLevel, prog_id: int) -> pb.Ticket:
    prog = await sl.dev.GetProgrammingTicket(
        epb.GetProgrammingTicketRequest(id=prog_id), metadata=MD
    )
    return await sl.tickets.GetTicket(tpb.GetTicketRequest(id=prog.support_ticket_id), metadata=MD)


async def test_high_tells_on_call_at_once_and_the_lead_when_nobody_starts(
    time_skipping_env: WorkflowEnvironment, database_url: str, nats_url: str
) -> None:
    env = time_skipping_env
    async with second_level(env.client, database_url, nats_url) as sl:
        prog_id = await _escalate(sl, epb.PROG_URGENCY_HIGH)
        created = (await prog_events(nats_url, prog_id))[0]
        assert created["type"] == "created"
        assert [r["id"] for r in created["recipients"]] == [sl.on_call_id]
        prog = await sl.dev.GetProgrammingTicket(
            epb.GetProgrammingTicketRequest(id=prog_id), metadata=MD
        )
        assert prog.status == epb.PROG_STATUS_OPEN and prog.urgency == epb.PROG_URGENCY_HIGH
        assert prog.workflow_id == progticket_workflow_id(prog_id)

        # Default start-work deadline: one hour. Nobody starts.
        await _advance(env, timedelta(minutes=50))
        assert [e["type"] for e in await prog_events(nats_url, prog_id, 2)] == ["created"]
        await _advance(env, timedelta(minutes=15))
        events = await prog_events(nats_url, prog_id)
        assert [e["type"] for e in events] == ["created", "start_overdue"]
        assert [r["id"] for r in events[1]["recipients"]] == [sl.lead_id]
        prog = await sl.dev.GetProgrammingTicket(
            epb.GetProgrammingTicketRequest(id=prog_id), metadata=MD
        )
        assert prog.escalated_to_lead

        # Starting late is still possible; starting twice is not.
        dev_md = MD
        started = await sl.dev.StartWork(
            epb.StartWorkRequest(id=prog_id, developer_id=sl.on_call_id), metadata=dev_md
        )
        assert started.status == epb.PROG_STATUS_IN_PROGRESS
        assert started.assignee_id == sl.on_call_id
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await sl.dev.StartWork(
                epb.StartWorkRequest(id=prog_id, developer_id=sl.on_call_id), metadata=dev_md
            )
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_low_waits_for_schedule_and_ship_then_the_ticket_awaits_verification(
    time_skipping_env: WorkflowEnvironment, database_url: str, nats_url: str
) -> None:
    env = time_skipping_env
    async with second_level(env.client, database_url, nats_url) as sl:
        prog_id = await _escalate(sl, epb.PROG_URGENCY_LOW)
        await _advance(env, timedelta(days=10))
        assert [e["type"] for e in await prog_events(nats_url, prog_id, 2)] == ["created"]
        ticket = await _ticket_of(sl, prog_id)
        assert ticket.status == pb.TICKET_STATUS_ON_HOLD

        # Solving while the programming ticket is open is refused, and changes nothing.
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await sl.tickets.ChangeStatus(
                tpb.ChangeStatusRequest(
                    ticket_id=ticket.id, status=pb.TICKET_STATUS_SOLVED, actor=sl.agent()
                ),
                metadata=MD,
            )
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert f"P-{prog_id}" in (err.value.details() or "")

        dev = sl.on_call_id
        planned = datetime(2027, 1, 15, tzinfo=UTC)
        scheduled = await sl.dev.Schedule(
            epb.ScheduleRequest(
                id=prog_id, target_release="2.4", planned_date=_ts(planned), developer_id=dev
            ),
            metadata=MD,
        )
        assert scheduled.status == epb.PROG_STATUS_SCHEDULED
        assert scheduled.target_release == "2.4"
        await sl.dev.MarkFixed(
            epb.MarkFixedRequest(id=prog_id, fix_version="2.4.0", notes="guard", developer_id=dev),
            metadata=MD,
        )
        shipped = await sl.dev.ShipUpdate(
            epb.ShipUpdateRequest(
                id=prog_id,
                release_notes="La stampa delle fatture ora funziona anche senza logo.",
                developer_id=dev,
            ),
            metadata=MD,
        )
        assert shipped.status == epb.PROG_STATUS_RELEASED

        handle = env.client.get_workflow_handle(
            progticket_workflow_id(prog_id), result_type=ProgState
        )
        final = await handle.result()
        assert final.status == "RELEASED" and final.parent_told

        ticket = await _back_open(sl, prog_id)
        assert ticket.awaiting_verification
        assert [(p.id, p.status) for p in ticket.programming_tickets] == [(prog_id, "RELEASED")]
        shipped_events = [
            e
            for e in await ticket_events(nats_url, ticket.id)
            if e["type"] == "development_update_shipped"
        ]
        assert len(shipped_events) == 1
        assert "senza logo" in shipped_events[0]["detail"]

        # Closing after verification needs the hours; then it closes.
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await sl.tickets.ChangeStatus(
                tpb.ChangeStatusRequest(
                    ticket_id=ticket.id, status=pb.TICKET_STATUS_CLOSED, actor=sl.agent()
                ),
                metadata=MD,
            )
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "hours" in (err.value.details() or "")
        log = tpb.LogTimeRequest(
            ticket_id=ticket.id, request_id="t-1", hours=1.5, note="verifica", actor=sl.agent()
        )
        await sl.tickets.LogTime(log, metadata=MD)
        again = await sl.tickets.LogTime(log, metadata=MD)  # a retry adds nothing
        assert again.hours_spent == pytest.approx(1.5)
        closed = await sl.tickets.ChangeStatus(
            tpb.ChangeStatusRequest(
                ticket_id=ticket.id, status=pb.TICKET_STATUS_CLOSED, actor=sl.agent()
            ),
            metadata=MD,
        )
        assert closed.status == pb.TICKET_STATUS_CLOSED
        assert closed.hours_spent == pytest.approx(1.5)
        assert not closed.awaiting_verification


async def test_remote_update_window_sends_its_two_messages_at_the_right_times(
    time_skipping_env: WorkflowEnvironment, database_url: str, nats_url: str
) -> None:
    env = time_skipping_env
    async with second_level(env.client, database_url, nats_url) as sl:
        prog_id = await _escalate(sl, epb.PROG_URGENCY_AVERAGE)
        dev = sl.on_call_id
        await sl.dev.StartWork(epb.StartWorkRequest(id=prog_id, developer_id=dev), metadata=MD)
        await sl.dev.MarkFixed(
            epb.MarkFixedRequest(id=prog_id, fix_version="2.3.1", developer_id=dev), metadata=MD
        )
        now = await env.get_current_time()
        starts = now + timedelta(days=3)
        ends = starts + timedelta(hours=2)
        await sl.dev.ShipUpdate(
            epb.ShipUpdateRequest(
                id=prog_id,
                release_notes="Correzione del calcolo IVA.",
                remote_update=epb.RemoteUpdateWindow(starts_at=_ts(starts), ends_at=_ts(ends)),
                developer_id=dev,
            ),
            metadata=MD,
        )

        def types(events: list[dict[str, object]]) -> list[object]:
            return [e["type"] for e in events]

        # Told a day in advance (HELPDESK_REMOTE_UPDATE_NOTICE default), not before.
        await _advance(env, timedelta(days=1, hours=23))
        assert "remote_update_announced" not in types(await prog_events(nats_url, prog_id, 2))
        await _advance(env, timedelta(hours=2))
        events = await prog_events(nats_url, prog_id)
        announced = [e for e in events if e["type"] == "remote_update_announced"]
        assert len(announced) == 1
        assert [r["id"] for r in announced[0]["recipients"]] == [sl.referent_id]
        assert "remote_update_completed" not in types(events)
        ticket = await _ticket_of(sl, prog_id)
        assert ticket.status == pb.TICKET_STATUS_ON_HOLD  # not verified before the update

        # The window ends: the second message, and the support ticket comes back.
        await _advance(env, timedelta(days=1, hours=3))
        events = await prog_events(nats_url, prog_id)
        assert types(events).count("remote_update_completed") == 1
        done = next(e for e in events if e["type"] == "remote_update_completed")
        assert datetime.fromisoformat(done["occurred_at"]) >= ends
        ticket = await _back_open(sl, prog_id)
        assert ticket.awaiting_verification


async def test_cancel_returns_the_ticket_to_open_with_the_reason(
    time_skipping_env: WorkflowEnvironment, database_url: str, nats_url: str
) -> None:
    env = time_skipping_env
    async with second_level(env.client, database_url, nats_url) as sl:
        prog_id = await _escalate(sl, epb.PROG_URGENCY_SECONDARY)
        cancelled = await sl.dev.Cancel(
            epb.CancelProgrammingTicketRequest(
                id=prog_id, reason="comportamento previsto", developer_id=sl.on_call_id
            ),
            metadata=MD,
        )
        assert cancelled.status == epb.PROG_STATUS_CANCELLED
        await env.client.get_workflow_handle(progticket_workflow_id(prog_id)).result()
        ticket = await _back_open(sl, prog_id)
        assert not ticket.awaiting_verification
        history = await sl.tickets.GetTicketHistory(
            tpb.GetTicketHistoryRequest(ticket_id=ticket.id), metadata=MD
        )
        assert any("comportamento previsto" in e.detail for e in history.events)
        # Shipping a cancelled programming ticket is refused.
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await sl.dev.ShipUpdate(
                epb.ShipUpdateRequest(id=prog_id, release_notes="x", developer_id=sl.on_call_id),
                metadata=MD,
            )
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_detaching_lets_the_ticket_be_solved_and_the_child_goes_on(
    time_skipping_env: WorkflowEnvironment, database_url: str, nats_url: str
) -> None:
    env = time_skipping_env
    async with second_level(env.client, database_url, nats_url) as sl:
        prog_id = await _escalate(sl, epb.PROG_URGENCY_LOW)
        ticket = await _ticket_of(sl, prog_id)
        second = await sl.tickets.EscalateToDevelopment(
            tpb.EscalateToDevelopmentRequest(
                ticket_id=ticket.id,
                request_id="second",
                title="Lentezza report",
                urgency=epb.PROG_URGENCY_SECONDARY,
                actor=sl.agent(),
            ),
            metadata=MD,
        )
        other = second.programming_ticket.id
        assert other != prog_id
        for target in (prog_id, other):
            await sl.tickets.DetachProgrammingTicket(
                tpb.DetachProgrammingTicketRequest(
                    ticket_id=ticket.id,
                    programming_ticket_id=target,
                    reason="risolto con una configurazione",
                    actor=sl.agent(),
                ),
                metadata=MD,
            )
        ticket = await sl.tickets.GetTicket(tpb.GetTicketRequest(id=ticket.id), metadata=MD)
        assert ticket.status == pb.TICKET_STATUS_OPEN
        assert all(p.detached for p in ticket.programming_tickets)
        solved = await sl.tickets.ChangeStatus(
            tpb.ChangeStatusRequest(
                ticket_id=ticket.id, status=pb.TICKET_STATUS_SOLVED, actor=sl.agent()
            ),
            metadata=MD,
        )
        assert solved.status == pb.TICKET_STATUS_SOLVED
        # The detached programming ticket goes on, and ships without touching the ticket.
        prog = await sl.dev.GetProgrammingTicket(
            epb.GetProgrammingTicketRequest(id=prog_id), metadata=MD
        )
        assert prog.status == epb.PROG_STATUS_OPEN
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await sl.tickets.DetachProgrammingTicket(
                tpb.DetachProgrammingTicketRequest(
                    ticket_id=ticket.id, programming_ticket_id=999_999, reason="x", actor=sl.agent()
                ),
                metadata=MD,
            )
        assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_third_party_hold_reminds_the_assignee_every_two_business_days(
    time_skipping_env: WorkflowEnvironment, database_url: str, nats_url: str
) -> None:
    env = time_skipping_env
    async with second_level(env.client, database_url, nats_url) as sl:
        ticket_id = await sl.stack.new_ticket()
        await sl.tickets.AssignTicket(
            tpb.AssignTicketRequest(ticket_id=ticket_id, assignee_id=sl.stack.agent_id),
            metadata=MD,
        )
        held = await sl.tickets.HoldForThirdParty(
            tpb.HoldForThirdPartyRequest(
                ticket_id=ticket_id,
                third_party_name="Telecom Italia",
                third_party_reference="TT-4471",
                actor=sl.agent(),
            ),
            metadata=MD,
        )
        assert held.status == pb.TICKET_STATUS_ON_HOLD
        assert held.hold_reason == pb.HOLD_REASON_THIRD_PARTY
        assert held.third_party_name == "Telecom Italia"

        def reminders(events: list[dict[str, object]]) -> int:
            return sum(1 for e in events if e["type"] == "third_party_reminder")

        # Two business days are at least two calendar days; a week holds two or three.
        await _advance(env, timedelta(days=1, hours=12))
        assert reminders(await ticket_events(nats_url, ticket_id, 2)) == 0
        await _advance(env, timedelta(days=6))

        async def reminded_twice() -> int:
            # The timers have fired; their recording may still be on its way to the stream.
            found = reminders(await ticket_events(nats_url, ticket_id, 2))
            return found if found >= 2 else 0

        count = await eventually(reminded_twice, timeout=30)
        assert 2 <= count <= 3
        reminder = next(
            e
            for e in await ticket_events(nats_url, ticket_id)
            if e["type"] == "third_party_reminder"
        )
        assert "Telecom Italia" in reminder["detail"] and "TT-4471" in reminder["detail"]

        # Back from the third party: the reminders stop.
        await sl.tickets.ChangeStatus(
            tpb.ChangeStatusRequest(
                ticket_id=ticket_id, status=pb.TICKET_STATUS_OPEN, actor=sl.agent()
            ),
            metadata=MD,
        )
        await _advance(env, timedelta(days=7))
        assert reminders(await ticket_events(nats_url, ticket_id)) == count


async def test_a_merge_moves_the_programming_ticket_and_later_messages(
    time_skipping_env: WorkflowEnvironment, database_url: str, nats_url: str
) -> None:
    env = time_skipping_env
    async with second_level(env.client, database_url, nats_url) as sl:
        prog_id = await _escalate(sl, epb.PROG_URGENCY_AVERAGE)
        source = await _ticket_of(sl, prog_id)
        target_id = await sl.stack.new_ticket("Fattura non stampa (stesso problema)")
        target = await sl.tickets.MergeTickets(
            tpb.MergeTicketsRequest(
                source_ticket_id=source.id,
                target_ticket_id=target_id,
                reason="stesso problema",
                actor=sl.agent(),
            ),
            metadata=MD,
        )
        assert target.id == target_id

        async def moved() -> pb.Ticket | None:
            t = await sl.tickets.GetTicket(tpb.GetTicketRequest(id=target_id), metadata=MD)
            return t if [p.id for p in t.programming_tickets] == [prog_id] else None

        target = await eventually(moved)
        assert target.status == pb.TICKET_STATUS_ON_HOLD and target.level == pb.SUPPORT_LEVEL_L2
        source = await sl.tickets.GetTicket(tpb.GetTicketRequest(id=source.id), metadata=MD)
        assert source.status == pb.TICKET_STATUS_CLOSED
        assert source.close_reason == pb.CLOSE_REASON_MERGED
        assert source.merged_into == target_id
        prog = await sl.dev.GetProgrammingTicket(
            epb.GetProgrammingTicketRequest(id=prog_id), metadata=MD
        )
        assert prog.support_ticket_id == target_id

        # A customer's message for the merged ticket lands on the survivor.
        answer = await sl.tickets.AddComment(
            tpb.AddCommentRequest(
                ticket_id=source.id,
                request_id=uuid.uuid4().hex,
                author=tpb.Actor(kind=pb.AUTHOR_KIND_CONTACT, id=sl.stack.contact_id),
                body="Ancora bloccato",
            ),
            metadata=MD,
        )
        assert answer.ticket.id == target_id

        # Shipping reaches the survivor, which comes back for verification.
        dev = sl.on_call_id
        await sl.dev.StartWork(epb.StartWorkRequest(id=prog_id, developer_id=dev), metadata=MD)
        await sl.dev.MarkFixed(
            epb.MarkFixedRequest(id=prog_id, fix_version="2.5", developer_id=dev), metadata=MD
        )
        await sl.dev.ShipUpdate(
            epb.ShipUpdateRequest(id=prog_id, release_notes="Risolto.", developer_id=dev),
            metadata=MD,
        )
        survivor = await _back_open(sl, prog_id)
        assert survivor.id == target_id and survivor.awaiting_verification

        # Merging into a closed ticket, or across organisations, is refused.
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await sl.tickets.MergeTickets(
                tpb.MergeTicketsRequest(
                    source_ticket_id=target_id,
                    target_ticket_id=source.id,
                    reason="x",
                    actor=sl.agent(),
                ),
                metadata=MD,
            )
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
