"""The ticket workflow's clocks on the time-skipping test server, with the real tickets
activities (SQLite/PostgreSQL store, real nats-server)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.support import ticket_events, tickets_stack
from workflows.contracts import (
    UPDATE_ADD_COMMENT,
    UPDATE_ASSIGN,
    UPDATE_CHANGE_STATUS,
    ActorRef,
    AssignInput,
    CommentData,
    CommentInput,
    CommentResult,
    StatusInput,
    TicketState,
    ticket_workflow_id,
)

pytestmark = [pytest.mark.workflow, pytest.mark.db]


async def _solve(env: WorkflowEnvironment, ticket_id: int, agent_id: int) -> None:
    handle = env.client.get_workflow_handle(ticket_workflow_id(ticket_id), result_type=TicketState)
    agent = ActorRef("AGENT", agent_id)
    await handle.execute_update(
        UPDATE_ASSIGN, AssignInput(agent_id, agent), result_type=TicketState
    )
    await handle.execute_update(
        UPDATE_CHANGE_STATUS, StatusInput("SOLVED", agent), result_type=TicketState
    )


async def _advance(env: WorkflowEnvironment, delta: timedelta) -> None:
    # Advance once with auto-skipping off (see DEVELOPERS.md, machine facts).
    with env.auto_time_skipping_disabled():
        await env.sleep(delta)


async def test_solved_ticket_closes_itself_after_14_days(
    time_skipping_env: WorkflowEnvironment, database_url: str, nats_url: str
) -> None:
    env = time_skipping_env
    async with tickets_stack(env.client, database_url, nats_url) as stack:
        ticket_id = await stack.new_ticket()
        await _solve(env, ticket_id, stack.agent_id)
        assert (await stack.ticket(ticket_id)).status == "SOLVED"

        await _advance(env, timedelta(days=13, hours=23))
        assert (await stack.ticket(ticket_id)).status == "SOLVED"
        await _advance(env, timedelta(hours=2))

        handle = env.client.get_workflow_handle(
            ticket_workflow_id(ticket_id), result_type=TicketState
        )
        final = await handle.result()
        assert final.status == "CLOSED"
        assert final.close_reason == "AUTO_CLOSED"
        row = await stack.ticket(ticket_id)
        assert row.status == "CLOSED" and row.close_reason == "AUTO_CLOSED"
        assert row.solved_at is not None and row.closed_at is not None
        assert row.closed_at - row.solved_at >= timedelta(days=14)
        events = await ticket_events(nats_url, ticket_id)
        closed = [e for e in events if e["type"] == "closed"]
        assert len(closed) == 1
        assert closed[0]["ticket"]["close_reason"] == "AUTO_CLOSED"
        assert closed[0]["ticket"]["requester"]["email"].endswith("@rossi.it")


async def test_customer_reply_on_day_13_cancels_auto_close(
    time_skipping_env: WorkflowEnvironment, database_url: str, nats_url: str
) -> None:
    env = time_skipping_env
    async with tickets_stack(env.client, database_url, nats_url) as stack:
        ticket_id = await stack.new_ticket()
        await _solve(env, ticket_id, stack.agent_id)
        await _advance(env, timedelta(days=13))

        handle = env.client.get_workflow_handle(
            ticket_workflow_id(ticket_id), result_type=TicketState
        )
        reply = CommentData(
            id=uuid.uuid4().hex,
            visibility="PUBLIC",
            author=ActorRef("CONTACT", stack.contact_id),
            body="Il problema si ripresenta.",
        )
        result = await handle.execute_update(
            UPDATE_ADD_COMMENT, CommentInput(comment=reply), result_type=CommentResult
        )
        assert result.reopened and result.state.status == "OPEN"

        await _advance(env, timedelta(days=3))
        row = await stack.ticket(ticket_id)
        assert row.status == "OPEN"
        assert row.auto_close_at is None
        assert row.reopen_count == 1
        types = [e["type"] for e in await ticket_events(nats_url, ticket_id)]
        assert "closed" not in types
        assert types.count("reopened") == 1

        # The next solve starts a fresh 14-day clock.
        await handle.execute_update(
            UPDATE_CHANGE_STATUS,
            StatusInput("SOLVED", ActorRef("AGENT", stack.agent_id)),
            result_type=TicketState,
        )
        await _advance(env, timedelta(days=14, minutes=5))
        final = await handle.result()
        assert final.status == "CLOSED" and final.close_reason == "AUTO_CLOSED"


async def test_long_lived_ticket_continues_as_new_keeping_its_state(
    time_skipping_env: WorkflowEnvironment, database_url: str, nats_url: str
) -> None:
    env = time_skipping_env
    async with tickets_stack(env.client, database_url, nats_url, max_history_events=40) as stack:
        ticket_id = await stack.new_ticket()
        handle = env.client.get_workflow_handle(
            ticket_workflow_id(ticket_id), result_type=TicketState
        )
        first_run = (await handle.describe()).run_id
        agent = ActorRef("AGENT", stack.agent_id)
        await handle.execute_update(
            UPDATE_ASSIGN, AssignInput(stack.agent_id, agent), result_type=TicketState
        )
        for n in range(12):
            note = CommentData(
                id=uuid.uuid4().hex, visibility="INTERNAL", author=agent, body=f"nota {n}"
            )
            await handle.execute_update(
                UPDATE_ADD_COMMENT, CommentInput(comment=note), result_type=CommentResult
            )
        state = await handle.query("state", result_type=TicketState)
        assert (await handle.describe()).run_id != first_run
        history = await env.client.get_workflow_handle(
            ticket_workflow_id(ticket_id), run_id=first_run
        ).fetch_history()
        assert history.events[-1].HasField("workflow_execution_continued_as_new_event_attributes")
        assert len(history.events) < 80
        # Nothing was lost across runs: milestones, assignee, event numbering.
        assert state.status == "OPEN" and state.assignee_id == stack.agent_id
        assert state.taken_in_charge_at is not None
        assert state.event_seq == 14
        row = await stack.ticket(ticket_id)
        assert row.event_seq == 14
        # The new run still keeps the ticket's promises: solve, and it auto-closes.
        await handle.execute_update(
            UPDATE_CHANGE_STATUS, StatusInput("SOLVED", agent), result_type=TicketState
        )
        await _advance(env, timedelta(days=14, minutes=1))
        assert (await handle.result()).close_reason == "AUTO_CLOSED"
