"""Activities the dev_escalation process hosts on ``DEV_ESCALATION_TASK_QUEUE``.

``register_programming_ticket`` allots a programming ticket's ID before its workflow
starts (idempotent by request key); ``record_programming_ticket_change`` writes each event
of the workflow to the store and publishes it, both exactly once (the event ID made in
the workflow is the row's key and the message's ``Nats-Msg-Id``).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from services.common.events import EventPublisher
from services.common.messages.programming import (
    ProgActorPayload,
    ProgEventPayload,
    ProgTicketPayload,
    RecipientPayload,
    RemoteUpdatePayload,
    prog_display_id,
)
from services.common.messages.programming import subject as progticket_subject
from services.dev_escalation import models as m
from services.dev_escalation.directory import Directory
from workflows.contracts import ERR_INVALID
from workflows.prog_contracts import (
    RECORD_PROGRAMMING_CHANGE,
    REGISTER_PROGRAMMING_TICKET,
    ProgChangeRecord,
    ProgState,
    RegisterProgInput,
)

log = logging.getLogger(__name__)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def apply_state(row: m.ProgrammingTicket, s: ProgState) -> None:
    """Copy a workflow snapshot onto the programming ticket's row."""
    row.support_ticket_id = s.support_ticket_id
    row.organization_id = s.organization_id
    row.title = s.title
    row.technical_description = s.technical_description
    row.urgency = s.urgency
    row.urgency_rank = m.URGENCY_RANK.get(s.urgency, len(m.URGENCY_RANK) + 1)
    row.status = s.status
    row.assignee_id = s.assignee_id
    row.target_release = s.target_release
    row.planned_date = s.planned_date
    row.fix_version = s.fix_version
    row.fix_notes = s.fix_notes
    row.release_notes = s.release_notes
    row.window_start = s.window_start
    row.window_end = s.window_end
    row.cancel_reason = s.cancel_reason
    row.start_work_due = s.start_work_due
    row.escalated_to_lead = s.escalated_to_lead
    row.event_seq = s.event_seq
    row.updated_at = datetime.now(UTC)


