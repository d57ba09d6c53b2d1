"""Seed 002's satisfaction questionnaire: ``TicketService.SubmitSatisfaction``, mixed into
``TicketServicer``.

When a ticket closes, notify emails the requester a survey carrying a signed link token
(``TokenSigner.survey_token``, audience ``helpdesk-survey``). The answer arrives here by
that token (the RPC is PUBLIC: the token is the credential), from the requester logged in,
or from a trusted caller naming the ticket (intake, for a reply to the survey email with a
lone number). It does not go through the ticket workflow, which has ended once the ticket
is CLOSED: the answer is a row of ``ticket_satisfaction`` and a ``satisfaction`` event in
the ticket's history.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import grpc
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import tickets_pb2 as tpb
from services.common.access import current_principal
from services.common.mail_threading import display_id
from services.common.rpc_errors import (
    Context,
    RpcError,
    invalid,
    not_found,
    optional_text,
    precondition,
    require_id,
    rpc_method,
)
from services.common.tokens import InvalidToken, TokenSigner
from services.tickets import models as m
from services.tickets.convert import optional_name, ts
from services.tickets.rpc_helpers import TicketRpcHelpers

RATINGS = range(1, 6)
# The first answer can be changed for this long.
CHANGE_WINDOW = timedelta(days=7)
MAX_COMMENT = 2000


def check_rating(rating: int) -> int:
    """``INVALID_ARGUMENT`` naming ``rating`` unless it is 1 to 5."""
    if rating not in RATINGS:
        invalid("rating", f"must be from 1 to 5, got {rating}")
    return rating


def changeable_until(first_answered_at: datetime) -> datetime:
    return first_answered_at + CHANGE_WINDOW


async def with_satisfaction(session: AsyncSession, tickets: list[pb.Ticket]) -> list[pb.Ticket]:
    """Fill ``satisfaction_rating`` / ``satisfaction_comment`` (one query for the page)."""
    if not tickets:
        return tickets
    answers = {
        s.ticket_id: s
        for s in await session.scalars(
            select(m.Satisfaction).where(m.Satisfaction.ticket_id.in_([t.id for t in tickets]))
        )
    }
    for t in tickets:
        answer = answers.get(t.id)
        if answer is not None:
            t.satisfaction_rating = answer.rating
            t.satisfaction_comment = answer.comment
    return tickets


class SatisfactionRpcs(TicketRpcHelpers):
    """SubmitSatisfaction."""

    # Checks survey tokens; None: only answers by ticket_id are accepted.
    signer: TokenSigner | None = None

    def _survey_ticket(self, token: str) -> int:
        if self.signer is None:
            raise RpcError(grpc.StatusCode.UNAUTHENTICATED, "token: survey tokens not accepted")
        try:
            return self.signer.survey_ticket(token.strip())
        except InvalidToken:
            raise RpcError(
                grpc.StatusCode.UNAUTHENTICATED, "token: invalid or expired survey token"
            ) from None

    @rpc_method
    async def SubmitSatisfaction(
        self, request: tpb.SubmitSatisfactionRequest, context: Context
    ) -> tpb.SubmitSatisfactionResponse:
        rating = check_rating(request.rating)
        comment = optional_text("comment", request.comment, MAX_COMMENT)
        who = current_principal.get()
        if request.token:
            ticket_id = self._survey_ticket(request.token)
            if request.ticket_id and request.ticket_id != ticket_id:
                invalid("ticket_id", "is not the ticket of the survey token")
            source, by = "TOKEN", "survey link"
        else:
            ticket_id = require_id("ticket_id", request.ticket_id)
            if who is None or who.kind == "ANONYMOUS":
                raise RpcError(
                    grpc.StatusCode.UNAUTHENTICATED, "a survey token or a bearer token is required"
                )
            if who.is_customer:
                source, by = "REQUESTER", f"{who.role.value} {who.kind}#{who.id}"
            elif who.is_trusted:
                source, by = who.role.value, f"{who.role.value} {who.name or who.kind.lower()}"
            else:
                raise RpcError(
                    grpc.StatusCode.PERMISSION_DENIED,
                    f"{who.role.value}: only the requester answers the survey",
                )
        for attempt in (1, 2):  # a concurrent first answer: the second one becomes a change
            try:
                return await self._answer(request, ticket_id, rating, comment, source, by)
            except IntegrityError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _answer(
        self,
        request: tpb.SubmitSatisfactionRequest,
        ticket_id: int,
        rating: int,
        comment: str,
        source: str,
        by: str,
    ) -> tpb.SubmitSatisfactionResponse:
        now = datetime.now(UTC)
        async with self.sessions() as session:
            if source == "TOKEN":
                row = await session.get(m.Ticket, ticket_id)
                if row is None:
                    not_found(f"ticket {ticket_id}")
            else:
                row = await self._row(session, ticket_id)  # customers: visible tickets only
            who = current_principal.get()
            if source == "REQUESTER" and who is not None and row.requester_id != who.id:
                raise RpcError(
                    grpc.StatusCode.PERMISSION_DENIED,
                    f"#{ticket_id}: only its requester answers the survey",
                )
            if request.HasField("actor") and source not in ("TOKEN", "REQUESTER"):
                kind = optional_name(pb.AuthorKind, request.actor.kind, "actor.kind")
                if kind != "CONTACT":
                    invalid("actor.kind", "must be CONTACT (the requester)")
                if request.actor.id != row.requester_id:
                    raise RpcError(
                        grpc.StatusCode.PERMISSION_DENIED,
                        f"contact {request.actor.id} is not the requester of #{ticket_id}",
                    )
            if row.status != "CLOSED":
                precondition(f"#{ticket_id} is {row.status}: only a CLOSED ticket is rated")
            if row.merged_into:
                precondition(f"#{ticket_id} was merged into #{row.merged_into}: rate that one")
            answer = await session.get(m.Satisfaction, ticket_id, with_for_update=True)
            previous = None
            if answer is None:
                answer = m.Satisfaction(
                    ticket_id=ticket_id,
                    rating=rating,
                    comment=comment,
                    source=source,
                    first_answered_at=now,
                    answered_at=now,
                    changes=0,
                )
                session.add(answer)
            else:
                until = changeable_until(answer.first_answered_at)
                if now > until:
                    precondition(
                        f"#{ticket_id}: the survey was answered on "
                        f"{answer.first_answered_at:%Y-%m-%d}; it could be changed until "
                        f"{until:%Y-%m-%d %H:%M} UTC"
                    )
                previous = answer.rating
                answer.rating, answer.comment, answer.source = rating, comment, source
                answer.answered_at = now
                answer.changes += 1
            detail = f"rated {rating}/5" + (f" (was {previous}/5)" if previous else "")
            if comment:
                detail += f": {comment}"
            session.add(
                m.TicketEvent(
                    id=f"satisfaction-{ticket_id}-{uuid.uuid4().hex}",
                    ticket_id=ticket_id,
                    seq=row.event_seq,
                    type="satisfaction",
                    actor_kind="CONTACT",
                    actor_id=row.requester_id,
                    from_status=row.status,
                    to_status=row.status,
                    detail=detail,
                    performed_by=by[:120],
                    occurred_at=now,
                )
            )
            await session.commit()
            return tpb.SubmitSatisfactionResponse(
                ticket_id=ticket_id,
                display_id=display_id(ticket_id),
                rating=answer.rating,
                comment=answer.comment,
                first_answered_at=ts(answer.first_answered_at),
                answered_at=ts(answer.answered_at),
                changeable_until=ts(changeable_until(answer.first_answered_at)),
                changed=previous is not None,
            )
