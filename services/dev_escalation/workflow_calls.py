"""Talking to programming-ticket workflows: updates, and their failures as gRPC codes."""

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

from services.common.prog_events import prog_display_id
from services.common.rpc_errors import RpcError
from workflows.contracts import ERR_ILLEGAL_TRANSITION, ERR_INVALID
from workflows.prog_contracts import progticket_workflow_id


class WorkflowGone(Exception):
    """The programming ticket's workflow is not running (ended, or not started yet)."""


def map_failure(err: BaseException, prog_id: int) -> RpcError | WorkflowGone:
    """The gRPC status a caller sees for a failed update."""
    shown = prog_display_id(prog_id)
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
    client: Client, prog_id: int, update: str, arg: Any, result_type: type[Any], update_id: str
) -> Any:
    """Run an update on ``progticket-<id>``; raises ``RpcError`` or ``WorkflowGone``."""
    handle = client.get_workflow_handle(progticket_workflow_id(prog_id))
    try:
        return await handle.execute_update(
            update,
            arg,
            id=update_id,
            result_type=result_type,
            rpc_timeout=timedelta(seconds=60),
        )
    except (WorkflowUpdateFailedError, RPCError, WorkflowUpdateRPCTimeoutOrCancelledError) as err:
        raise map_failure(err, prog_id) from err
