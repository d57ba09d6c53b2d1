"""The confirm / reopen links of the solved email: ``TicketService.GetTicketByLink`` and
``UseTicketLink``, mixed into ``TicketServicer``.

Notify signs each link (``TokenSigner.link_token``, audience ``helpdesk-link``) to expire
when the ticket would close by itself. The RPCs are PUBLIC: the token is the credential,
checked here as the survey's is. Whoever holds the link acts as the ticket's requester,
and only on that ticket: the action goes through the same workflow update as
``ConfirmSolution`` / ``ReopenTicket``, and sees the ticket as a customer does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

import grpc

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import tickets_pb2 as tpb
from services.common.access import Principal, Role, current_principal
from services.common.rpc_errors import (
    Context,
    RpcError,
    invalid,
    not_found,
    precondition,
    rpc_method,
)
from services.common.tokens import InvalidToken, TokenSigner
from services.tickets import models as m
from services.tickets.readmodel import ticket_pb
from services.tickets.rpc_helpers import TicketRpcHelpers
from workflows.contracts import (
    UPDATE_CONFIRM,
    UPDATE_REOPEN,
    ActorRef,
    CustomerAnswerInput,
    TicketState,
)

# What each action does: the workflow update, and where it takes a SOLVED ticket.
_ACTIONS = {"confirm": (UPDATE_CONFIRM, "CLOSED"), "reopen": (UPDATE_REOPEN, "OPEN")}
MAX_TOKEN = 4096


def public_view(ticket: pb.Ticket) -> pb.Ticket:
    """The ticket for whoever holds a link (which can be forwarded): what its requester
    sees, less the desk's own service-level clocks, programming tickets and hours."""
    for name in ("sla", "sla_breached", "programming_tickets", "hours_spent", "workflow_id"):
        ticket.ClearField(name)
    return ticket


@contextmanager
def _as_requester(row: m.Ticket) -> Iterator[Principal]:
    """Run as the ticket's requester (a USER of its organisation), for the visibility
    checks the shared helpers make."""
    who = Principal(
        role=Role.USER, kind="CONTACT", id=row.requester_id, organization_id=row.organization_id
    )
    token = current_principal.set(who)
    try:
        yield who
    finally:
        current_principal.reset(token)


class TicketLinkRpcs(TicketRpcHelpers):
    """GetTicketByLink, UseTicketLink."""

    # Checks link tokens; None: every link is refused.
    signer: TokenSigner | None = None

    def _link(self, token: str) -> tuple[int, str]:
        token = token.strip()
        if not token:
            invalid("token", "is required")
        if len(token) > MAX_TOKEN or self.signer is None:
            raise RpcError(grpc.StatusCode.UNAUTHENTICATED, "token: invalid or expired link")
        try:
            return self.signer.link_claims(token)
        except InvalidToken:
            raise RpcError(
                grpc.StatusCode.UNAUTHENTICATED, "token: invalid or expired link"
            ) from None

    async def _linked_row(self, ticket_id: int) -> m.Ticket:
        async with self.sessions() as session:
            row = await session.get(m.Ticket, ticket_id)
        if row is None:
            not_found(f"ticket {ticket_id}")
        return row

    async def _public_ticket(self, row: m.Ticket) -> pb.Ticket:
        async with self.sessions() as session:
            fresh = await session.get(m.Ticket, row.id)
            assert fresh is not None
            return public_view(await ticket_pb(session, fresh, customer=True))

    @rpc_method
    async def GetTicketByLink(
        self, request: tpb.TicketLinkRequest, context: Context
    ) -> tpb.TicketLinkResponse:
        ticket_id, action = self._link(request.token)
        row = await self._linked_row(ticket_id)
        return tpb.TicketLinkResponse(ticket=await self._public_ticket(row), action=action)

    @rpc_method
    async def UseTicketLink(self, request: tpb.TicketLinkRequest, context: Context) -> pb.Ticket:
        ticket_id, action = self._link(request.token)
        row = await self._linked_row(ticket_id)
        update, target = _ACTIONS[action]
        if row.status != "SOLVED":
            precondition(
                f"#{ticket_id}: cannot move ticket from {row.status} to {target}"
                f" ({action} link: only a SOLVED ticket)"
            )
        actor = ActorRef("CONTACT", row.requester_id, by=f"LINK CONTACT#{row.requester_id}")
        answer = (
            CustomerAnswerInput(actor)
            if action == "confirm"
            else CustomerAnswerInput(actor, "by the link in the solved email")
        )
        # A retry of the same link for the same solution is one update; once the ticket is
        # solved again, the link's next use is a new one.
        digest = hashlib.sha256(request.token.strip().encode()).hexdigest()[:24]
        solved = int(row.solved_at.timestamp()) if row.solved_at else 0
        with _as_requester(row):
            await self._update(
                ticket_id, update, answer, TicketState, f"link-{action}-{digest}-{solved}"
            )
        return await self._public_ticket(row)
