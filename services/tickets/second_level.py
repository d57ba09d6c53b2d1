"""The ``TicketService`` RPCs of the second level (seed 002) and third parties (seed 001):
escalating to development, detaching a programming ticket, waiting on a vendor, and the
hours spent. Mixed into ``TicketServicer``; every change is an update of the ticket's
workflow."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import dev_escalation_pb2 as dpb
from helpdesk.v1 import tickets_pb2 as tpb
from services.common.access import principal, scoped_key
from services.common.rpc_errors import (
    Context,
    invalid,
    not_found,
    optional_text,
    require_text,
    rpc_method,
)
from services.tickets.convert import required_name
from services.tickets.readmodel import links_of
from services.tickets.rpc_helpers import TicketRpcHelpers
from workflows.contracts import (
    UPDATE_DETACH,
    UPDATE_ESCALATE,
    UPDATE_LOG_TIME,
    UPDATE_THIRD_PARTY,
    DetachInput,
    EscalateInput,
    EscalateResult,
    LogTimeInput,
    ThirdPartyInput,
    TicketState,
)
from workflows.prog_contracts import progticket_workflow_id

if TYPE_CHECKING:
    from workflows.contracts import ActorRef

MAX_TITLE = 300
MAX_TEXT = 20_000
MAX_KEY = 200


class SecondLevelRpcs(TicketRpcHelpers):
    """EscalateToDevelopment, DetachProgrammingTicket, HoldForThirdParty, LogTime."""

    async def _agent(self, ticket_id: int, actor: tpb.Actor) -> ActorRef:
        async with self.sessions() as session:
            await self._row(session, ticket_id)
            return await self._actor(session, actor, "actor", ("AGENT",))

    @rpc_method
    async def EscalateToDevelopment(
        self, request: tpb.EscalateToDevelopmentRequest, context: Context
    ) -> tpb.EscalateToDevelopmentResponse:
        """Opens a programming ticket (child workflow ``progticket-<id>``); the ticket waits."""
        title = require_text("title", request.title, MAX_TITLE)
        description = optional_text(
            "technical_description", request.technical_description, MAX_TEXT
        )
        urgency = required_name(dpb.ProgUrgency, request.urgency, "urgency")
        key = scoped_key(
            "request_id", optional_text("request_id", request.request_id, MAX_KEY), principal()
        )
        actor = await self._agent(request.ticket_id, request.actor)
        result = await self._update(
            request.ticket_id,
            UPDATE_ESCALATE,
            EscalateInput(key, title, description, urgency, actor),
            EscalateResult,
            f"escalate-{key}" if key else "",
        )
        assert isinstance(result, EscalateResult)
        link = next(
            x for x in result.state.programming_tickets if x.id == result.programming_ticket_id
        )
        prog = dpb.ProgrammingTicket(
            id=link.id,
            support_ticket_id=request.ticket_id,
            title=link.title,
            technical_description=description,
            urgency=dpb.ProgUrgency.Value("PROG_URGENCY_" + link.urgency),
            status=dpb.ProgStatus.Value("PROG_STATUS_" + link.status),
            organization_id=result.state.organization_id,
            workflow_id=progticket_workflow_id(link.id),
        )
        return tpb.EscalateToDevelopmentResponse(
            ticket=await self._ticket(request.ticket_id), programming_ticket=prog
        )

    @rpc_method
    async def DetachProgrammingTicket(
        self, request: tpb.DetachProgrammingTicketRequest, context: Context
    ) -> pb.Ticket:
        """Unlinks an open programming ticket so the support ticket can be solved without it."""
        reason = require_text("reason", request.reason, 2000)
        async with self.sessions() as session:
            row = await self._row(session, request.ticket_id)
            actor = await self._actor(session, request.actor, "actor", ("AGENT",))
        linked = {x.id for x in links_of(row)}
        if request.programming_ticket_id not in linked:
            not_found(
                f"programming ticket {request.programming_ticket_id} of ticket #{request.ticket_id}"
            )
        await self._update(
            request.ticket_id,
            UPDATE_DETACH,
            DetachInput(request.programming_ticket_id, reason, actor),
            TicketState,
        )
        return await self._ticket(request.ticket_id)

    @rpc_method
    async def HoldForThirdParty(
        self, request: tpb.HoldForThirdPartyRequest, context: Context
    ) -> pb.Ticket:
        """ON_HOLD waiting for a vendor or the ISP; the assignee is reminded until it is back."""
        name = require_text("third_party_name", request.third_party_name, 200)
        reference = optional_text("third_party_reference", request.third_party_reference, 200)
        actor = await self._agent(request.ticket_id, request.actor)
        await self._update(
            request.ticket_id,
            UPDATE_THIRD_PARTY,
            ThirdPartyInput(name, reference, actor),
            TicketState,
        )
        return await self._ticket(request.ticket_id)

    @rpc_method
    async def LogTime(self, request: tpb.LogTimeRequest, context: Context) -> pb.Ticket:
        """Adds a time entry; the ticket shows the total in ``hours_spent``."""
        hours = request.hours
        if not math.isfinite(hours) or not 0 < hours <= 24:
            invalid("hours", "must be more than 0 and at most 24")
        note = optional_text("note", request.note, 2000)
        key = scoped_key(
            "request_id", optional_text("request_id", request.request_id, MAX_KEY), principal()
        )
        actor = await self._agent(request.ticket_id, request.actor)
        await self._update(
            request.ticket_id,
            UPDATE_LOG_TIME,
            LogTimeInput(key, hours, note, actor),
            TicketState,
            f"logtime-{key}" if key else "",
        )
        return await self._ticket(request.ticket_id)
