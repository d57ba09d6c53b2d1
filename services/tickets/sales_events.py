"""The sales office's events for notify, through an outbox: each event is a row of
``sales_events`` written in the same transaction as the change it tells of, then
published to NATS JetStream on ``helpdesk.sales.<type>`` with its ID as ``Nats-Msg-Id``.

A change is never told without being stored, nor stored without being told: the
publisher sends the new rows right after the commit and sweeps every few seconds for the
rows a crash or a NATS outage left behind; a row published twice (a crash between the
publish and marking it) is dropped by JetStream's duplicate window, and notify keeps the
IDs it handled.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.common.messages.sales import subject as sales_subject
from services.tickets import models as m

log = logging.getLogger("helpdesk.tickets.sales")

SWEEP_SECONDS = 3.0
# One publish (with the connection it may open first): then the sweep tries again.
PUBLISH_TIMEOUT = 15.0
BATCH = 100
BODY_IN_EVENT = 2000


class Publisher(Protocol):
    async def publish(self, subject: str, event_id: str, payload: dict[str, object]) -> bool: ...


def common_payload(
    event_type: str,
    row: m.SalesRequest,
    organization_name: str,
    owner: m.Agent | None,
    now: datetime,
) -> dict[str, object]:
    """The keys every sales event carries (notify relies on exactly these)."""
    return {
        "event_id": uuid.uuid4().hex,
        "type": event_type,
        "occurred_at": now.astimezone(UTC).isoformat(),
        "sales_request_id": row.id,
        "number": row.number,
        "kind": row.kind,
        "status": row.status,
        "subject": row.subject,
        "sender": row.sender,
        "sender_name": row.sender_name,
        "locale": row.locale,
        "organization_id": row.organization_id,
        "organization_name": organization_name,
        "owner_id": row.owner_id,
        "owner_name": owner.name if owner is not None else "",
        "owner_email": owner.email if owner is not None else "",
        "company": row.company,
    }


def sales_emails(agents: Sequence[m.Agent]) -> list[dict[str, object]]:
    """Whom notify tells of a new request: every agent of the sales office."""
    return [{"id": a.id, "name": a.name, "email": a.email, "locale": "it"} for a in agents]


def add_event(session: AsyncSession, payload: dict[str, object]) -> m.SalesEvent:
    """Queue ``payload`` in the caller's transaction (published after its commit)."""
    row = m.SalesEvent(
        event_id=str(payload["event_id"]),
        subject=sales_subject(str(payload["type"])),
        payload=payload,
        created_at=datetime.now(UTC),
        published_at=None,
    )
    session.add(row)
    return row


class SalesEventPublisher:
    """Publishes the outbox: ``kick()`` after a commit, ``run_forever()`` sweeping."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], publisher: Publisher) -> None:
        self.sessions = sessions
        self.publisher = publisher
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[int]] = set()

    def kick(self) -> None:
        """Publish what was just committed, soon, without holding up the caller. While a
        publish runs (it goes on until no row is left; NATS away: until it is back) another
        would only wait behind it, so none is started: the sweep is the safety net."""
        if self._lock.locked():
            return
        try:
            task = asyncio.get_running_loop().create_task(self.publish_pending())
        except RuntimeError:
            return
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[int]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("sales events not published yet: %s", task.exception())

    async def publish_pending(self) -> int:
        """Publish every unpublished row, oldest first; the number published. Stops at
        the first failure (the sweep tries again)."""
        async with self._lock:
            sent = 0
            while True:
                async with self.sessions() as session:
                    rows = list(
                        await session.scalars(
                            select(m.SalesEvent)
                            .where(m.SalesEvent.published_at.is_(None))
                            .order_by(m.SalesEvent.created_at, m.SalesEvent.event_id)
                            .limit(BATCH)
                        )
                    )
                    if not rows:
                        return sent
                    for row in rows:
                        await asyncio.wait_for(
                            self.publisher.publish(row.subject, row.event_id, dict(row.payload)),
                            PUBLISH_TIMEOUT,
                        )
                        await session.execute(
                            update(m.SalesEvent)
                            .where(m.SalesEvent.event_id == row.event_id)
                            .values(published_at=datetime.now(UTC))
                        )
                        await session.commit()
                        sent += 1

    async def run_forever(self) -> None:
        """Sweep every ``SWEEP_SECONDS`` until cancelled."""
        while True:
            try:
                await self.publish_pending()
            except asyncio.CancelledError:
                raise
            except Exception as err:  # NATS or the database away: the next sweep retries
                log.warning("sales events not published yet: %s", err)
            await asyncio.sleep(SWEEP_SECONDS)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        self._tasks.clear()
