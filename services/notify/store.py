"""Reading and writing the delivery log; every write commits before the caller acts on it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notify.models import Delivery, DeliveryStatus, InboundMail, utcnow


@dataclass(frozen=True)
class DeliveryDraft:
    """What a delivery row is created with, before anything is sent."""

    event_id: str
    event_type: str
    ticket_id: int
    recipient: str
    subject: str
    template: str
    locale: str
    message_id: str
    channel: str = "email"
    # A resend: the delivery it re-sends, and that delivery's Message-ID.
    resend_of: int | None = None
    resend_of_message_id: str = ""


@dataclass(frozen=True)
class BouncedDelivery:
    """A delivery a delivery-status report named (now BOUNCED)."""

    id: int
    ticket_id: int  # 0: not about a ticket (a prospect's reply, credentials)
    recipient: str


class DeliveryStore:
    """The ``notify_deliveries`` table behind a session factory."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def ping(self) -> None:
        """Raise when the database does not answer."""
        async with self._sessions() as session:
            await session.execute(text("SELECT 1"))

    async def claim(self, draft: DeliveryDraft) -> Delivery:
        """The row for (event, template, recipient): inserted as PENDING and committed when new.

        A row that already exists (a redelivered event) is returned as it is,
        whatever its status, so the caller can skip what was already sent.
        """
        return (await self._claim(draft, attempts=0))[0]

    async def claim_attempt(self, draft: DeliveryDraft) -> tuple[Delivery, int]:
        """As ``claim``, for a message about to be sent: a new row is inserted with its
        first attempt counted (one commit instead of two); returns the row and that count,
        0 for a row that existed (the caller counts its attempt with ``start_attempt``)."""
        return await self._claim(draft, attempts=1)

    async def _claim(self, draft: DeliveryDraft, attempts: int) -> tuple[Delivery, int]:
        key = (
            Delivery.event_id == draft.event_id,
            Delivery.template == draft.template,
            Delivery.recipient == draft.recipient,
        )
        async with self._sessions() as session:
            existing = await session.scalar(select(Delivery).where(*key))
            if existing is not None:
                return existing, 0
            row = Delivery(
                event_id=draft.event_id,
                event_type=draft.event_type,
                ticket_id=draft.ticket_id,
                channel=draft.channel,
                recipient=draft.recipient,
                subject=draft.subject,
                template=draft.template,
                locale=draft.locale,
                status=DeliveryStatus.PENDING.value,
                error="",
                message_id=draft.message_id,
                attempts=attempts,
                created_at=utcnow(),
                resend_of=draft.resend_of,
                resend_of_message_id=draft.resend_of_message_id,
            )
            session.add(row)
            try:
                await session.commit()
            except IntegrityError:
                # Another consumer inserted it between our SELECT and INSERT.
                await session.rollback()
                raced = await session.scalar(select(Delivery).where(*key))
                if raced is None:
                    raise
                return raced, 0
            return row, attempts

    async def start_attempt(self, delivery_id: int) -> int:
        """Count one more send attempt (committed before sending); returns the new count."""
        async with self._sessions() as session:
            attempts = await session.scalar(
                update(Delivery)
                .where(Delivery.id == delivery_id)
                .values(attempts=Delivery.attempts + 1)
                .returning(Delivery.attempts)
            )
            await session.commit()
        if attempts is None:
            raise LookupError(f"delivery {delivery_id} vanished")
        return int(attempts)

    async def mark_sent(self, delivery_id: int) -> None:
        """Record that the relay (or the spool) accepted the message."""
        await self._set(delivery_id, status=DeliveryStatus.SENT.value, error="", sent_at=utcnow())

    async def record_error(self, delivery_id: int, error: str) -> None:
        """Keep the last error of an attempt that will be retried (the row stays PENDING)."""
        await self._set(delivery_id, error=error[:2000])

    async def mark_failed(self, delivery_id: int, error: str) -> None:
        """Give up on a message: it will not be sent again."""
        await self._set(delivery_id, status=DeliveryStatus.FAILED.value, error=error[:2000])

    async def mark_suppressed(self, delivery_id: int, why: str) -> None:
        """Record that an automatic reply was deliberately not sent, and why."""
        await self._set(delivery_id, status=DeliveryStatus.SUPPRESSED.value, error=why[:2000])

    async def mark_bounced(self, message_ids: Sequence[str], report: str) -> list[BouncedDelivery]:
        """Mark the deliveries sent with these Message-IDs BOUNCED (again, on a redelivered
        report: the same result); returns them."""
        if not message_ids:
            return []
        async with self._sessions() as session:
            rows = (
                await session.scalars(
                    select(Delivery).where(Delivery.message_id.in_(list(message_ids)))
                )
            ).all()
            for row in rows:
                row.status = DeliveryStatus.BOUNCED.value
                row.error = report[:2000]
            marked = [BouncedDelivery(row.id, row.ticket_id, row.recipient) for row in rows]
            await session.commit()
            return marked

    async def count_sent_since(
        self, recipient: str, templates: Sequence[str], since: datetime
    ) -> int:
        """How many of ``templates`` went to ``recipient`` since ``since`` (the rate limit
        of automatic replies: the delivery log survives restarts, so does the limit)."""
        async with self._sessions() as session:
            count = await session.scalar(
                select(func.count(Delivery.id)).where(
                    Delivery.recipient == recipient,
                    Delivery.template.in_(list(templates)),
                    Delivery.status.in_([DeliveryStatus.SENT.value, DeliveryStatus.BOUNCED.value]),
                    Delivery.sent_at >= since,
                )
            )
        return int(count or 0)

    async def record_inbound(
        self, ticket_id: int, message_id: str, sender: str, auto_reply: bool, reason: str
    ) -> None:
        """The message that opened ``ticket_id`` (the first one recorded wins)."""
        async with self._sessions() as session:
            if await session.get(InboundMail, ticket_id) is not None:
                return
            session.add(
                InboundMail(
                    ticket_id=ticket_id,
                    message_id=message_id[:255],
                    sender=sender[:320],
                    auto_reply=auto_reply,
                    reason=reason[:200],
                    created_at=utcnow(),
                )
            )
            try:
                await session.commit()
            except IntegrityError:  # recorded meanwhile by a redelivery
                await session.rollback()

    async def inbound(self, ticket_id: int) -> InboundMail | None:
        """The message that opened ``ticket_id``, if intake told us about one."""
        async with self._sessions() as session:
            return await session.get(InboundMail, ticket_id)

    async def original(self, ticket_id: int, event_id: str, recipient: str) -> Delivery | None:
        """The email an event of ``ticket_id`` sent, for a resend to name: the one to
        ``recipient`` when there is one, else the first (the requester's); None when none."""
        if not event_id:
            return None
        async with self._sessions() as session:
            rows = (
                await session.scalars(
                    select(Delivery)
                    .where(
                        Delivery.ticket_id == ticket_id,
                        Delivery.event_id == event_id,
                        Delivery.channel == "email",
                    )
                    .order_by(Delivery.id)
                )
            ).all()
        for row in rows:
            if row.recipient == recipient:
                return row
        return rows[0] if rows else None

    async def _set(self, delivery_id: int, **values: object) -> None:
        async with self._sessions() as session:
            await session.execute(
                update(Delivery).where(Delivery.id == delivery_id).values(**values)
            )
            await session.commit()

    async def get(self, delivery_id: int) -> Delivery | None:
        """One row by its ID."""
        async with self._sessions() as session:
            return await session.get(Delivery, delivery_id)

    async def list_page(
        self, *, ticket_id: int, recipient: str, after_id: int, limit: int
    ) -> Sequence[Delivery]:
        """Up to ``limit`` rows with ``id > after_id``, oldest first, optionally filtered."""
        query = select(Delivery).where(Delivery.id > after_id)
        if ticket_id:
            query = query.where(Delivery.ticket_id == ticket_id)
        if recipient:
            query = query.where(Delivery.recipient == recipient)
        query = query.order_by(Delivery.id).limit(limit)
        async with self._sessions() as session:
            return (await session.scalars(query)).all()
