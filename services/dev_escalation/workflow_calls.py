"""Talking to programming-ticket workflows: updates, and their failures as gRPC codes."""

from __future__ import annotations

from typing import Any

from temporalio.client import Client

from services.common import workflow_updates
from services.common.messages.programming import prog_display_id
from workflows.prog_contracts import progticket_workflow_id


async def execute_update(
    client: Client, prog_id: int, update: str, arg: Any, result_type: type[Any], update_id: str
) -> Any:
    """Run an update on ``progticket-<id>``; raises ``RpcError`` or ``WorkflowGone``."""
    return await workflow_updates.execute_update(
        client,
        progticket_workflow_id(prog_id),
        prog_display_id(prog_id),
        update,
        arg,
        result_type,
        update_id,
    )
