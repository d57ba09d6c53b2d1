"""The maintenance-window workflow's activity, hosted by the tickets service: each change
is written to the window's row and published as ``helpdesk.maintenance.<event>`` with the
people notify writes to (the organisation's referents; the operator for ``overdue``)."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from services.common.events import EventPublisher
from services.common.messages.maintenance import MaintenanceEventPayload, WindowPayload
from services.common.messages.maintenance import subject as maintenance_subject
from services.common.messages.tickets import PersonPayload
from services.tickets import models as m
from services.tickets.readmodel import actor_name
from workflows.maintenance_contracts import (
    RECORD_MAINTENANCE_CHANGE,
    MaintenanceChange,
    MaintenanceState,
)

log = logging.getLogger(__name__)


def _apply(row: m.MaintenanceWindow, s: MaintenanceState) -> None:
    row.status = s.status
    row.started_at = s.started_at
    row.finished_at = s.finished_at
    row.reminder_sent = s.reminder_sent
    row.overdue = s.overdue
    row.event_seq = s.event_seq


async def _recipients(session: AsyncSession, rec: MaintenanceChange) -> list[PersonPayload]:
    s = rec.state
    if rec.event_type == "overdue":
        agent = (
            await session.get(m.Agent, s.planned_by.id) if s.planned_by.kind == "AGENT" else None
        )
        if agent is None:  # planned by the admin or a service: the team leads are told
            leads = await session.scalars(select(m.Agent).where(m.Agent.role == "TEAM_LEAD"))
            return [PersonPayload(id=a.id, name=a.name, email=a.email, locale="it") for a in leads]
        return [PersonPayload(id=agent.id, name=agent.name, email=agent.email, locale="it")]
    referents = await session.scalars(
        select(m.Contact)
        .where(m.Contact.organization_id == s.organization_id, m.Contact.role == "REFERENT")
        .order_by(m.Contact.id)
    )
    return [PersonPayload(id=c.id, name=c.name, email=c.email, locale=c.locale) for c in referents]


class MaintenanceActivities:
    """Mixed into ``TicketActivities`` (the tickets service's activity worker)."""

    sessions: async_sessionmaker[AsyncSession]
    publisher: EventPublisher

    @activity.defn(name=RECORD_MAINTENANCE_CHANGE)
    async def record_maintenance_change(self, rec: MaintenanceChange) -> None:
        """Apply the snapshot (never an older one over a newer) and publish the event once
        (its ID is ``Nats-Msg-Id``: a retried publish is dropped by JetStream)."""
        s = rec.state
        async with self.sessions() as session:
            async with session.begin():
                row = await session.get(m.MaintenanceWindow, s.window_id, with_for_update=True)
                if row is None:
                    raise RuntimeError(f"maintenance window {s.window_id} is not in the store")
                if s.event_seq > row.event_seq:
                    _apply(row, s)
            payload = MaintenanceEventPayload(
                event_id=rec.event_id,
                type=rec.event_type,
                window_id=s.window_id,
                occurred_at=rec.occurred_at.isoformat(),
                actor_name=await actor_name(session, rec.actor.kind, rec.actor.id),
                note=rec.note,
                window=WindowPayload(
                    id=s.window_id,
                    organization_id=s.organization_id,
                    organization_name=s.organization_name,
                    medium=s.medium,
                    planned_start=s.planned_start.isoformat(),
                    planned_end=s.planned_end.isoformat(),
                    summary=s.summary,
                    status=s.status,
                ),
                recipients=await _recipients(session, rec),
            )
        fresh = await self.publisher.publish(
            maintenance_subject(rec.event_type), rec.event_id, payload
        )
        if not fresh:
            log.info("event %s was already published", rec.event_id)
