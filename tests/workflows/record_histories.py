"""Record the ticket workflow's histories that the replay test keeps replaying.

Run ``python -m tests.workflows.record_histories`` only when a deliberate,
patched change of the workflow needs fresh histories; keep the old files too,
so that running tickets started before the change stay replayable.
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from datetime import timedelta
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from services.common.embedded import binary, start_nats
from services.common.temporal_client import register_search_attributes
from services.tickets import models as m
from services.tickets.readmodel import state_from_row
from services.tickets.workflow_calls import execute_update_with_start
from tests.support import TicketsStack, tickets_stack
from workflows.contracts import (
    UPDATE_ADD_COMMENT,
    UPDATE_ASSIGN,
    UPDATE_CHANGE_STATUS,
    UPDATE_CONFIRM,
    UPDATE_REOPEN,
    ActorRef,
    AssignInput,
    CommentData,
    CommentInput,
    CommentResult,
    CustomerAnswerInput,
    StatusInput,
    TicketState,
    TicketWorkflowInput,
    ticket_workflow_id,
)

HERE = Path(__file__).parent / "histories"


def _comment(author: ActorRef, body: str, visibility: str = "PUBLIC") -> CommentInput:
    return CommentInput(CommentData(uuid.uuid4().hex, visibility, author, body))


async def _advance(env: WorkflowEnvironment, delta: timedelta) -> None:
    with env.auto_time_skipping_disabled():
        await env.sleep(delta)


async def full_life(env: WorkflowEnvironment, stack: TicketsStack) -> list[tuple[str, str]]:
    tid = await stack.new_ticket()
    h = env.client.get_workflow_handle(ticket_workflow_id(tid), result_type=TicketState)
    agent, customer = ActorRef("AGENT", stack.agent_id), ActorRef("CONTACT", stack.contact_id)
    await h.execute_update(
        UPDATE_ASSIGN, AssignInput(stack.agent_id, agent), result_type=TicketState
    )
    await h.execute_update(
        UPDATE_ADD_COMMENT, _comment(agent, "Ci invia lo screenshot?"), result_type=CommentResult
    )
    await h.execute_update(
        UPDATE_CHANGE_STATUS, StatusInput("PENDING", agent), result_type=TicketState
    )
    await h.execute_update(
        UPDATE_ADD_COMMENT, _comment(customer, "Eccolo"), result_type=CommentResult
    )
    await h.execute_update(
        UPDATE_CHANGE_STATUS, StatusInput("SOLVED", agent), result_type=TicketState
    )
    await h.execute_update(
        UPDATE_REOPEN, CustomerAnswerInput(customer, "no"), result_type=TicketState
    )
    await h.execute_update(
        UPDATE_CHANGE_STATUS, StatusInput("SOLVED", agent), result_type=TicketState
    )
    await _advance(env, timedelta(days=14, minutes=1))
    await h.result()
    return [(ticket_workflow_id(tid), (await h.describe()).run_id)]


async def breaches(env: WorkflowEnvironment, stack: TicketsStack) -> list[tuple[str, str]]:
    tid = await stack.new_ticket()
    h = env.client.get_workflow_handle(ticket_workflow_id(tid), result_type=TicketState)
    agent, customer = ActorRef("AGENT", stack.agent_id), ActorRef("CONTACT", stack.contact_id)
    await _advance(env, timedelta(hours=9))
    await h.execute_update(
        UPDATE_ASSIGN, AssignInput(stack.agent_id, agent), result_type=TicketState
    )
    await h.execute_update(
        UPDATE_ADD_COMMENT, _comment(agent, "Risolto"), result_type=CommentResult
    )
    await h.execute_update(
        UPDATE_CHANGE_STATUS, StatusInput("SOLVED", agent), result_type=TicketState
    )
    await h.execute_update(UPDATE_CONFIRM, CustomerAnswerInput(customer), result_type=TicketState)
    await h.result()
    return [(ticket_workflow_id(tid), (await h.describe()).run_id)]


async def reactivated(env: WorkflowEnvironment, stack: TicketsStack) -> list[tuple[str, str]]:
    tid = await stack.new_ticket()
    h = env.client.get_workflow_handle(ticket_workflow_id(tid), result_type=TicketState)
    agent, customer = ActorRef("AGENT", stack.agent_id), ActorRef("CONTACT", stack.contact_id)
    await h.execute_update(
        UPDATE_ASSIGN, AssignInput(stack.agent_id, agent), result_type=TicketState
    )
    await h.execute_update(
        UPDATE_CHANGE_STATUS, StatusInput("CLOSED", agent), result_type=TicketState
    )
    await h.result()
    first = (await h.describe()).run_id
    async with stack.sessions() as session:
        row = await session.get(m.Ticket, tid)
        org = await session.get(m.Organization, stack.org_id)
        assert row is not None and org is not None
        state = state_from_row(row, org, 14 * 86400)
    await execute_update_with_start(
        env.client,
        TicketWorkflowInput(state=state, start="reactivated"),
        row.subject,
        UPDATE_ADD_COMMENT,
        CommentInput(_comment(customer, "Di nuovo").comment, reactivate=True),
        CommentResult,
        uuid.uuid4().hex,
    )
    await h.execute_update(
        UPDATE_CHANGE_STATUS, StatusInput("CLOSED", agent), result_type=TicketState
    )
    latest = env.client.get_workflow_handle(ticket_workflow_id(tid), result_type=TicketState)
    await latest.result()
    return [
        (ticket_workflow_id(tid), first),
        (ticket_workflow_id(tid), (await latest.describe()).run_id),
    ]


async def main() -> None:
    HERE.mkdir(exist_ok=True)
    nats = start_nats(None)
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary("temporal-test-server")
    )
    try:
        await register_search_attributes(env.client, assume_none=True)
        with tempfile.TemporaryDirectory() as tmp:
            db_url = f"sqlite:///{tmp}/record.db"
            async with tickets_stack(env.client, db_url, nats.addresses["nats"]) as stack:
                for scenario in (full_life, breaches, reactivated):
                    for n, (wid, run_id) in enumerate(await scenario(env, stack)):
                        history = await env.client.get_workflow_handle(
                            wid, run_id=run_id
                        ).fetch_history()
                        name = f"ticket_{scenario.__name__}_run{n + 1}.json"
                        (HERE / name).write_text(history.to_json())
                        print("recorded", name, len(history.events), "events")
    finally:
        await env.shutdown()
        nats.stop()


if __name__ == "__main__":
    asyncio.run(main())
