"""``TicketService.ResendAnswers`` (seed 000: "in caso l'utente perda la risposta ricevuta,
può chiedere il re-inoltro citando l'ID"). Mixed into ``TicketServicer``.

The request is stored under its key, then published as ``helpdesk.ticket.answers_resent``
on the path every ticket email takes (notify's ticket consumer), carrying each answer and
the event that first mailed it: notify records every email as a resend of that delivery.
A retry with the same key finds the stored request and publishes it again under the same
event ID, which JetStream and notify's delivery log both take once.
"""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from helpdesk.v1 import tickets_pb2 as tpb
from services.common.access import principal, scoped_key
from services.common.mail_threading import display_id
from services.common.messages.tickets import (
    PersonPayload,
    ResendPayload,
    ResentAnswerPayload,
    TicketEventPayload,
    TicketPayload,
)
from services.common.messages.tickets import subject as ticket_subject
from services.common.rpc_errors import (
    Context,
    RpcError,
    already_exists,
    invalid,
    not_found,
    optional_text,
    precondition,
    rpc_method,
)
from services.tickets import models as m
from services.tickets.follower_store import (
    add_people,
    audit_name,
    change_id,
    commit_once,
    history_actor,
)
from services.tickets.followers import same_organization
from services.tickets.readmodel import actor_name, comment_attachments
from services.tickets.rpc_helpers import TicketRpcHelpers

RESEND_EVENT = "answers_resent"


def person(c: m.Contact) -> PersonPayload:
    return PersonPayload(id=c.id, name=c.name, email=c.email, locale=c.locale)


async def _answers(session: AsyncSession, ticket: m.Ticket, comment_id: str) -> list[m.Comment]:
    """The comment named, or every public answer of the desk, oldest first."""
    if comment_id:
        comment = await session.get(m.Comment, comment_id)
        if comment is None or comment.ticket_id != ticket.id:
            not_found(f"comment {comment_id} on ticket #{ticket.id}")
        if comment.visibility != "PUBLIC":
            invalid("comment_id", f"{comment_id} is an internal note: it is never emailed")
        return [comment]
    found = (
        await session.scalars(
            select(m.Comment)
            .where(
                m.Comment.ticket_id == ticket.id,
                m.Comment.visibility == "PUBLIC",
                m.Comment.author_kind == "AGENT",
            )
            .order_by(m.Comment.created_at, m.Comment.id)
        )
    ).all()
    if not found:
        precondition(f"#{ticket.id} has no public answers to re-send")
    return list(found)


async def _first_mailed(session: AsyncSession, ticket_id: int) -> dict[datetime, str]:
    """The ``comment_added`` events of a ticket by instant: the event that recorded a
    comment has the comment's own instant (the same change wrote both)."""
    rows = await session.execute(
        select(m.TicketEvent.occurred_at, m.TicketEvent.id).where(
            m.TicketEvent.ticket_id == ticket_id, m.TicketEvent.type == "comment_added"
        )
    )
    return {when: event_id for when, event_id in rows}


async def resend_payload(
    session: AsyncSession,
    ticket: m.Ticket,
    resend: m.AnswerResend,
    actor: tuple[str, int],
) -> TicketEventPayload:
    """The ``answers_resent`` event for notify."""
    org = await session.get(m.Organization, ticket.organization_id)
    requester = await session.get(m.Contact, ticket.requester_id)
    recipient = await session.get(m.Contact, resend.recipient_id)
    assert requester is not None and recipient is not None
    assignee = await session.get(m.Agent, ticket.assignee_id) if ticket.assignee_id else None
    events = await _first_mailed(session, ticket.id)
    answers: list[ResentAnswerPayload] = []
    for comment_id in resend.comment_ids:
        c = await session.get(m.Comment, comment_id)
        if c is None:
            continue
        answer = ResentAnswerPayload(
            comment_id=c.id,
            original_event_id=events.get(c.created_at, ""),
            author_name=await actor_name(session, c.author_kind, c.author_id),
            body=c.body,
            created_at=c.created_at.isoformat(),
        )
        # Only public answers are re-sent (``_answers``); their files go again with them.
        files = await comment_attachments(session, c.id) if c.visibility == "PUBLIC" else []
        if files:
            answer["attachments"] = files
        answers.append(answer)
    payload = TicketPayload(
        id=ticket.id,
        display_id=display_id(ticket.id),
        subject=ticket.subject,
        status=ticket.status,
        priority=ticket.priority,
        channel=ticket.channel,
        organization_id=ticket.organization_id,
        organization_name=org.name if org else "",
        requester=person(requester),
        assignee=(
            PersonPayload(id=assignee.id, name=assignee.name, email=assignee.email, locale="it")
            if assignee
            else None
        ),
        follow_up_of=ticket.follow_up_of or 0,
        close_reason=ticket.close_reason,
        auto_close_at=ticket.auto_close_at.isoformat() if ticket.auto_close_at else None,
        auto_close_after_seconds=0,
    )
    await add_people(session, ticket, payload)
    return TicketEventPayload(
        event_id=resend.id,
        type=RESEND_EVENT,
        ticket_id=ticket.id,
        occurred_at=resend.created_at.isoformat(),
        actor_kind=actor[0],
        actor_id=actor[1],
        actor_name=await actor_name(session, actor[0], actor[1]) if actor[1] else "",
        from_status=ticket.status,
        to_status=ticket.status,
        detail=f"{len(answers)} answer(s) re-sent to {recipient.email}",
        ticket=payload,
        comment=None,
        resend=ResendPayload(recipient=person(recipient), answers=answers),
    )


