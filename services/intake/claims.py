"""Working over intake's stored rows from several replicas at once, and within bounds.

- A row is worked on only under a lease: ``claim`` is one conditional ``UPDATE`` (still
  ``RECEIVED``, due, and nobody else's lease running), so it holds on SQLite and PostgreSQL
  alike; ``Lease`` renews it while the work lasts. Every write back (``finish``, ``retry``)
  is conditional on the status and on the lease being ours: a replica that lost its lease
  cannot overwrite what another one recorded.
- A failed attempt waits ``next_attempt_at`` (``backoff``) and does not stand in front of
  the rows behind it: a pass reads only due rows.
- ``ByteBudget`` bounds the bytes in flight (raw mail being parsed and handed on), not only
  the number of messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections import deque
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import or_, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.intake.im_models import ImUpdate
from services.intake.models import InboundMessage

log = logging.getLogger("helpdesk.intake.claims")

Model = type[InboundMessage] | type[ImUpdate]

LEASE = timedelta(minutes=2)  # renewed every third of it while the row is worked on


def replica_name() -> str:
    """This process among intake's replicas (host, process, a random tag)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def backoff(attempt: int, base: timedelta, cap: timedelta) -> timedelta:
    """The wait after the ``attempt``-th failed attempt: ``base`` doubling, at most ``cap``."""
    return min(cap, base * (1 << max(0, min(attempt - 1, 20))))


def _rowcount(result: Any) -> int:
    return int(result.rowcount) if isinstance(result, CursorResult) else 0


async def claim(
    sessions: async_sessionmaker[AsyncSession],
    model: Model,
    row_id: str,
    replica: str,
    lease: timedelta = LEASE,
) -> bool:
    """Take the row for ``lease``: True only when it is still ``RECEIVED``, due, and not
    under another replica's running lease."""
    now = datetime.now(UTC)
    async with sessions() as session:
        result = await session.execute(
            update(model)
            .where(
                model.id == row_id,
                model.status == "RECEIVED",
                or_(model.claimed_until.is_(None), model.claimed_until < now),
                or_(model.next_attempt_at.is_(None), model.next_attempt_at <= now),
            )
            .values(claimed_by=replica, claimed_until=now + lease)
            .execution_options(synchronize_session=False)
        )
        await session.commit()
    return _rowcount(result) == 1


def mine(model: Model, row_id: str, replica: str) -> list[Any]:
    """The conditions of every write back: the row is still ``RECEIVED`` and ours."""
    return [model.id == row_id, model.status == "RECEIVED", model.claimed_by == replica]


async def write_back(
    session: AsyncSession, model: Model, row_id: str, replica: str, **values: Any
) -> bool:
    """One conditional ``UPDATE`` of a claimed row (in the caller's transaction); False
    when the row is no longer ours (its lease ran out and another replica took it)."""
    result = await session.execute(
        update(model)
        .where(*mine(model, row_id, replica))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result) == 1


async def record_outcome(
    session: AsyncSession,
    model: Model,
    row_id: str,
    replica: str,
    *,
    status: str,
    ticket_id: int | None,
    detail: str,
) -> bool:
    """The row's final outcome, its claim let go (``write_back``'s condition and result)."""
    return await write_back(
        session,
        model,
        row_id,
        replica,
        status=status,
        ticket_id=ticket_id,
        detail=detail[:1000],
        processed_at=datetime.now(UTC),
        claimed_by="",
        claimed_until=None,
        next_attempt_at=None,
    )


async def record_failure(
    session: AsyncSession,
    model: Model,
    row_id: str,
    replica: str,
    *,
    attempts: int,
    failures: int,
    retry_in: timedelta,
    detail: str,
) -> bool:
    """A failed attempt counted, the claim let go, the next attempt ``retry_in`` away."""
    return await write_back(
        session,
        model,
        row_id,
        replica,
        attempts=attempts,
        failures=failures,
        next_attempt_at=datetime.now(UTC) + retry_in,
        detail=detail[:1000],
        claimed_by="",
        claimed_until=None,
    )


class Lease:
    """Keeps a claim alive while its row is worked on (``async with Lease(...)``)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        model: Model,
        row_id: str,
        replica: str,
        lease: timedelta = LEASE,
    ) -> None:
        self.sessions = sessions
        self.model = model
        self.row_id = row_id
        self.replica = replica
        self.lease = lease
        self.lost = False
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Lease:
        self._task = asyncio.create_task(self._renew())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _renew(self) -> None:
        every = max(self.lease.total_seconds() / 3, 0.05)
        while True:
            await asyncio.sleep(every)
            try:
                async with self.sessions() as session:
                    kept = await write_back(
                        session,
                        self.model,
                        self.row_id,
                        self.replica,
                        claimed_until=datetime.now(UTC) + self.lease,
                    )
                    await session.commit()
            except Exception:  # the database is away: the next renewal tries again
                log.warning("cannot renew the lease of %s", self.row_id, exc_info=True)
                continue
            if not kept:
                self.lost = True
                log.warning("%s: lease lost (another replica may take it)", self.row_id)
                return


class ByteBudget:
    """A semaphore weighted by bytes, first come first served: ``hold(n)`` waits until
    ``n`` more bytes fit in ``capacity``. A request larger than the whole budget waits
    until nothing else is held, then runs alone."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self.used = 0
        self.peak = 0
        self._waiting: deque[tuple[int, asyncio.Future[None]]] = deque()

    def _fits(self, n: int) -> bool:
        return self.used + n <= self.capacity or self.used == 0

    def _wake(self) -> None:
        while self._waiting:
            n, future = self._waiting[0]
            if future.done():
                self._waiting.popleft()
                continue
            if not self._fits(n):
                return
            self._waiting.popleft()
            self.used += n
            self.peak = max(self.peak, self.used)
            future.set_result(None)

    @contextlib.asynccontextmanager
    async def hold(self, n: int) -> AsyncIterator[None]:
        n = max(0, n)
        if not self._waiting and self._fits(n):
            self.used += n
            self.peak = max(self.peak, self.used)
        else:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiting.append((n, future))
            try:
                await future
            except asyncio.CancelledError:
                if future.done() and not future.cancelled():
                    self.used -= n  # granted just as we were cancelled
                    self._wake()
                raise
        try:
            yield
        finally:
            self.used -= n
            self._wake()
