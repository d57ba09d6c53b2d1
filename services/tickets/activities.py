"""Activities the tickets service hosts on ``TICKETS_TASK_QUEUE`` for the ticket workflow."""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from services.common import metrics
from services.common.events import EventPublisher
from services.common.mail_threading import display_id
from services.common.messages.tickets import (
    CommentPayload,
    PersonPayload,
    TicketEventPayload,
    TicketPayload,
)
from services.common.messages.tickets import subject as ticket_subject
from services.tickets import models as m
from services.tickets.desk_digest import DeskDigestActivities
from services.tickets.follower_store import add_people
from services.tickets.interaction_view import (
    interaction_detail,
    interaction_payload,
    interaction_row,
)
from services.tickets.maintenance_activities import MaintenanceActivities
from services.tickets.queues import set_next_due
from services.tickets.quote_activities import QuoteActivities
from services.tickets.readmodel import actor_name, comment_attachments
from services.tickets.report_mail import ReportActivities
from services.tickets.ticket_index import index_ticket
from workflows.contracts import RECORD_TICKET_CHANGE, ChangeRecord, TicketState
from workflows.domain.sla_clock import target_seconds

log = logging.getLogger(__name__)

# Events agents see but customers do not (besides internal comments).
INTERNAL_EVENTS = frozenset({"time_logged", "third_party_reminder", "programming_ticket_detached"})


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def apply_state(row: m.Ticket, s: TicketState) -> None:
    """Copy the workflow-owned fields of a snapshot onto the ticket row."""
    row.status = s.status
    row.priority = s.priority
    row.assignee_id = s.assignee_id or None
    row.taken_in_charge_at = s.taken_in_charge_at
    row.first_feedback_at = s.first_feedback_at
    row.solved_at = s.solved_at
    row.closed_at = s.closed_at
    row.close_reason = s.close_reason
    row.taken_in_charge_due = s.taken_in_charge_due
    row.first_feedback_due = s.first_feedback_due
    row.breaches = [
        {
            "target": b.target,
            "due_at": b.due_at.isoformat(),
            "recorded_at": b.recorded_at.isoformat(),
        }
        for b in s.breaches
    ]
    row.sla_breached = bool(s.breaches)
    row.auto_close_at = s.auto_close_at
    row.reopen_count = s.reopen_count
    row.event_seq = s.event_seq
    row.level = s.level
    row.programming_tickets = [dataclasses.asdict(x) for x in s.programming_tickets]
    row.awaiting_verification = s.awaiting_verification
    row.hours_spent = s.hours_spent
    row.hold_reason = s.hold_reason
    row.third_party_name = s.third_party_name
    row.third_party_reference = s.third_party_reference
    row.merged_into = s.merged_into or None
    row.resolution_due = s.resolution_due
    row.clocks_start_at = s.clocks_start_at
    row.sla_clock = sla_clock_json(s)
    if s.qualification is not None:  # kept by the workflow (requalification)
        q = s.qualification
        row.criticality, row.kind, row.product, row.version, row.os = (
            q.criticality,
            q.kind,
            q.product,
            q.version,
            q.os,
        )
    set_next_due(row)
    row.workflow_started = True
    row.updated_at = datetime.now(UTC)


def sla_clock_json(s: TicketState) -> dict[str, object]:
    """The clock as the read model keeps it, enough to show the remaining business time."""
    if s.terms is None:
        return {}
    return {
        "calendar": dataclasses.asdict(s.terms.calendar),
        "calendar_name": s.terms.calendar_name,
        "plan_name": s.terms.plan_name,
        "targets": target_seconds(s),
        "elapsed": s.sla_elapsed_seconds,
        "as_of": _iso(s.sla_as_of),
        "running": s.sla_running,
    }


