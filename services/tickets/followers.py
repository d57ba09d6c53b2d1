"""``TicketService.AddFollower`` / ``RemoveFollower``: contacts of the ticket's organisation
who follow it (CC) besides its requester, and the followers a merge brings along. Mixed
into ``TicketServicer``.

Followers are not part of the ticket's lifecycle, so the workflow does not decide them:
the read model keeps them, and each ticket event tells notify who they are at that time.
"""

from __future__ import annotations

import grpc
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import tickets_pb2 as tpb
from services.common.access import principal, scoped_key
from services.common.rpc_errors import (
    Context,
    RpcError,
    invalid,
    not_found,
    optional_text,
    rpc_method,
)
from services.tickets import models as m
from services.tickets.follower_store import (
    audit_name,
    change_id,
    commit_once,
    follow,
    follower_event,
    history_actor,
)
from services.tickets.merging import survivor
from services.tickets.rpc_helpers import TicketRpcHelpers

# Intake's keys for a mail's Cc (only services may use the ``email:`` prefix).
EMAIL_KEY_PREFIX = "email:"


async def contact_named(
    session: AsyncSession, contact_id: int, email: str, field: str = "contact_id"
) -> m.Contact:
    """The contact a request names by ID or by email; ``NOT_FOUND`` when there is none."""
    if contact_id < 0:
        invalid(field, "must be a positive ID")
    if contact_id:
        contact = await session.get(m.Contact, contact_id)
        if contact is None:
            not_found(f"contact {contact_id}")
        return contact
    address = optional_text("email", email, 320).strip().lower()
    if not address:
        invalid(field, "name the contact by contact_id or email")
    found = await session.scalar(select(m.Contact).where(m.Contact.email_key == address))
    if found is None:
        not_found(f"contact with email {address}")
    return found


def same_organization(ticket: m.Ticket, contact: m.Contact, what: str) -> None:
    """Only the ticket's own organisation's contacts: anyone else is ``PERMISSION_DENIED``."""
    if contact.organization_id != ticket.organization_id:
        raise RpcError(
            grpc.StatusCode.PERMISSION_DENIED,
            f"{what}: {contact.email} is not a contact of ticket #{ticket.id}'s organization",
        )


class FollowerRpcs(TicketRpcHelpers):
    @rpc_method
    async def AddFollower(self, request: tpb.AddFollowerRequest, context: Context) -> pb.Ticket:
        """Idempotent twice over: by ``request_id``, and by the follower already following."""
        who = principal()
        key = scoped_key("request_id", optional_text("request_id", request.request_id, 200), who)
        source = "EMAIL_CC" if key.startswith(EMAIL_KEY_PREFIX) else "AGENT"
        async with self.sessions() as session:
            # A merged ticket's followers follow the ticket that carries on for it.
            row = await survivor(session, await self._row(session, request.ticket_id))
            contact = await contact_named(session, request.contact_id, request.email)
            same_organization(row, contact, "contact_id" if request.contact_id else "email")
            ticket_id, event_id = row.id, change_id("follower", row.id, key)
            if await session.get(m.TicketEvent, event_id) is None and await follow(
                session, row, contact, source
            ):
                session.add(
                    follower_event(
                        event_id,
                        row,
                        "follower_added",
                        contact,
                        history_actor(who),
                        audit_name(who),
                    )
                )
                await commit_once(session)  # a concurrent twin did it: the same
        return await self._ticket(ticket_id)

    @rpc_method
    async def RemoveFollower(
        self, request: tpb.RemoveFollowerRequest, context: Context
    ) -> pb.Ticket:
        """Removing someone who does not follow the ticket changes nothing."""
        who = principal()
        key = scoped_key("request_id", optional_text("request_id", request.request_id, 200), who)
        async with self.sessions() as session:
            row = await survivor(session, await self._row(session, request.ticket_id))
            contact = await contact_named(session, request.contact_id, request.email)
            ticket_id, event_id = row.id, change_id("unfollower", row.id, key)
            existing = await session.get(m.Follower, (row.id, contact.id))
            if existing is not None and await session.get(m.TicketEvent, event_id) is None:
                await session.execute(
                    delete(m.Follower).where(
                        m.Follower.ticket_id == row.id, m.Follower.contact_id == contact.id
                    )
                )
                session.add(
                    follower_event(
                        event_id,
                        row,
                        "follower_removed",
                        contact,
                        history_actor(who),
                        audit_name(who),
                    )
                )
                await commit_once(session)  # a concurrent twin did it: the same
        return await self._ticket(ticket_id)