class ResendRpcs(TicketRpcHelpers):
    @rpc_method
    async def ResendAnswers(
        self, request: tpb.ResendAnswersRequest, context: Context
    ) -> tpb.ResendAnswersResponse:
        who = principal()
        key = scoped_key("request_id", optional_text("request_id", request.request_id, 200), who)
        comment_id = optional_text("comment_id", request.comment_id, 64)
        address = optional_text("recipient_email", request.recipient_email, 320).strip().lower()
        actor = history_actor(who)
        if self.publisher is None:
            raise RpcError(grpc.StatusCode.UNAVAILABLE, "no event publisher: nothing can be sent")
        async with self.sessions() as session:
            ticket = await self._row(session, request.ticket_id)
            if address:
                recipient = await session.scalar(
                    select(m.Contact).where(m.Contact.email_key == address)
                )
                if recipient is None:
                    raise RpcError(
                        grpc.StatusCode.PERMISSION_DENIED,
                        f"recipient_email: {address} is not a contact of ticket #{ticket.id}'s"
                        " organization",
                    )
                same_organization(ticket, recipient, "recipient_email")
            else:
                found = await session.get(m.Contact, ticket.requester_id)
                assert found is not None
                recipient = found
            answers = await _answers(session, ticket, comment_id)
            resend_id = change_id("resend", ticket.id, key)
            resend = await session.get(m.AnswerResend, resend_id)
            wanted = [c.id for c in answers]
            if resend is None:
                resend = m.AnswerResend(
                    id=resend_id,
                    ticket_id=ticket.id,
                    recipient_id=recipient.id,
                    comment_ids=wanted,
                    performed_by=audit_name(who)[:120],
                    created_at=datetime.now(UTC),
                )
                session.add(resend)
                session.add(
                    m.TicketEvent(
                        id=resend_id,
                        ticket_id=ticket.id,
                        seq=ticket.event_seq,
                        type=RESEND_EVENT,
                        actor_kind=actor[0],
                        actor_id=actor[1],
                        from_status=ticket.status,
                        to_status=ticket.status,
                        detail=f"{len(wanted)} answer(s) re-sent to {recipient.name}"
                        f" <{recipient.email}>",
                        internal=True,
                        performed_by=audit_name(who)[:120],
                        occurred_at=resend.created_at,
                    )
                )
                if not await commit_once(session):
                    # A concurrent twin stored it first: answer as its retry would.
                    raise RpcError(
                        grpc.StatusCode.ABORTED, "request_id: a resend with this key is under way"
                    )
            elif resend.recipient_id != recipient.id or (
                comment_id and resend.comment_ids != [comment_id]
            ):
                already_exists("request_id: already used for another resend")
            else:  # a retry: what was asked then, even if answers came since
                wanted = list(resend.comment_ids)
            payload = await resend_payload(session, ticket, resend, actor)
        await self.publisher.publish(ticket_subject(RESEND_EVENT), resend_id, payload)
        return tpb.ResendAnswersResponse(
            resend_id=resend_id, recipient_email=recipient.email, comment_ids=wanted
        )
