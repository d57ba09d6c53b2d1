"""Inbound mail: an SMTP listener that answers ``250`` only once the raw message is stored,
and a processor that turns stored messages into tickets or comments, exactly once.

Only the support address and its aliases are accepted (``550`` otherwise: never an open
relay); oversize mail gets ``552`` from aiosmtpd's size limit; a storage failure answers
``451`` so the sender retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import grpc
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import tickets_pb2 as tpb
from services.common.auth import bearer_metadata
from services.intake import mailparse
from services.intake.models import InboundMessage

if TYPE_CHECKING:
    from helpdesk.v1.directory_pb2_grpc import DirectoryServiceAsyncStub
    from helpdesk.v1.tickets_pb2_grpc import TicketServiceAsyncStub

log = logging.getLogger("helpdesk.intake.smtp")

MAX_MESSAGE_BYTES = 25 * 1024 * 1024
# gRPC failures worth retrying later; anything else marks the message FAILED.
TRANSIENT = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
}


class SupportMailHandler:
    """aiosmtpd handler for the support address."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], accepted: set[str], wake: asyncio.Event
    ) -> None:
        self.sessions = sessions
        self.accepted = {a.lower() for a in accepted}
        self.wake = wake

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
        try:
            stored = await self.store(raw, str(envelope.mail_from or ""), list(envelope.rcpt_tos))
        except Exception:
            log.exception("could not store an inbound message; asking the sender to retry")
            return "451 4.3.0 temporary failure, please retry later"
        self.wake.set()
        return f"250 2.0.0 queued as {stored}"

    async def store(self, raw: bytes, mail_from: str, rcpt_to: list[str]) -> str:
        """Record the raw message (once per Message-ID or content hash); returns its ID."""
        try:
            key = mailparse.parse(raw).dedup_key
        except Exception:  # unreadable beyond repair: still never lose it
            key = mailparse.raw_key(raw)
        async with self.sessions() as session:
            existing = (
                await session.scalars(
                    select(InboundMessage.id).where(InboundMessage.dedup_key == key)
                )
            ).first()
            if existing is not None:
                return existing
            row = InboundMessage(
                id=uuid.uuid4().hex,
                dedup_key=key,
                mail_from=mail_from[:320],
                rcpt_to=rcpt_to,
                raw=raw,
                status="RECEIVED",
                ticket_id=0,
                detail="",
                attempts=0,
                received_at=datetime.now(UTC),
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
                ).one()
            return row.id


