"""No silent take-over (seed 004: "collaborare senza sovrapposizioni"): a ticket another
agent holds moves to someone else only when a team lead reassigns it or the caller takes
it over with a reason; the ticket's workflow checks it again, and its ``assigned`` event
names the previous holder so that they are told."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.common.rpc_errors import invalid, precondition
from services.tickets import models as m


async def check_holder(
    session: AsyncSession,
    row: m.Ticket,
    assignee_id: int,
    take_over: bool,
    reason: str,
    may_reassign: bool,
) -> None:
    """``FAILED_PRECONDITION`` naming the holder, or ``INVALID_ARGUMENT`` for a take-over
    without a reason; nothing when the assignment may go ahead."""
    held = row.assignee_id
    if not held or held == assignee_id or may_reassign:
        return
    holder = await session.get(m.Agent, held)
    who = f"{holder.name} (agent #{held})" if holder else f"agent #{held}"
    if not take_over:
        precondition(
            f"#{row.id} is held by {who}: ask a team lead, or take it over (take_over)"
            " with a reason"
        )
    if not reason:
        invalid("reason", "is required to take over a ticket another agent holds")