class ProgActivities:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        publisher: EventPublisher,
        directory: Directory,
    ) -> None:
        self.sessions = sessions
        self.publisher = publisher
        self.directory = directory

    # -- register ---------------------------------------------------------------------

    @activity.defn(name=REGISTER_PROGRAMMING_TICKET)
    async def register_programming_ticket(self, inp: RegisterProgInput) -> int:
        """The programming ticket's ID: a new OPEN row, or the row already registered for
        the same request key (a retried activity, a retried escalation, a race)."""
        if inp.urgency not in m.URGENCY_RANK:
            raise ApplicationError(
                f"urgency: unknown value {inp.urgency!r}", type=ERR_INVALID, non_retryable=True
            )
        if not inp.request_key:
            raise ApplicationError("request_key: is required", type=ERR_INVALID, non_retryable=True)
        existing = await self._by_request_key(inp.request_key)
        if existing is not None:
            return existing
        now = datetime.now(UTC)
        row = m.ProgrammingTicket(
            request_key=inp.request_key,
            support_ticket_id=inp.support_ticket_id,
            organization_id=inp.organization_id,
            title=inp.title,
            technical_description=inp.technical_description,
            urgency=inp.urgency,
            urgency_rank=m.URGENCY_RANK[inp.urgency],
            status="OPEN",
            assignee_id=0,
            target_release="",
            fix_version="",
            fix_notes="",
            release_notes="",
            cancel_reason="",
            escalated_to_lead=False,
            event_seq=0,
            created_at=inp.created_at,
            updated_at=now,
        )
        try:
            async with self.sessions() as session, session.begin():
                session.add(row)
            return row.id
        except IntegrityError:
            # Registered concurrently under the same key: that row is the one.
            existing = await self._by_request_key(inp.request_key)
            if existing is None:
                raise
            return existing

    async def _by_request_key(self, request_key: str) -> int | None:
        async with self.sessions() as session:
            found: int | None = await session.scalar(
                select(m.ProgrammingTicket.id).where(m.ProgrammingTicket.request_key == request_key)
            )
            return found

    # -- record -----------------------------------------------------------------------

    @activity.defn(name=RECORD_PROGRAMMING_CHANGE)
    async def record_programming_ticket_change(self, rec: ProgChangeRecord) -> None:
        """Write one event to the store and publish it, both exactly once.

        The database step is skipped when the event ID is already stored (a retry); the
        publish carries the event ID as ``Nats-Msg-Id``, so JetStream drops a repeat.
        """
        async with self.sessions() as session, session.begin():
            if await session.get(m.ProgrammingTicketEvent, rec.event_id) is None:
                await self._write(session, rec)
        payload = await self.payload(rec)
        fresh = await self.publisher.publish(
            progticket_subject(rec.event_type), rec.event_id, payload
        )
        if not fresh:
            log.info("event %s was already published", rec.event_id)

    async def _write(self, session: AsyncSession, rec: ProgChangeRecord) -> None:
        s = rec.state
        row = await session.get(m.ProgrammingTicket, s.id, with_for_update=True)
        if row is None:
            # Started without registering (an operator, a test): the snapshot is the row.
            row = m.ProgrammingTicket(
                id=s.id, request_key=f"workflow:progticket-{s.id}", created_at=s.created_at
            )
            apply_state(row, s)
            session.add(row)
            await session.flush()
            await _advance_id_sequence(session)
        elif s.event_seq > row.event_seq:
            apply_state(row, s)
        session.add(
            m.ProgrammingTicketEvent(
                event_id=rec.event_id,
                programming_ticket_id=s.id,
                seq=s.event_seq,
                type=rec.event_type,
                actor_kind=rec.actor_kind,
                actor_id=rec.actor_id,
                from_status=rec.from_status,
                to_status=rec.to_status,
                detail=rec.detail,
                occurred_at=rec.occurred_at,
            )
        )

    async def payload(self, rec: ProgChangeRecord) -> ProgEventPayload:
        """The event's JSON body, from the snapshot it carries (not the row, which a later
        event may already have moved on) and the directory."""
        s = rec.state
        actor_name = ""
        if rec.actor_kind != "SYSTEM" and rec.actor_id:
            person = await self.directory.agent(rec.actor_id)
            actor_name = person["name"] if person else ""
        window: RemoteUpdatePayload | None = None
        if s.window_start and s.window_end:
            window = RemoteUpdatePayload(
                starts_at=s.window_start.isoformat(), ends_at=s.window_end.isoformat()
            )
        ticket = ProgTicketPayload(
            id=s.id,
            display_id=prog_display_id(s.id),
            support_ticket_id=s.support_ticket_id,
            support_display_id=f"#{s.support_ticket_id}" if s.support_ticket_id else "",
            organization_id=s.organization_id,
            organization_name=await self.directory.organization_name(s.organization_id),
            title=s.title,
            urgency=s.urgency,
            status=s.status,
            assignee=await self.directory.agent(s.assignee_id),
            target_release=s.target_release,
            planned_date=_iso(s.planned_date),
            fix_version=s.fix_version,
            fix_notes=s.fix_notes,
            release_notes=s.release_notes,
            cancel_reason=s.cancel_reason,
            start_work_due=_iso(s.start_work_due),
            escalated_to_lead=s.escalated_to_lead,
            remote_update=window,
            created_at=s.created_at.isoformat(),
        )
        return ProgEventPayload(
            event_id=rec.event_id,
            type=rec.event_type,
            programming_ticket_id=s.id,
            occurred_at=rec.occurred_at.isoformat(),
            actor=ProgActorPayload(kind=rec.actor_kind, id=rec.actor_id, name=actor_name),
            from_status=rec.from_status,
            to_status=rec.to_status,
            detail=rec.detail,
            programming_ticket=ticket,
            recipients=await self.recipients(rec),
        )

    async def recipients(self, rec: ProgChangeRecord) -> list[RecipientPayload]:
        """Who notify must write to for this event (``services.common.messages.programming``)."""
        kind = rec.event_type
        if kind == "created" and rec.state.urgency == "HIGH":
            return await self.directory.on_call()
        if kind == "start_overdue":
            return await self.directory.development_leads()
        if kind in ("remote_update_announced", "remote_update_completed"):
            return await self.directory.referents(rec.state.organization_id)
        return []


async def _advance_id_sequence(session: AsyncSession) -> None:
    """After a row was inserted with an explicit ID, PostgreSQL's sequence must move past it
    (SQLite's autoincrement already does)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    await session.execute(
        text(
            "SELECT setval(pg_get_serial_sequence('programming_tickets', 'id'),"
            " (SELECT MAX(id) FROM programming_tickets))"
        )
    )
