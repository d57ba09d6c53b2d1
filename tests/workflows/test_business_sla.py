"""Service levels on business hours on the time-skipping test server, with the
real tickets activities, store and nats-server: the seed 000 calendar, the 80% warning
and the breach at their instants, and PENDING pausing the clocks."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from temporalio.testing import WorkflowEnvironment

from helpdesk.v1 import common_pb2 as pb
from services.tickets import models as m
from services.tickets.creation import NewTicket
from services.tickets.readmodel import ticket_pb
from tests.support import TicketsStack, ticket_events, tickets_stack
from workflows.contracts import (
    SA_SLA_BREACHED,
    UPDATE_ASSIGN,
    UPDATE_CHANGE_PRIORITY,
    UPDATE_CHANGE_STATUS,
    ActorRef,
    AssignInput,
    PriorityInput,
    StatusInput,
    TicketState,
    ticket_workflow_id,
)
from workflows.domain.business_time import SEED_000, add_business, business_between, is_open

pytestmark = [pytest.mark.workflow, pytest.mark.db]

ROME = ZoneInfo("Europe/Rome")
# How far the test server's clock may run on between the test's readings and the
# workflow's: it keeps real time between skips.
DRIFT_SECONDS = 30


async def _advance(env: WorkflowEnvironment, delta: timedelta) -> None:
    # Advance once with auto-skipping off (see the developers' guide, machine facts).
    with env.auto_time_skipping_disabled():
        await env.sleep(delta)


async def _advance_to(env: WorkflowEnvironment, local: datetime) -> None:
    now = await env.get_current_time()
    assert local > now
    await _advance(env, local - now)


def _next(now: datetime, weekday: int, hour: int, minute: int, working: list[int]) -> datetime:
    """The next ``weekday`` at hh:mm (Rome) from which the days ``working`` (offsets) are open."""
    day = now.astimezone(ROME).date() + timedelta(days=1)
    while True:
        at = datetime(day.year, day.month, day.day, hour, minute, tzinfo=ROME)
        if day.weekday() == weekday and all(
            is_open(
                SEED_000,
                datetime.combine(day + timedelta(days=k), datetime.min.time(), ROME)
                + timedelta(hours=10),
            )
            for k in working
        ):
            return at
        day += timedelta(days=1)


async def _high_ticket(env: WorkflowEnvironment, stack: TicketsStack) -> int:
    row, _ = await stack.creator.create(
        NewTicket(
            request_id=uuid.uuid4().hex,
            subject="Gestionale bloccato",
            description="Errore all'avvio",
            requester_id=stack.contact_id,
            channel="EMAIL",
            priority="HIGH",  # default plan: taken in charge 1 h, first feedback 4 h
            received_at=await env.get_current_time(),
        )
    )
    return row.id


def _local_minute(instant: datetime) -> datetime:
    """The instant in Rome to the minute (the test server's clock lands a few ms late)."""
    return instant.astimezone(ROME).replace(second=0, microsecond=0)


def _types(events: list[dict[str, object]]) -> list[object]:
    return [e["type"] for e in events]


async def test_friday_17_55_is_due_monday_11_55_with_warning_and_breach_on_time(
    time_skipping_env: WorkflowEnvironment, database_url: str, nats_url: str
) -> None:
    env = time_skipping_env
    async with tickets_stack(env.client, database_url, nats_url) as stack:
        friday = _next(await env.get_current_time(), 4, 17, 55, working=[0, 3])
        monday = friday + timedelta(days=3)
        await _advance_to(env, friday)
        ticket_id = await _high_ticket(env, stack)
        handle = env.client.get_workflow_handle(
            ticket_workflow_id(ticket_id), result_type=TicketState
        )
        agent = ActorRef("AGENT", stack.agent_id)
        await handle.execute_update(
            UPDATE_ASSIGN, AssignInput(stack.agent_id, agent), result_type=TicketState
        )
        row = await stack.ticket(ticket_id)
        # 35 minutes on Friday, 3 h 25 min on Monday from 08:30.
        assert row.first_feedback_due is not None
        assert _local_minute(row.first_feedback_due) == monday.replace(hour=11, minute=55)

        # 80% of 4 h is 3 h 12 min: 35 min on Friday, 2 h 37 min on Monday, so 11:07.
        await _advance_to(env, monday.replace(hour=11, minute=6))
        assert "sla_warning" not in _types(await ticket_events(nats_url, ticket_id, 2))
        await _advance(env, timedelta(minutes=2))
        events = await ticket_events(nats_url, ticket_id)
        warnings = [e for e in events if e["type"] == "sla_warning"]
        assert len(warnings) == 1 and "FIRST_FEEDBACK" in str(warnings[0]["detail"])
        assert "sla_breached" not in _types(events)

        await _advance(env, timedelta(minutes=47))  # 11:55 has passed
        breaches = [
            e for e in await ticket_events(nats_url, ticket_id) if e["type"] == "sla_breached"
        ]
        assert len(breaches) == 1 and "FIRST_FEEDBACK" in str(breaches[0]["detail"])
        row = await stack.ticket(ticket_id)
        assert row.sla_breached and [b["target"] for b in row.breaches] == ["FIRST_FEEDBACK"]
        assert (await handle.describe()).typed_search_attributes.get(SA_SLA_BREACHED) is True


async def test_two_days_pending_move_the_due_time_by_the_paused_business_time(
    time_skipping_env: WorkflowEnvironment, database_url: str, nats_url: str
) -> None:
    env = time_skipping_env
    async with tickets_stack(env.client, database_url, nats_url) as stack:
        monday = _next(await env.get_current_time(), 0, 8, 45, working=[0, 1, 2])
        await _advance_to(env, monday)
        ticket_id = await _high_ticket(env, stack)
        handle = env.client.get_workflow_handle(
            ticket_workflow_id(ticket_id), result_type=TicketState
        )
        agent = ActorRef("AGENT", stack.agent_id)
        await handle.execute_update(
            UPDATE_ASSIGN, AssignInput(stack.agent_id, agent), result_type=TicketState
        )
        due_before = (await stack.ticket(ticket_id)).first_feedback_due
        assert due_before is not None and _local_minute(due_before) == monday.replace(hour=12)

        await _advance(env, timedelta(hours=1))
        paused_at = await env.get_current_time()
        await handle.execute_update(
            UPDATE_CHANGE_STATUS, StatusInput("PENDING", agent), result_type=TicketState
        )
        assert (await stack.ticket(ticket_id)).first_feedback_due is None  # paused
        async with stack.sessions() as session:
            shown = await ticket_pb(session, await stack.ticket(ticket_id))
        clocks = {pb.SlaTarget.Name(c.target): c for c in shown.sla}
        assert clocks["SLA_TARGET_TAKEN_IN_CHARGE"].state == pb.SLA_STATE_MET
        feedback = clocks["SLA_TARGET_FIRST_FEEDBACK"]
        assert feedback.state == pb.SLA_STATE_PAUSED
        # 1 h of 4 h counted. Within half a minute: the test server's clock runs on in real
        # time between the test's readings and the workflow's (seconds on a loaded machine).
        assert abs(feedback.remaining_business_seconds - 3 * 3600) <= DRIFT_SECONDS
        resolution = clocks["SLA_TARGET_RESOLUTION"]
        assert resolution.state == pb.SLA_STATE_PAUSED
        assert abs(resolution.remaining_business_seconds - (16 - 1) * 3600) <= DRIFT_SECONDS
        await _advance(env, timedelta(days=2))
        resumed_at = await env.get_current_time()
        await handle.execute_update(
            UPDATE_CHANGE_STATUS, StatusInput("OPEN", agent), result_type=TicketState
        )
        due_after = (await stack.ticket(ticket_id)).first_feedback_due
        assert due_after is not None
        paused = business_between(SEED_000, paused_at, resumed_at)
        # (within the drift of the test's clock readings against the workflow's)
        assert abs(due_after - add_business(SEED_000, due_before, paused)) <= timedelta(
            seconds=DRIFT_SECONDS
        )
        # Wednesday at 09:45 with 3 h left: 12:45.
        assert _local_minute(due_after) == (monday + timedelta(days=2)).replace(hour=12)
        events = await ticket_events(nats_url, ticket_id)
        assert "sla_breached" not in _types(events)


async def test_a_priority_change_takes_the_new_targets_from_what_was_counted(
    time_skipping_env: WorkflowEnvironment, database_url: str, nats_url: str
) -> None:
    env = time_skipping_env
    async with tickets_stack(env.client, database_url, nats_url) as stack:
        monday = _next(await env.get_current_time(), 0, 8, 45, working=[0])
        await _advance_to(env, monday)
        # NORMAL: first feedback within 8 business hours.
        ticket_id = await stack.new_ticket(received_at=await env.get_current_time())
        handle = env.client.get_workflow_handle(
            ticket_workflow_id(ticket_id), result_type=TicketState
        )
        agent = ActorRef("AGENT", stack.agent_id)
        await handle.execute_update(
            UPDATE_ASSIGN, AssignInput(stack.agent_id, agent), result_type=TicketState
        )
        await _advance(env, timedelta(hours=1))
        state = await handle.execute_update(
            UPDATE_CHANGE_PRIORITY,
            PriorityInput("HIGH", "fermo produzione", agent),
            result_type=TicketState,
        )
        assert state.priority == "HIGH"
        row = await stack.ticket(ticket_id)
        assert row.priority == "HIGH"
        assert row.first_feedback_due is not None
        # HIGH: 4 business hours from 08:45, one of them already counted: 12:45.
        assert _local_minute(row.first_feedback_due) == monday.replace(hour=12)
        changed = [
            e for e in await ticket_events(nats_url, ticket_id) if e["type"] == "priority_changed"
        ]
        assert len(changed) == 1 and "fermo produzione" in str(changed[0]["detail"])


async def test_a_pending_ticket_reminds_the_customer_after_three_business_days(
    time_skipping_env: WorkflowEnvironment, database_url: str, nats_url: str
) -> None:
    env = time_skipping_env
    async with tickets_stack(env.client, database_url, nats_url) as stack:
        monday = _next(await env.get_current_time(), 0, 10, 0, working=[0, 1, 2, 3])
        await _advance_to(env, monday)
        ticket_id = await stack.new_ticket(received_at=await env.get_current_time())
        handle = env.client.get_workflow_handle(
            ticket_workflow_id(ticket_id), result_type=TicketState
        )
        agent = ActorRef("AGENT", stack.agent_id)
        await handle.execute_update(
            UPDATE_ASSIGN, AssignInput(stack.agent_id, agent), result_type=TicketState
        )
        await handle.execute_update(
            UPDATE_CHANGE_STATUS, StatusInput("PENDING", agent), result_type=TicketState
        )

        def reminders(events: list[dict[str, object]]) -> int:
            return sum(1 for e in events if e["type"] == "pending_reminder")

        await _advance_to(env, (monday + timedelta(days=3)).replace(hour=9, minute=59))
        assert reminders(await ticket_events(nats_url, ticket_id, 2)) == 0
        await _advance(env, timedelta(minutes=2))
        assert reminders(await ticket_events(nats_url, ticket_id)) == 1
        # The default contract does not solve by itself: still PENDING a week later.
        await _advance(env, timedelta(days=7))
        row = await stack.ticket(ticket_id)
        assert row.status == "PENDING"
        assert reminders(await ticket_events(nats_url, ticket_id)) == 1


async def test_the_contract_solves_a_silent_pending_ticket_with_the_reason(
    time_skipping_env: WorkflowEnvironment, database_url: str, nats_url: str
) -> None:
    env = time_skipping_env
    async with tickets_stack(env.client, database_url, nats_url) as stack:
        async with stack.sessions() as session:
            session.add(
                m.SupportContract(
                    organization_id=stack.org_id,
                    pending_reminder_business_days=2,
                    pending_auto_solve_business_days=3,
                    updated_at=await env.get_current_time(),
                )
            )
            await session.commit()
        monday = _next(await env.get_current_time(), 0, 10, 0, working=[0, 1, 2, 3, 4, 7])
        await _advance_to(env, monday)
        ticket_id = await stack.new_ticket(received_at=await env.get_current_time())
        handle = env.client.get_workflow_handle(
            ticket_workflow_id(ticket_id), result_type=TicketState
        )
        agent = ActorRef("AGENT", stack.agent_id)
        await handle.execute_update(
            UPDATE_ASSIGN, AssignInput(stack.agent_id, agent), result_type=TicketState
        )
        await handle.execute_update(
            UPDATE_CHANGE_STATUS, StatusInput("PENDING", agent), result_type=TicketState
        )
        # Reminder on Wednesday 10:00, solved three business days later (next Monday).
        await _advance_to(env, (monday + timedelta(days=2)).replace(hour=10, minute=1))
        events = await ticket_events(nats_url, ticket_id)
        assert _types(events).count("pending_reminder") == 1
        assert (await stack.ticket(ticket_id)).status == "PENDING"
        await _advance_to(env, (monday + timedelta(days=7)).replace(hour=10, minute=1))
        row = await stack.ticket(ticket_id)
        assert row.status == "SOLVED"
        solved = [e for e in await ticket_events(nats_url, ticket_id) if e["type"] == "solved"]
        assert len(solved) == 1 and "no answer from the customer" in str(solved[0]["detail"])
