"""Talking to ticket workflows: start, update, and mapping their failures to gRPC codes."""

from __future__ import annotations

from typing import Any

from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
)

from services.common import workflow_updates
from services.common.workflow_updates import (
    UPDATE_FAILURES,
    UPDATE_RPC_TIMEOUT,
    map_failure,
)
from workflows.contracts import (
    SA_ASSIGNEE_ID,
    SA_ORGANIZATION_ID,
    SA_SLA_BREACHED,
    SA_TICKET_ID,
    SA_TICKET_PRIORITY,
    SA_TICKET_STATUS,
    TICKET_WORKFLOW,
    WORKFLOW_TASK_QUEUE,
    TicketState,
    TicketWorkflowInput,
    ticket_workflow_id,
)


def search_attributes(s: TicketState) -> TypedSearchAttributes:
    return TypedSearchAttributes(
        [
            SearchAttributePair(SA_TICKET_ID, s.ticket_id),
            SearchAttributePair(SA_TICKET_STATUS, s.status),
            SearchAttributePair(SA_TICKET_PRIORITY, s.priority),
            SearchAttributePair(SA_ORGANIZATION_ID, s.organization_id),
            SearchAttributePair(SA_ASSIGNEE_ID, s.assignee_id),
            SearchAttributePair(SA_SLA_BREACHED, bool(s.breaches)),
        ]
    )


def start_options(inp: TicketWorkflowInput, subject: str) -> dict[str, Any]:
    s = inp.state
    return {
        "id": ticket_workflow_id(s.ticket_id),
        "task_queue": WORKFLOW_TASK_QUEUE,
        "id_conflict_policy": WorkflowIDConflictPolicy.USE_EXISTING,
        "search_attributes": search_attributes(s),
        # Shown in the Temporal UI's list and header.
        "static_summary": f"#{s.ticket_id} · {subject[:120]} · {s.organization_name}",
        "static_details": (
            f"Support ticket #{s.ticket_id} of {s.organization_name}.\n\n"
            f"Received {s.received_at.isoformat()}; priority {s.priority}."
        ),
    }


async def start_ticket_workflow(client: Client, inp: TicketWorkflowInput, subject: str) -> None:
    """Start ``ticket-<id>`` unless it is already running (idempotent)."""
    await client.start_workflow(TICKET_WORKFLOW, inp, **start_options(inp, subject))


async def execute_update(
    client: Client, ticket_id: int, update: str, arg: Any, result_type: type[Any], update_id: str
) -> Any:
    """Run an update on the ticket's running workflow; raises ``RpcError`` or ``WorkflowGone``."""
    return await workflow_updates.execute_update(
        client,
        ticket_workflow_id(ticket_id),
        f"#{ticket_id}",
        update,
        arg,
        result_type,
        update_id,
    )


async def execute_update_with_start(
    client: Client,
    inp: TicketWorkflowInput,
    subject: str,
    update: str,
    arg: Any,
    result_type: type[Any],
    update_id: str,
) -> Any:
    """Start a new run of a closed ticket's workflow together with its first update."""
    op: WithStartWorkflowOperation[Any, Any] = WithStartWorkflowOperation(
        TICKET_WORKFLOW, inp, **start_options(inp, subject)
    )
    try:
        return await client.execute_update_with_start_workflow(
            update,
            arg,
            start_workflow_operation=op,
            id=update_id,
            result_type=result_type,
            rpc_timeout=UPDATE_RPC_TIMEOUT,
        )
    except UPDATE_FAILURES as err:
        raise map_failure(err, f"#{inp.state.ticket_id}") from err
