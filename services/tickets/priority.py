"""``TicketService.ChangePriority``: an agent overrides the priority (seed 001 tiers, seed
003: only CRITICAL requests claim URGENT from the customer side) with a reason; the
ticket's workflow recomputes the service-level due times. Mixed into ``TicketServicer``."""

from __future__ import annotations

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import tickets_pb2 as tpb
from services.common.rpc_errors import Context, require_text, rpc_method
from services.tickets.convert import required_name
from services.tickets.rpc_helpers import TicketRpcHelpers
from workflows.contracts import UPDATE_CHANGE_PRIORITY, PriorityInput, TicketState


class PriorityRpcs(TicketRpcHelpers):
    @rpc_method
    async def ChangePriority(
        self, request: tpb.ChangePriorityRequest, context: Context
    ) -> pb.Ticket:
        """Sets the priority; the clocks keep what they counted and take the new targets."""
        priority = required_name(pb.Priority, request.priority, "priority")
        reason = require_text("reason", request.reason, 2000)
        async with self.sessions() as session:
            await self._row(session, request.ticket_id)
            actor = await self._actor(session, request.actor, "actor", ("AGENT",))
        await self._update(
            request.ticket_id,
            UPDATE_CHANGE_PRIORITY,
            PriorityInput(priority, reason, actor),
            TicketState,
        )
        return await self._ticket(request.ticket_id)
