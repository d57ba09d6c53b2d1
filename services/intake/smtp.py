"""Inbound mail's SMTP listener: it answers ``250`` only once the raw message is stored
(``store_message``); ``services.intake.mail_processor`` turns stored messages into tickets.

Only the support address, its aliases and the fax gateway's address are accepted (``550``
otherwise: never an open relay); oversize mail gets ``552`` (``HELPDESK_SMTP_MAX_MESSAGE_BYTES``);
a storage failure answers ``451`` so the sender retries. ``IntakeService.SubmitEmail`` stores
through ``store_message`` too, so both ways in are one path.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from aiosmtpd.smtp import SMTP, Envelope, Session
from opentelemetry.trace import SpanKind, Status, StatusCode
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.common import telemetry
from services.intake import mailparse
from services.intake.models import InboundMessage

if TYPE_CHECKING:
    pass

log = logging.getLogger("helpdesk.intake.smtp")
_tracer = telemetry.tracer(__name__)


MAX_MESSAGE_BYTES = 25 * 1024 * 1024  # the default of HELPDESK_SMTP_MAX_MESSAGE_BYTES
PARSE_TIMEOUT_SECONDS = 10.0  # the listener's read of the header block (bounded work)


class MailEvents(Protocol):
    """Where intake tells notify about mail (``services.common.events.EventPublisher``)."""

    async def publish(self, subject: str, event_id: str, payload: Mapping[str, object]) -> bool: ...


async def store_message(
    sessions: async_sessionmaker[AsyncSession], raw: bytes, mail_from: str, rcpt_to: list[str]
) -> tuple[str, bool]:
    """Record the raw message once per Message-ID (or content hash, without one).

    Returns its ID and whether it was new. The key is read from the header block in a
    worker thread with a time limit, so that no message stalls the event loop.
    """
    try:
        key = await asyncio.wait_for(
            asyncio.to_thread(mailparse.quick_dedup_key, raw), PARSE_TIMEOUT_SECONDS
        )
    except Exception:  # unreadable or too slow: the whole content identifies it
        key = mailparse.raw_key(raw)
    async with sessions() as session:
        existing = (
            await session.scalars(select(InboundMessage.id).where(InboundMessage.dedup_key == key))
        ).first()
        if existing is not None:
            return existing, False
        row = InboundMessage(
            id=uuid.uuid4().hex,
            dedup_key=key,
            mail_from="" if null_path(mail_from) else mail_from[:320],
            rcpt_to=[r[:320] for r in rcpt_to[:100]],
            raw=raw,
            status="RECEIVED",
            ticket_id=0,
            detail="",
            attempts=0,
            received_at=datetime.now(UTC),
            traceparent=telemetry.traceparent(),
        )
        session.add(row)
        try:
            await session.commit()
        except IntegrityError:  # the same message, delivered twice at once
            await session.rollback()
            return (
                await session.scalars(
                    select(InboundMessage.id).where(InboundMessage.dedup_key == key)
                )
            ).one(), False
        return row.id, True


def null_path(mail_from: str) -> bool:
    """The empty reverse path (``MAIL FROM:<>``, which aiosmtpd reports as ``<>``): what
    delivery reports and auto-replies travel with."""
    return mail_from.strip() in ("", "<>")


class SupportMailHandler:
    """aiosmtpd handler for the support address (and its aliases, and the fax gateway's)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        accepted: set[str],
        wake: asyncio.Event,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        self.sessions = sessions
        self.accepted = {a.lower() for a in accepted if a}
        self.wake = wake
        self.max_message_bytes = max_message_bytes

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if address.lower() not in self.accepted:
            return f"550 5.7.1 <{address}>: this server only accepts mail for the help desk"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        if not isinstance(raw, bytes):
            raw = str(raw).encode("utf-8", "surrogateescape")
        if len(raw) > self.max_message_bytes:  # aiosmtpd's own limit answers first
            return f"552 5.3.4 message larger than {self.max_message_bytes} bytes"
        # The first span of an emailed ticket's trace: its row keeps the context.
        with _tracer.start_as_current_span(
            "smtp accept",
            kind=SpanKind.SERVER,
            attributes={"helpdesk.mail.bytes": len(raw)},
        ) as span:
            try:
                stored, new = await self.store(
                    raw, str(envelope.mail_from or ""), list(envelope.rcpt_tos)
                )
            except Exception as err:
                log.exception("could not store an inbound message; asking the sender to retry")
                span.set_status(Status(StatusCode.ERROR, repr(err)))
                return "451 4.3.0 temporary failure, please retry later"
            span.set_attribute("helpdesk.mail.stored_id", stored)
            span.set_attribute("helpdesk.mail.duplicate", not new)
        self.wake.set()
        return f"250 2.0.0 queued as {stored}"

    async def store(self, raw: bytes, mail_from: str, rcpt_to: list[str]) -> tuple[str, bool]:
        """Record the raw message (once per Message-ID or content hash); (ID, new)."""
        return await store_message(self.sessions, raw, mail_from, rcpt_to)


async def start_listener(
    handler: SupportMailHandler, host: str, port: int, hostname: str
) -> asyncio.Server:
    """Serve SMTP on the running loop (so the handler shares the loop's database engine).

    aiosmtpd answers ``552`` to a message (or a ``SIZE=``) over the handler's limit.
    """
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: SMTP(
            handler,
            data_size_limit=handler.max_message_bytes,
            hostname=hostname,
            enable_SMTPUTF8=True,
        ),
        host=host,
        port=port,
    )
