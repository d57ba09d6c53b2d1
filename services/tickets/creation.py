"""Creating tickets: validate, store once per request ID, start the workflow; and the
reconciler that starts any workflow a crash left unstarted.

A creation reads the requester with its organisation once, writes the ticket in one
transaction and starts the workflow after that session is closed (never holding a
connection or a transaction across the Temporal call). It does not mark the ticket
``workflow_started``: the workflow's first activity (the ``created`` record) does, so a
ticket whose start failed stays on the reconciler's work list.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from helpdesk.v1 import common_pb2 as pb
from services.common import metrics
from services.common.limits import MAX_ATTACHMENT_BYTES, MAX_ATTACHMENTS, MAX_ATTACHMENTS_TOTAL
from services.common.rpc_errors import (
    already_exists,
    invalid,
    not_found,
    optional_text,
    require_text,
)
from services.tickets import models as m
from services.tickets.activities import sla_clock_json
from services.tickets.opening_clocks import opening_clocks
from services.tickets.queues import set_next_due
from services.tickets.readmodel import state_from_row
from services.tickets.sla_terms import sla_terms_for
from services.tickets.ticket_index import index_ticket
from services.tickets.workflow_calls import start_ticket_workflow
from workflows.contracts import SlaTerms, TicketState, TicketWorkflowInput

log = logging.getLogger(__name__)

_UNSAFE_NAME = re.compile(r"[\x00-\x1f/\\]+")


@dataclass
class NewTicket:
    """A validated request for a ticket."""

    subject: str
    description: str
    requester_id: int
    channel: str
    priority: str
    # The idempotency key as stored: already scoped to the caller (``access.scoped_key``).
    request_id: str | None = None
    kind: str = ""
    product: str = ""
    version: str = ""
    os: str = ""
    criticality: str = ""
    phone: str = ""
    callback_number: str = ""
    attachments_requested_by_email: bool = False
    follow_up_of: int | None = None
    attachments: list[pb.Attachment] = field(default_factory=list)
    # When the request reached the desk (a mail stored before it was processed); now if unset.
    received_at: datetime | None = None


def validate_attachments(items: list[pb.Attachment]) -> None:
    if len(items) > MAX_ATTACHMENTS:
        invalid("attachments", f"at most {MAX_ATTACHMENTS} files")
    total = 0
    for i, a in enumerate(items):
        require_text(f"attachments[{i}].filename", a.filename, 255)
        if len(a.content) > MAX_ATTACHMENT_BYTES:
            invalid(f"attachments[{i}].content", f"larger than {MAX_ATTACHMENT_BYTES} bytes")
        optional_text(f"attachments[{i}].content_type", a.content_type, 100)
        total += len(a.content)
    if total > MAX_ATTACHMENTS_TOTAL:
        invalid("attachments", f"more than {MAX_ATTACHMENTS_TOTAL} bytes in all")


def attachment_rows(
    items: list[pb.Attachment], ticket_id: int, comment_id: str | None, now: datetime
) -> list[m.Attachment]:
    """Stored under generated IDs; the original name is kept only as a label."""
    rows = []
    for a in items:
        name = _UNSAFE_NAME.sub("_", a.filename.strip()).strip(". ") or "attachment"
        rows.append(
            m.Attachment(
                id=uuid.uuid4().hex,
                ticket_id=ticket_id,
                comment_id=comment_id,
                filename=name[:255],
                content_type=a.content_type.strip() or "application/octet-stream",
                size=len(a.content),
                sha256=hashlib.sha256(a.content).hexdigest(),
                content=a.content,
                created_at=now,
            )
        )
    return rows


@dataclass(frozen=True)
class Written:
    """A ticket this call stored, with the rows it was made from: enough for the reply,
    without reading back what was just written."""

    ticket: m.Ticket
    organization: m.Organization
    requester: m.Contact
    attachments: list[m.Attachment]
    terms: SlaTerms  # the contract the clocks were set by, which the workflow starts with


@dataclass(frozen=True)
class SecondLevelTimes:
    """The second level's clocks: HELPDESK_DEV_START_WORK_WITHIN,
    HELPDESK_REMOTE_UPDATE_NOTICE and HELPDESK_THIRD_PARTY_REMINDER_DAYS."""

    start_work_within_seconds: int = 3600
    remote_update_notice_seconds: int = 86400
    third_party_reminder_days: int = 2


class TicketCreator:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        client: Client,
        auto_close_after_seconds: int,
        max_history_events: int = 2000,
        second_level: SecondLevelTimes | None = None,
        max_history_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        self.sessions = sessions
        self.client = client
        self.auto_close_after_seconds = auto_close_after_seconds
        self.max_history_events = max_history_events
        self.max_history_bytes = max_history_bytes
        self.second_level = second_level or SecondLevelTimes()

    def workflow_input(self, state: TicketState, start: str) -> TicketWorkflowInput:
        """The ticket workflow's input with this deployment's clocks."""
        times = self.second_level
        return TicketWorkflowInput(
            state=state,
            start=start,
            max_history_events=self.max_history_events,
            max_history_bytes=self.max_history_bytes,
            start_work_within_seconds=times.start_work_within_seconds,
            remote_update_notice_seconds=times.remote_update_notice_seconds,
            third_party_reminder_business_days=times.third_party_reminder_days,
        )

    async def create(self, new: NewTicket) -> tuple[m.Ticket, bool]:
        """Store the ticket (or find the one this request ID made) and make sure its workflow
        runs. Returns (ticket, created by this call). A request ID that made another
        requester's ticket is ``ALREADY_EXISTS``: a key never hands out someone else's."""
        row, written = await self.open(new)
        return row, written is not None

    async def open(self, new: NewTicket) -> tuple[m.Ticket, Written | None]:
        """As ``create``, with what this call wrote (for the reply); None when the request ID
        had made the ticket before (a retry: the caller reads the ticket as it is now)."""
        validate_attachments(new.attachments)
        async with self.sessions() as session:
            found = await self.by_request_id(session, new.request_id) if new.request_id else None
            stored = found or await self._write(session, new)
        if isinstance(stored, m.Ticket):
            self._same_request(stored, new)
            await self.ensure_workflow(stored)
            return stored, None
        metrics.TICKETS_CREATED.labels(channel=new.channel.lower().removeprefix("channel_")).inc()
        await self._start(stored.ticket, stored.organization, stored.terms)
        return stored.ticket, stored

    async def _write(self, session: AsyncSession, new: NewTicket) -> Written | m.Ticket:
        """Insert the ticket, its files and its search entry in one transaction; the ticket
        already stored under the request ID when a concurrent call stored it first."""
        found = (
            await session.execute(
                select(m.Contact, m.Organization)
                .join(m.Organization, m.Organization.id == m.Contact.organization_id)
                .where(m.Contact.id == new.requester_id)
            )
        ).first()
        if found is None:
            not_found(f"contact {new.requester_id}")
        requester, org = found
        now = new.received_at or datetime.now(UTC)
        terms = await sla_terms_for(session, org.id)
        # The due instants the workflow will start with, on business time, from now on.
        clocks = opening_clocks(terms, new.priority, now)
        row = m.Ticket(
            request_id=new.request_id,
            subject=new.subject,
            description=new.description,
            organization_id=org.id,
            requester_id=requester.id,
            channel=new.channel,
            kind=new.kind,
            product=new.product,
            version=new.version,
            os=new.os,
            criticality=new.criticality,
            priority=new.priority,
            level="L1",
            phone=new.phone or requester.phone,
            callback_number=new.callback_number,
            attachments_requested_by_email=new.attachments_requested_by_email,
            follow_up_of=new.follow_up_of,
            status="NEW",
            received_at=now,
            taken_in_charge_due=clocks.taken_in_charge_due,
            first_feedback_due=clocks.first_feedback_due,
            resolution_due=clocks.resolution_due,
            clocks_start_at=clocks.clocks_start_at,
            sla_clock=sla_clock_json(clocks),
            breaches=[],
            event_seq=0,
            # Set by the workflow's first record (``apply_state``), not here.
            workflow_started=False,
            updated_at=now,
        )
        set_next_due(row)
        session.add(row)
        try:
            await session.flush()
            files = attachment_rows(new.attachments, row.id, None, now)
            session.add_all(files)
            await index_ticket(session, row)
            await session.commit()
        except IntegrityError:
            await session.rollback()
            if not new.request_id:
                raise
            existing = await self.by_request_id(session, new.request_id)
            if existing is None:
                raise
            return existing
        return Written(row, org, requester, files, terms)

    @staticmethod
    def _same_request(existing: m.Ticket, new: NewTicket) -> None:
        """A retry names the same requester (hence organisation) and follow-up as the
        request that made ``existing``; anything else reusing its key is refused."""
        if existing.requester_id != new.requester_id or existing.follow_up_of != (
            new.follow_up_of or None
        ):
            already_exists("request_id: already used by this caller for another request")

    @staticmethod
    async def by_request_id(session: AsyncSession, request_id: str) -> m.Ticket | None:
        """The ticket a (stored, scoped) request ID made, if any."""
        return (
            await session.scalars(select(m.Ticket).where(m.Ticket.request_id == request_id))
        ).first()

    async def ensure_workflow(self, row: m.Ticket) -> None:
        """Start the ticket's workflow if it is not known to be started (idempotent: a
        running workflow is left as it is), then mark it started."""
        if row.workflow_started:
            return
        async with self.sessions() as session:
            org = await session.get(m.Organization, row.organization_id)
            assert org is not None
            terms = await sla_terms_for(session, row.organization_id)
        await self._start(row, org, terms)
        # The recovery path: the mark keeps the reconciler from starting it again, whether
        # or not the workflow has recorded its start yet.
        async with self.sessions() as session:
            await session.execute(
                update(m.Ticket)
                .where(m.Ticket.id == row.id, m.Ticket.workflow_started.is_(False))
                .values(workflow_started=True)
            )
            await session.commit()
        row.workflow_started = True

    async def _start(self, row: m.Ticket, org: m.Organization, terms: SlaTerms) -> None:
        """Start ``row``'s workflow from the stored ticket (no session is open here)."""
        state = state_from_row(row, org, self.auto_close_after_seconds)
        state.terms = terms
        start = "follow_up_opened" if row.follow_up_of else "created"
        await start_ticket_workflow(self.client, self.workflow_input(state, start), row.subject)

    async def reconcile(self) -> int:
        """Start the workflows a crash left unstarted; returns how many."""
        async with self.sessions() as session:
            rows = list(
                (
                    await session.scalars(
                        select(m.Ticket).where(m.Ticket.workflow_started.is_(False)).limit(500)
                    )
                ).all()
            )
        for row in rows:
            await self.ensure_workflow(row)
        if rows:
            log.info("started %d ticket workflows left unstarted", len(rows))
        return len(rows)

    async def reconcile_forever(self, every: float = 30.0) -> None:
        while True:
            try:
                await self.reconcile()
            except Exception:
                log.exception("reconciler pass failed; retrying")
            await asyncio.sleep(every)