class TicketActivities(
    ReportActivities, DeskDigestActivities, MaintenanceActivities, QuoteActivities
):
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], publisher: EventPublisher
    ) -> None:
        self.sessions = sessions
        self.publisher = publisher

    @activity.defn(name=RECORD_TICKET_CHANGE)
    async def record_ticket_change(self, rec: ChangeRecord) -> None:
        """Write one ticket event to the read model and publish it, both exactly once.

        The database step is skipped when the event ID is already stored (a
        retry); the publish carries the event ID as ``Nats-Msg-Id``, so a
        retried publish is dropped by JetStream.
        """
        async with self.sessions() as session:
            async with session.begin():
                if await session.get(m.TicketEvent, rec.event_id) is None:
                    await self._write(session, rec)
            payload = await self._payload(session, rec)
        fresh = await self.publisher.publish(ticket_subject(rec.event_type), rec.event_id, payload)
        if not fresh:
            log.info("event %s was already published", rec.event_id)

    async def _write(self, session: AsyncSession, rec: ChangeRecord) -> None:
        s = rec.state
        row = await session.get(m.Ticket, s.ticket_id, with_for_update=True)
        if row is None:
            raise RuntimeError(f"ticket {s.ticket_id} is not in the store")
        # Snapshots are applied in order; an older one never overwrites a newer one.
        if s.event_seq > row.event_seq:
            apply_state(row, s)
        c = rec.comment
        if c is not None and await session.get(m.Comment, c.id) is None:
            session.add(
                m.Comment(
                    id=c.id,
                    ticket_id=s.ticket_id,
                    visibility=c.visibility,
                    author_kind=c.author.kind,
                    author_id=c.author.id,
                    body=c.body,
                    created_at=rec.occurred_at,
                )
            )
            interaction = interaction_row(s.ticket_id, c)
            if interaction is not None:  # a phone call or remote session (seed 000)
                session.add(interaction)
            await session.flush()
            await index_ticket(session, row)  # the search index follows the comments
        e = rec.time_entry
        if e is not None and await session.get(m.TimeEntry, e.id) is None:
            session.add(
                m.TimeEntry(
                    id=e.id,
                    ticket_id=s.ticket_id,
                    agent_id=e.agent_id,
                    hours=e.hours,
                    note=e.note,
                    created_at=rec.occurred_at,
                )
            )
        session.add(self._event_row(rec, s.ticket_id, rec.event_id))
        if rec.event_type == "follow_up_opened" and s.follow_up_of:
            origin = self._event_row(rec, s.follow_up_of, f"{rec.event_id}-origin")
            origin.type = "follow_up_opened"
            origin.from_status = origin.to_status = "CLOSED"
            origin.detail = f"follow-up #{s.ticket_id} opened"
            if await session.get(m.TicketEvent, origin.id) is None:
                session.add(origin)
        # Counted with the event's first write: a retry finds the event stored and skips this.
        if rec.event_type == "sla_warning" and s.sla_warned:
            metrics.SLA_EVENTS.labels(kind="warning", target=s.sla_warned[-1].lower()).inc()
        elif rec.event_type == "sla_breached" and s.breaches:
            metrics.SLA_EVENTS.labels(kind="breach", target=s.breaches[-1].target.lower()).inc()

    @staticmethod
    def _event_row(rec: ChangeRecord, ticket_id: int, event_id: str) -> m.TicketEvent:
        return m.TicketEvent(
            id=event_id,
            ticket_id=ticket_id,
            seq=rec.state.event_seq,
            type=rec.event_type,
            actor_kind=rec.actor.kind,
            actor_id=rec.actor.id,
            from_status=rec.from_status,
            to_status=rec.to_status,
            detail=rec.detail or interaction_detail(rec.comment),
            internal=(rec.comment is not None and rec.comment.visibility == "INTERNAL")
            or rec.event_type in INTERNAL_EVENTS,
            performed_by=rec.actor.by[:120],
            occurred_at=rec.occurred_at,
        )

    @staticmethod
    async def _payload(session: AsyncSession, rec: ChangeRecord) -> TicketEventPayload:
        s = rec.state
        row = await session.get(m.Ticket, s.ticket_id)
        assert row is not None
        requester = await session.get(m.Contact, s.requester_id)
        assert requester is not None
        assignee = await session.get(m.Agent, s.assignee_id) if s.assignee_id else None
        name = await actor_name(session, rec.actor.kind, rec.actor.id)
        comment: CommentPayload | None = None
        if rec.comment is not None:
            c = rec.comment
            comment = CommentPayload(
                id=c.id,
                visibility=c.visibility,
                author_kind=c.author.kind,
                author_id=c.author.id,
                author_name=await actor_name(session, c.author.kind, c.author.id),
                body=c.body,
            )
            if c.interaction is not None:
                comment["interaction"] = interaction_payload(c.interaction)
            # Stored before the change was accepted, under the comment's ID: notify mails
            # a public answer's files with it.
            files = await comment_attachments(session, c.id)
            if files:
                comment["attachments"] = files
        ticket = TicketPayload(
            id=s.ticket_id,
            display_id=display_id(s.ticket_id),
            subject=s.subject,
            status=s.status,
            priority=s.priority,
            channel=row.channel,
            organization_id=s.organization_id,
            organization_name=s.organization_name,
            requester=PersonPayload(
                id=requester.id,
                name=requester.name,
                email=requester.email,
                locale=requester.locale,
            ),
            assignee=(
                PersonPayload(id=assignee.id, name=assignee.name, email=assignee.email, locale="it")
                if assignee
                else None
            ),
            follow_up_of=s.follow_up_of,
            close_reason=s.close_reason,
            auto_close_at=_iso(s.auto_close_at),
            auto_close_after_seconds=s.auto_close_after_seconds,
            received_at=s.received_at.isoformat(),
            clocks_start_at=_iso(s.clocks_start_at),
        )
        await add_people(session, row, ticket)
        if s.priority == "URGENT" and rec.event_type in (
            "created",
            "follow_up_opened",
            "priority_changed",
        ):
            paged = await session.scalars(
                select(m.Agent).where(m.Agent.on_call.is_(True), m.Agent.role != "DEVELOPER")
            )
            ticket["on_call"] = [
                PersonPayload(id=a.id, name=a.name, email=a.email, locale="it") for a in paged
            ]
        if rec.previous_assignee_id:  # a reassignment: the previous holder is told
            previous = await session.get(m.Agent, rec.previous_assignee_id)
            ticket["previous_assignee"] = (
                PersonPayload(id=previous.id, name=previous.name, email=previous.email, locale="it")
                if previous
                else None
            )
            ticket["previous_assignee_id"] = rec.previous_assignee_id
            ticket["assignment_reason"] = rec.reason
        if rec.event_type == "sla_breached":
            leads = await session.scalars(select(m.Agent).where(m.Agent.role == "TEAM_LEAD"))
            ticket["team_leads"] = [
                PersonPayload(id=a.id, name=a.name, email=a.email, locale="it") for a in leads
            ]
        return TicketEventPayload(
            event_id=rec.event_id,
            type=rec.event_type,
            ticket_id=s.ticket_id,
            occurred_at=rec.occurred_at.isoformat(),
            actor_kind=rec.actor.kind,
            actor_id=rec.actor.id,
            actor_name=name,
            from_status=rec.from_status,
            to_status=rec.to_status,
            detail=rec.detail,
            ticket=ticket,
            comment=comment,
        )
