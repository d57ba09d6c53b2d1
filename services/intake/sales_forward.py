"""Intake's sales requests handed to the sales office (seed 003).

Each row of ``intake_sales_requests`` (a prospect's mail, a web form) goes to
``SalesService.RecordSalesRequest`` under its own ID, with the SERVICE token: right after
the row is committed (``forward``), and by a sweep (``run_forever``) for the rows still
unforwarded, because the tickets process was down, intake crashed in between, or the row
is older than this hand-over. RecordSalesRequest is idempotent by ID, so forwarding a row
twice (a sweep racing the first attempt, two replicas) records it once.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from helpdesk.v1 import sales_pb2 as spb
from services.common.auth import bearer_metadata
from services.intake.models import InboundMessage, SalesRequest

if TYPE_CHECKING:
    from helpdesk.v1.sales_pb2_grpc import SalesServiceAsyncStub

log = logging.getLogger("helpdesk.intake.sales_forward")

SWEEP_SECONDS = 15.0
BATCH = 50
# Short: the web form waits on the first attempt (the sweep does the rest).
CALL_TIMEOUT_SECONDS = 10.0
# The tickets process is away: stop the pass, the next sweep tries again.
AWAY = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


def _stamp(at: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(at if at.tzinfo else at.replace(tzinfo=UTC))
    return stamp


def record_request(row: SalesRequest, mail_key: str) -> spb.RecordSalesRequestRequest:
    """What RecordSalesRequest gets for ``row``; ``mail_key`` is its stored mail's dedup
    key (``mid:<Message-ID>`` when the mail had one), "" for a web form."""
    web = row.inbound_message_id.startswith("web:")
    if web:
        message_id = row.inbound_message_id
    else:
        message_id = mail_key[4:] if mail_key.startswith("mid:") else ""
    return spb.RecordSalesRequestRequest(
        id=row.id,
        source=spb.SALES_REQUEST_SOURCE_WEB_FORM if web else spb.SALES_REQUEST_SOURCE_EMAIL,
        sender=row.sender,
        sender_name=row.sender_name,
        subject=row.subject,
        body=row.body,
        locale=row.locale,
        received_at=_stamp(row.received_at),
        message_id=message_id,
        attachment_names=list(row.attachment_names or []),
        company=row.company or "",
        phone=row.phone or "",
        contact_id=row.contact_id or 0,
    )


class SalesForwarder:
    """Hands intake's sales requests to SalesService, once each (idempotent by ID)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        sales: SalesServiceAsyncStub,
        service_token: str,
    ) -> None:
        self.sessions = sessions
        self.sales = sales
        self.metadata = bearer_metadata(service_token)
        self.wake = asyncio.Event()
        # Rows the sales office refused for good, logged once each (retried all the same).
        self._refused: set[str] = set()

    async def forward(self, row_id: str) -> bool:
        """Hand over one row now; True when SalesService has it. A failure is logged and
        left to the sweep (the row is stored: nothing is lost)."""
        try:
            return await self._forward(row_id)
        except grpc.aio.AioRpcError as err:
            log.warning(
                "sales request %s not handed over yet (%s: %s); the sweep retries",
                row_id,
                err.code().name,
                err.details(),
            )
        except Exception as err:  # the database away: the sweep retries
            log.warning("sales request %s not handed over yet: %r", row_id, err)
        self.wake.set()
        return False

    async def hand_over(self, row_id: str) -> bool:
        """Hand over one row now, raising the sales office's error (``forward`` logs it);
        False when intake has no such row."""
        return await self._forward(row_id)

    async def _forward(self, row_id: str) -> bool:
        async with self.sessions() as session:
            found = (
                await session.execute(
                    select(SalesRequest, InboundMessage.dedup_key)
                    .outerjoin(InboundMessage, InboundMessage.id == SalesRequest.inbound_message_id)
                    .where(SalesRequest.id == row_id)
                )
            ).first()
        if found is None:
            return False
        row, mail_key = found
        if row.forwarded_at is not None:
            return True
        await self.sales.RecordSalesRequest(
            record_request(row, mail_key or ""),
            metadata=self.metadata,
            timeout=CALL_TIMEOUT_SECONDS,
        )
        async with self.sessions() as session:
            await session.execute(
                update(SalesRequest)
                .where(SalesRequest.id == row_id, SalesRequest.forwarded_at.is_(None))
                .values(forwarded_at=datetime.now(UTC))
            )
            await session.commit()
        log.info("sales request %s handed to the sales office", row_id)
        return True

    async def sweep(self, batch: int = BATCH) -> int:
        """Hand over the rows still unforwarded, oldest first; how many went. Stops at the
        first sign that the tickets process is away; a row refused for good (a bad field
        in an old row) is logged and tried again on later sweeps, without holding up the
        others."""
        async with self.sessions() as session:
            ids = list(
                await session.scalars(
                    select(SalesRequest.id)
                    .where(SalesRequest.forwarded_at.is_(None))
                    .order_by(SalesRequest.received_at, SalesRequest.id)
                    .limit(batch)
                )
            )
        sent = 0
        for row_id in ids:
            try:
                sent += await self._forward(row_id)
            except grpc.aio.AioRpcError as err:
                if err.code() in AWAY:
                    log.info(
                        "sales office away (%s): %d request(s) wait", err.code().name, len(ids)
                    )
                    break
                level = logging.DEBUG if row_id in self._refused else logging.ERROR
                self._refused.add(row_id)
                log.log(
                    level,
                    "sales request %s refused by the sales office (%s: %s)",
                    row_id,
                    err.code().name,
                    err.details(),
                )
        return sent

    async def run_forever(self, every: float = SWEEP_SECONDS) -> None:
        """Sweep every ``every`` seconds (sooner after a failed ``forward``) until cancelled."""
        while True:
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception as err:  # the database away: the next sweep retries
                log.warning("sales sweep failed: %r", err)
            self.wake.clear()
            try:
                await asyncio.wait_for(self.wake.wait(), timeout=every)
                await asyncio.sleep(1.0)  # a failed forward: give the far side a moment
            except TimeoutError:
                pass
