"""``TicketService.MergeTickets`` (seed 004: support may merge tickets about the same
problem), and finding the ticket that survives a merge. Mixed into ``TicketServicer``.

The merged ticket's requester is told by notify (the ``merged_into`` event names the
surviving ticket) and, with the merged ticket's followers, follows the surviving one."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import tickets_pb2 as tpb
from services.common.access import principal
from services.common.rpc_errors import (
    Context,
    invalid,
    precondition,
    require_id,
    require_text,
    rpc_method,
)
from services.tickets import models as m
from services.tickets.follower_store import audit_name, carry_followers
from services.tickets.readmodel import links_of
from services.tickets.rpc_helpers import TicketRpcHelpers
from workflows.contracts import UPDATE_MERGE, MergeInput, TicketState

# A chain of merges longer than this is a loop or a mistake.
MAX_MERGE_HOPS = 20


async def survivor(session: AsyncSession, row: m.Ticket) -> m.Ticket:
    """The ticket that carries on for ``row``: itself, or where its merges lead."""
    for _ in range(MAX_MERGE_HOPS):
        if not row.merged_into:
            return row
        nxt = await session.get(m.Ticket, row.merged_into)
        if nxt is None:
            return row
        row = nxt
    return row


class MergingRpcs(TicketRpcHelpers):
    @rpc_method
    async def MergeTickets(self, request: tpb.MergeTicketsRequest, context: Context) -> pb.Ticket:
        """Closes the source (reason MERGED) into the target; programming tickets move along."""
        source_id = require_id("source_ticket_id", request.source_ticket_id)
        target_id = require_id("target_ticket_id", request.target_ticket_id)
        if source_id == target_id:
            invalid("target_ticket_id", "a ticket cannot be merged into itself")
        reason = require_text("reason", request.reason, 2000)
        async with self.sessions() as session:
            source = await self._row(session, source_id)
            target = await self._row(session, target_id)
            actor = await self._actor(session, request.actor, "actor", ("AGENT",))
        if source.organization_id != target.organization_id:
            precondition(f"#{source_id} and #{target_id} belong to different organisations")
        if target.status == "CLOSED":
            precondition(f"#{target_id} is CLOSED: merge into a live ticket")
        holding = [x for x in links_of(source) if x.holds]
        if holding and target.status == "SOLVED":
            precondition(
                f"#{target_id} is SOLVED but #{source_id} has open programming tickets:"
                " reopen the target first"
            )
        await self._update(
            source_id,
            UPDATE_MERGE,
            MergeInput(target_id, reason, actor),
            TicketState,
            f"merge-{source_id}-into-{target_id}",
        )
        async with self.sessions() as session:
            source = await self._row(session, source_id)
            target = await self._row(session, target_id)
            await carry_followers(session, source, target, audit_name(principal()))
        return await self._ticket(target_id)
