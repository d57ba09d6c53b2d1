"""Talking to ticket workflows: start, update, and mapping their failures to gRPC codes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import grpc
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from services.common.rpc_errors import RpcError
from workflows.contracts import (
    ERR_ILLEGAL_TRANSITION,
    ERR_INVALID,
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


class WorkflowGone(Exception):
    """The ticket's workflow is not running (closed, or never started)."""


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


def map_failure(err: BaseException, ticket_id: int) -> RpcError | WorkflowGone:
    """The gRPC status a caller sees for a failed update."""
    if isinstance(err, WorkflowUpdateFailedError):
        cause = err.cause
        if isinstance(cause, ApplicationError):
            if cause.type == ERR_ILLEGAL_TRANSITION:
                return RpcError(
                    grpc.StatusCode.FAILED_PRECONDITION, f"#{ticket_id}: {cause.message}"
                )
            if cause.type == ERR_INVALID:
                return RpcError(grpc.StatusCode.INVALID_ARGUMENT, cause.message)
        return RpcError(grpc.StatusCode.INTERNAL, f"#{ticket_id}: update failed: {cause or err}")
    if isinstance(err, RPCError) and err.status == RPCStatusCode.NOT_FOUND:
        return WorkflowGone(str(err))
    if isinstance(err, WorkflowUpdateRPCTimeoutOrCancelledError):
        return RpcError(
            grpc.StatusCode.UNAVAILABLE, f"#{ticket_id}: the ticket did not answer in time"
        )
    if isinstance(err, RPCError):
        return RpcError(
            grpc.StatusCode.UNAVAILABLE, f"#{ticket_id}: workflow service: {err.message}"
        )
    raise err


async def execute_update(
    client: Client, ticket_id: int, update: str, arg: Any, result_type: type[Any], update_id: str
) -> Any:
    """Run an update on the ticket's running workflow; raises ``RpcError`` or ``WorkflowGone``."""
    handle = client.get_workflow_handle(ticket_workflow_id(ticket_id))
    try:
        return await handle.execute_update(
            update,
            arg,
            id=update_id,
            result_type=result_type,
            rpc_timeout=timedelta(seconds=60),
        )
    except (WorkflowUpdateFailedError, RPCError, WorkflowUpdateRPCTimeoutOrCancelledError) as err:
        raise map_failure(err, ticket_id) from err


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
            rpc_timeout=timedelta(seconds=60),
        )
    except (WorkflowUpdateFailedError, RPCError, WorkflowUpdateRPCTimeoutOrCancelledError) as err:
        raise map_failure(err, inp.state.ticket_id) from err