class MailProcessor:
    """Turns stored messages into tickets or comments through the tickets service."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        tickets: TicketServiceAsyncStub,
        directory: DirectoryServiceAsyncStub,
        service_token: str,
        wake: asyncio.Event,
        our_domain: str = "helpdesk.localhost",
    ) -> None:
        self.sessions = sessions
        self.tickets = tickets
        self.directory = directory
        self.metadata = bearer_metadata(service_token)
        self.wake = wake
        # Our outgoing mail references <ticket-42@our_domain> (see notify's mailer).
        self.our_ticket_ref = re.compile(
            rf"^<ticket-(\d{{1,12}})@{re.escape(our_domain)}>$", re.IGNORECASE
        )

    async def run_forever(self, idle: float = 5.0) -> None:
        while True:
            try:
                busy = await self.process_pending()
            except Exception:
                log.exception("mail processing pass failed")
                busy = False
            if not busy:
                self.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), timeout=idle)

    async def process_pending(self, batch: int = 20) -> bool:
        """Process stored messages; True when some were handled (there may be more)."""
        async with self.sessions() as session:
            ids = (
                await session.scalars(
                    select(InboundMessage.id)
                    .where(InboundMessage.status == "RECEIVED")
                    .order_by(InboundMessage.received_at)
                    .limit(batch)
                )
            ).all()
        handled = False
        for message_id in ids:
            handled |= await self.process(message_id)
        return handled

    async def process(self, message_id: str) -> bool:
        async with self.sessions() as session:
            row = await session.get(InboundMessage, message_id)
            if row is None or row.status != "RECEIVED":
                return False
            raw, key = row.raw, row.dedup_key
        try:
            status, ticket_id, detail = await self._deliver(mailparse.parse(raw), key)
        except grpc.aio.AioRpcError as err:
            if err.code() in TRANSIENT:
                log.warning("tickets service unavailable (%s); will retry", err.code().name)
                await self._mark(message_id, "RECEIVED", 0, err.details() or "", attempt=True)
                return False
            status, ticket_id, detail = "FAILED", 0, f"{err.code().name}: {err.details()}"
        except Exception as err:
            log.exception("cannot process inbound message %s", message_id)
            status, ticket_id, detail = "FAILED", 0, repr(err)[:900]
        await self._mark(message_id, status, ticket_id, detail)
        return True

    async def _mark(
        self, message_id: str, status: str, ticket_id: int, detail: str, attempt: bool = False
    ) -> None:
        async with self.sessions() as session:
            row = await session.get(InboundMessage, message_id)
            if row is None:
                return
            row.status, row.ticket_id, row.detail = status, ticket_id, detail[:1000]
            row.attempts += 1 if attempt else 0
            if status != "RECEIVED":
                row.processed_at = datetime.now(UTC)
            await session.commit()

    async def _call(self, rpc: Any, request: Any) -> Any:
        return await rpc(request, metadata=self.metadata, timeout=90)

    async def _deliver(self, mail: mailparse.ParsedMail, key: str) -> tuple[str, int, str]:
        if not mail.sender:
            return "FAILED", 0, "no single, well-formed From address"
        if mail.automatic:
            return "IGNORED", 0, "automatic message (auto-reply, bulk, list or report)"
        try:
            contact: dpb.Contact = await self._call(
                self.directory.GetContactByEmail, dpb.GetContactByEmailRequest(email=mail.sender)
            )
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.NOT_FOUND:
                return "PROSPECT", 0, f"{mail.sender} is not a contact of any organization"
            raise
        attachments = [
            pb.Attachment(filename=a.filename, content_type=a.content_type, content=a.content)
            for a in mail.attachments
        ]
        body = mail.text or "(messaggio senza testo)"
        target = await self._threaded_ticket(mail, contact)
        if target is None and mail.ticket_tag is not None:
            target = await self._tagged_ticket(mail.ticket_tag, contact)
        if target is not None:
            reply: tpb.AddCommentResponse = await self._call(
                self.tickets.AddComment,
                tpb.AddCommentRequest(
                    ticket_id=target,
                    request_id=f"email:{key}",
                    visibility=pb.COMMENT_VISIBILITY_PUBLIC,
                    author=tpb.Actor(kind=pb.AUTHOR_KIND_CONTACT, id=contact.id),
                    body=body,
                    attachments=attachments,
                ),
            )
            return "COMMENT_ADDED", reply.ticket.id, f"comment on #{target}"
        created: pb.Ticket = await self._call(
            self.tickets.CreateTicket,
            tpb.CreateTicketRequest(
                request_id=f"email:{key}",
                subject=mail.subject or "(senza oggetto)",
                description=body,
                requester_id=contact.id,
                channel=pb.CHANNEL_EMAIL,
                attachments=attachments,
            ),
        )
        return "TICKET_CREATED", created.id, ""

    async def _threaded_ticket(
        self, mail: mailparse.ParsedMail, contact: dpb.Contact
    ) -> int | None:
        """The ticket this mail answers, by In-Reply-To / References: one of our messages
        (which reference ``<ticket-N@our domain>``) or a message we received earlier."""
        for ref in mail.replies_to:
            matched = self.our_ticket_ref.match(ref)
            if matched:
                ticket_id = int(matched.group(1))
            else:
                async with self.sessions() as session:
                    ticket_id = (
                        await session.scalars(
                            select(InboundMessage.ticket_id).where(
                                InboundMessage.dedup_key == f"mid:{ref}",
                                InboundMessage.ticket_id > 0,
                            )
                        )
                    ).first() or 0
            if ticket_id:
                found = await self._tagged_ticket(ticket_id, contact)
                if found is not None:
                    return found
        return None

    async def _tagged_ticket(self, ticket_id: int, contact: dpb.Contact) -> int | None:
        """The tagged ticket, when it exists and belongs to the sender's organisation; a tag
        naming another organisation's ticket is ignored (nothing of it leaks)."""
        try:
            ticket: pb.Ticket = await self._call(
                self.tickets.GetTicket, tpb.GetTicketRequest(id=ticket_id)
            )
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise
        return ticket.id if ticket.organization_id == contact.organization_id else None


async def start_listener(
    handler: SupportMailHandler, host: str, port: int, hostname: str
) -> asyncio.Server:
    """Serve SMTP on the running loop (so the handler shares the loop's database engine)."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: SMTP(
            handler, data_size_limit=MAX_MESSAGE_BYTES, hostname=hostname, enable_SMTPUTF8=True
        ),
        host=host,
        port=port,
    )
