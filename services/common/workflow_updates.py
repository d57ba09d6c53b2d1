"""Updates on a running workflow (a ticket's, a programming ticket's) and their failures as
gRPC codes (DESIGN.md §4): an illegal move is FAILED_PRECONDITION, bad input
INVALID_ARGUMENT, a workflow that is not running ``WorkflowGone`` for the caller to decide."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import grpc
from temporalio.client import (
    Client,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from services.common import metrics
from services.common.rpc_errors import RpcError
from workflows.contracts import ERR_BUSY, ERR_ILLEGAL_TRANSITION, ERR_INVALID

# What execute_update turns into gRPC codes.
UPDATE_FAILURES = (WorkflowUpdateFailedError, RPCError, WorkflowUpdateRPCTimeoutOrCancelledError)
UPDATE_RPC_TIMEOUT = timedelta(seconds=60)


class WorkflowGone(Exception):
    """The workflow is not running (ended, or not started yet)."""


def map_failure(err: BaseException, shown: str) -> RpcError | WorkflowGone:
    """The gRPC status a caller sees for a failed update of the workflow of ``shown``
    ("#42", "P-7"), which prefixes the workflow's refusals unless they name it already."""
    if isinstance(err, WorkflowUpdateFailedError):
        cause = err.cause
        if isinstance(cause, ApplicationError):
            if cause.type == ERR_ILLEGAL_TRANSITION:
                message = cause.message
                if not message.startswith(f"{shown}:"):
                    message = f"{shown}: {message}"
                return RpcError(grpc.StatusCode.FAILED_PRECONDITION, message)
            if cause.type == ERR_INVALID:
                return RpcError(grpc.StatusCode.INVALID_ARGUMENT, cause.message)
            if cause.type == ERR_BUSY:  # refused for now: the caller retries
                return RpcError(grpc.StatusCode.UNAVAILABLE, cause.message)
        return RpcError(grpc.StatusCode.INTERNAL, f"{shown}: update failed: {cause or err}")
    if isinstance(err, RPCError) and err.status == RPCStatusCode.NOT_FOUND:
        return WorkflowGone(str(err))
    if isinstance(err, WorkflowUpdateRPCTimeoutOrCancelledError):
        return RpcError(
            grpc.StatusCode.UNAVAILABLE, f"{shown}: the workflow did not answer in time"
        )
    if isinstance(err, RPCError):
        return RpcError(grpc.StatusCode.UNAVAILABLE, f"{shown}: workflow service: {err.message}")
    raise err


async def execute_update(
    client: Client,
    workflow_id: str,
    shown: str,
    update: str,
    arg: Any,
    result_type: type[Any],
    update_id: str,
) -> Any:
    """Run an update on the running workflow; raises ``RpcError`` or ``WorkflowGone``."""
    handle = client.get_workflow_handle(workflow_id)
    try:
        result = await handle.execute_update(
            update, arg, id=update_id, result_type=result_type, rpc_timeout=UPDATE_RPC_TIMEOUT
        )
    except UPDATE_FAILURES as err:
        failure = map_failure(err, shown)
        code = failure.code if isinstance(failure, RpcError) else grpc.StatusCode.NOT_FOUND
        metrics.TICKET_UPDATES.labels(update=update, outcome=metrics.update_outcome(code)).inc()
        raise failure from err
    metrics.TICKET_UPDATES.labels(update=update, outcome="accepted").inc()
    return result
