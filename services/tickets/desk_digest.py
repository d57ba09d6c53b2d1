"""The opening digest's activity and the workflow that calls it (``workflows.desk_digest``):
the tickets received while the desk was closed, published for notify to mail to the
agents on duty (``helpdesk.desk.digest``)."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy

from services.common.events import EventPublisher
from services.common.mail_threading import display_id
from services.common.messages.desk import (
    DIGEST_SUBJECT,
    DigestEventPayload,
    DigestTicketPayload,
    digest_event_id,
)
from services.common.messages.tickets import PersonPayload
from services.tickets import models as m
from services.tickets.sla_terms import DEFAULT_CALENDAR
from workflows.contracts import (
    DESK_DIGEST_WORKFLOW,
    DESK_DIGEST_WORKFLOW_ID,
    SEND_DESK_DIGEST,
    WORKFLOW_TASK_QUEUE,
    DeskDigestInput,
    DeskOpening,
)

log = logging.getLogger(__name__)

# Agents on duty who hear of new tickets (developers have their own on-call duty).
DESK_ROLES = ("AGENT", "TEAM_LEAD")
# A digest lists at most this many tickets (the oldest first); the mail says how many more.
MAX_TICKETS = 200


async def opening_digest(session: AsyncSession, opening: DeskOpening) -> DigestEventPayload:
    """The digest of ``opening``: tickets received in ``[closed_since, opened_at)``, and the
    agents on duty now."""
    rows = (
        await session.execute(
            select(m.Ticket, m.Organization.name, m.Agent.name)
            .join(m.Organization, m.Organization.id == m.Ticket.organization_id)
            .outerjoin(m.Agent, m.Agent.id == m.Ticket.assignee_id)
            .where(
                m.Ticket.received_at >= opening.closed_since,
                m.Ticket.received_at < opening.opened_at,
            )
            .order_by(m.Ticket.received_at, m.Ticket.id)
            .limit(MAX_TICKETS)
        )
    ).all()
    agents = await session.scalars(
        select(m.Agent)
        .where(m.Agent.on_call.is_(True), m.Agent.role.in_(DESK_ROLES))
        .order_by(m.Agent.id)
    )
    return DigestEventPayload(
        event_id=digest_event_id(f"{opening.opened_at:%Y%m%dT%H%M%S}Z"),
        opened_at=opening.opened_at.isoformat(),
        closed_since=opening.closed_since.isoformat(),
        tickets=[
            DigestTicketPayload(
                id=t.id,
                display_id=display_id(t.id),
                subject=t.subject,
                organization_name=org_name,
                priority=t.priority,
                status=t.status,
                channel=t.channel,
                received_at=t.received_at.isoformat(),
                assignee_name=assignee_name or "",
            )
            for t, org_name, assignee_name in rows
        ],
        agents=[PersonPayload(id=a.id, name=a.name, email=a.email, locale="it") for a in agents],
    )


class DeskDigestActivities:
    """Mixed into ``TicketActivities`` (the tickets service's activity worker)."""

    sessions: async_sessionmaker[AsyncSession]
    publisher: EventPublisher

    @activity.defn(name=SEND_DESK_DIGEST)
    async def send_desk_digest(self, opening: DeskOpening) -> int:
        """Publish the opening's digest (nothing when no ticket came in); returns how many
        tickets it lists. The same opening publishes the same event ID."""
        async with self.sessions() as session:
            digest = await opening_digest(session, opening)
        if not digest["tickets"] or not digest["agents"]:
            log.info(
                "desk opening %s: %d tickets while closed, %d agents on duty: no digest",
                digest["opened_at"],
                len(digest["tickets"]),
                len(digest["agents"]),
            )
            return 0
        await self.publisher.publish(DIGEST_SUBJECT, digest["event_id"], digest)
        return len(digest["tickets"])


async def ensure_desk_digest(client: Client) -> None:
    """Start the ``desk-digest`` workflow unless it runs already (on the desk's calendar)."""
    await client.start_workflow(
        DESK_DIGEST_WORKFLOW,
        DeskDigestInput(calendar=DEFAULT_CALENDAR),
        id=DESK_DIGEST_WORKFLOW_ID,
        task_queue=WORKFLOW_TASK_QUEUE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        static_summary="the digest at the desk's opening of the tickets received while closed",
    )
