"""``TicketService.RequalifyTicket``: an agent or team lead says what a ticket is
(criticality, kind, product, version, OS, support level) with a reason; the ticket's
workflow decides and records it (and moves the priority with a new criticality). Mixed
into ``TicketServicer``."""

from __future__ import annotations

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import tickets_pb2 as tpb
from services.common.access import principal, scoped_key
from services.common.rpc_errors import Context, optional_text, require_text, rpc_method
from services.tickets.convert import optional_name
from services.tickets.rpc_helpers import TicketRpcHelpers
from workflows.contracts import UPDATE_REQUALIFY, Qualification, RequalifyInput, TicketState


def _text(request: tpb.RequalifyTicketRequest, field: str, limit: int) -> str | None:
    """An optional string: unset is unchanged, set (even to "") is the new value."""
    if not request.HasField(field):  # type: ignore[arg-type]
        return None
    return optional_text(field, getattr(request, field), limit).strip()


class RequalifyRpcs(TicketRpcHelpers):
    @rpc_method
    async def RequalifyTicket(
        self, request: tpb.RequalifyTicketRequest, context: Context
    ) -> pb.Ticket:
        reason = require_text("reason", request.reason, 2000)
        request_id = scoped_key(
            "request_id", optional_text("request_id", request.request_id, 200), principal()
        )
        criticality = optional_name(pb.Criticality, request.criticality, "criticality")
        kind = optional_name(pb.TicketKind, request.kind, "kind")
        level = optional_name(pb.SupportLevel, request.level, "level")
        product = _text(request, "product", 200)
        version = _text(request, "version", 100)
        os = _text(request, "os", 100)
        async with self.sessions() as session:
            row = await self._row(session, request.ticket_id)
            actor = await self._actor(session, request.actor, "actor", ("AGENT",))
            new = RequalifyInput(
                reason=reason,
                actor=actor,
                # What the read model says, for a workflow started before it kept these.
                current=Qualification(
                    criticality=row.criticality,
                    kind=row.kind,
                    product=row.product,
                    version=row.version,
                    os=row.os,
                ),
                current_level=row.level or "L1",
                criticality=criticality or None,
                kind=kind or None,
                product=product,
                version=version,
                os=os,
                level=level or None,
            )
        await self._update(
            request.ticket_id,
            UPDATE_REQUALIFY,
            new,
            TicketState,
            update_id=f"requalify-{request.ticket_id}-{request_id}" if request_id else "",
        )
        return await self._ticket(request.ticket_id)
