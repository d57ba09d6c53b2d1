"""``TicketService.RecordInteraction`` (seed 000: the desk answers by phone or in a remote
session, always with a call alongside): recorded as an agent's comment whose body is the
summary, so that a public one is the ticket's first feedback as any public answer is, and
its duration logged as time spent (the ``log_time`` path). The customer is emailed the
summary only when the agent says so. Mixed into ``TicketServicer``."""

from __future__ import annotations

import uuid

import grpc
from sqlalchemy.ext.asyncio import AsyncSession

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import tickets_pb2 as tpb
from services.common.access import principal, scoped_key
from services.common.rpc_errors import (
    Context,
    RpcError,
    already_exists,
    invalid,
    not_found,
    optional_text,
    require_text,
    rpc_method,
)
from services.tickets import models as m
from services.tickets.convert import optional_name, required_name
from services.tickets.interaction_view import describe
from services.tickets.readmodel import comment_pb
from services.tickets.rpc_helpers import TicketRpcHelpers
from workflows.contracts import (
    UPDATE_ADD_COMMENT,
    UPDATE_LOG_TIME,
    CommentData,
    CommentInput,
    CommentResult,
    InteractionData,
    LogTimeInput,
    TicketState,
)

# One request ID names one interaction of a ticket (apart from AddComment's keys).
COMMENT_NS = uuid.UUID("6f1c1a52-4d59-4b8e-9a55-0d0c2a7c6c11")
MAX_SUMMARY = 20_000
MAX_MINUTES = 24 * 60  # LogTime takes at most 24 h per entry


class InteractionRpcs(TicketRpcHelpers):
    @rpc_method
    async def RecordInteraction(
        self, request: tpb.RecordInteractionRequest, context: Context
    ) -> tpb.RecordInteractionResponse:
        kind = required_name(pb.InteractionType, request.type, "type")
        direction = optional_name(pb.CallDirection, request.direction, "direction")
        if kind == "PHONE_CALL" and not direction:
            invalid("direction", "is required for a phone call (INBOUND or OUTBOUND)")
        if kind == "REMOTE_SESSION" and direction:
            invalid("direction", "is for phone calls only")
        if not 0 < request.duration_minutes <= MAX_MINUTES:
            invalid("duration_minutes", f"must be from 1 to {MAX_MINUTES}")
        summary = require_text("summary", request.summary, MAX_SUMMARY)
        with_whom = optional_text("with_whom", request.with_whom, 200)
        visibility = (
            optional_name(pb.CommentVisibility, request.visibility, "visibility") or "PUBLIC"
        )
        if request.notify_customer and visibility != "PUBLIC":
            invalid("notify_customer", "an internal interaction is never emailed")
        key = scoped_key(
            "request_id", optional_text("request_id", request.request_id, 200), principal()
        )
        async with self.sessions() as session:
            row = await self._row(session, request.ticket_id)
            author = await self._actor(session, request.actor, "actor", ("AGENT",))
            with_name = await self._counterpart(session, row, request.contact_id, with_whom)
            comment_id = (
                uuid.uuid5(COMMENT_NS, f"{row.id}:interaction:{key}").hex
                if key
                else uuid.uuid4().hex
            )
            existing = await session.get(m.Comment, comment_id)
            if existing is not None and (existing.author_kind, existing.author_id) != (
                author.kind,
                author.id,
            ):
                already_exists("request_id: already used for another author's comment")
        data = InteractionData(
            type=kind,
            duration_minutes=request.duration_minutes,
            direction=direction,
            contact_id=request.contact_id,
            # The contact's name when only the contact was given: the history shows it.
            with_whom=with_name,
            notify_customer=request.notify_customer,
        )
        if existing is None:  # a retry of a recorded one only makes sure of its time
            await self._update(
                row.id,
                UPDATE_ADD_COMMENT,
                CommentInput(
                    CommentData(
                        id=comment_id,
                        visibility=visibility,
                        author=author,
                        body=summary,
                        interaction=data,
                    )
                ),
                CommentResult,
                update_id=f"comment-{comment_id}",
            )
        # The workflow remembers the key: the time is logged once whatever the retries.
        time_key = f"interaction-{comment_id}"
        await self._update(
            row.id,
            UPDATE_LOG_TIME,
            LogTimeInput(
                time_key,
                round(request.duration_minutes / 60, 4),
                describe(data),
                author,
            ),
            TicketState,
            f"logtime-{time_key}",
        )
        async with self.sessions() as session:
            comment = await session.get(m.Comment, comment_id)
            if comment is None:
                raise RpcError(grpc.StatusCode.UNAVAILABLE, "recorded; retry to read it back")
            return tpb.RecordInteractionResponse(
                comment=await comment_pb(session, comment),
                ticket=await self._ticket(row.id),
            )

    @staticmethod
    async def _counterpart(
        session: AsyncSession, row: m.Ticket, contact_id: int, with_whom: str
    ) -> str:
        """The name of whom the agent spoke with: a contact of the ticket's organisation,
        or the free text given."""
        if contact_id:
            contact = await session.get(m.Contact, contact_id)
            if contact is None:
                not_found(f"contact {contact_id}")
            if contact.organization_id != row.organization_id:
                raise RpcError(
                    grpc.StatusCode.PERMISSION_DENIED,
                    f"contact_id: contact {contact_id} is not of ticket #{row.id}'s organization",
                )
            return with_whom or contact.name
        if not with_whom:
            invalid("contact_id", "or with_whom is required: with whom was it?")
        return with_whom
