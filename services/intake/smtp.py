"""Inbound mail: an SMTP listener that answers ``250`` only once the raw message is stored,
and a processor that turns stored messages into tickets or comments, exactly once.

Only the support address, its aliases and the fax gateway's address are accepted (``550``
otherwise: never an open relay); oversize mail gets ``552`` (``HELPDESK_SMTP_MAX_MESSAGE_BYTES``);
a storage failure answers ``451`` so the sender retries. ``IntakeService.SubmitEmail`` stores
through ``store_message`` too, so both ways in are one path.

What a stored message becomes: a delivery-status report marks the notification it reports
``BOUNCED`` (an event to notify); automatic mail (an out-of-office, an auto-responder) that
threads to a ticket is attached to it as an internal system note that changes nothing, and
is otherwise ignored (it never opens a ticket); a contact's mail becomes a ticket (``FAX``
when sent to the fax gateway) or a comment; an unknown sender of an organisation's domain
becomes its contact first (unless the organisation turned that off), and anyone else is a
prospect: a sales request with its own polite reply, never a ticket.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, cast

import grpc
from aiosmtpd.smtp import SMTP, Envelope, Session
from nats.errors import Error as NatsError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import tickets_pb2 as tpb
from services.common.auth import bearer_metadata
from services.common.events import mail_subject
from services.intake import mailparse
from services.intake.models import InboundMessage, SalesRequest
from services.intake.pending import drain_forever

if TYPE_CHECKING:
    from helpdesk.v1.directory_pb2_grpc import DirectoryServiceAsyncStub
    from helpdesk.v1.tickets_pb2_grpc import TicketServiceAsyncStub

log = logging.getLogger("helpdesk.intake.smtp")

MAX_MESSAGE_BYTES = 25 * 1024 * 1024  # the default of HELPDESK_SMTP_MAX_MESSAGE_BYTES
PARSE_TIMEOUT_SECONDS = 10.0
# An automatic message attached to its ticket: at most this much of its text.
NOTE_TEXT_CHARS = 500
MAX_REQUEST_ID = 200  # the tickets service's limit on a request_id
MAX_BODY_CHARS = 100_000  # ... on a description or a comment
_MSG_ID = re.compile(r"^<[^<>\s]{1,250}>$")
# gRPC failures worth retrying later; anything else marks the message FAILED.
TRANSIENT = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
}


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
            mail_from=mail_from[:320],
            rcpt_to=[r[:320] for r in rcpt_to[:100]],
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
            ).one(), False
        return row.id, True


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
        try:
            stored, _ = await self.store(
                raw, str(envelope.mail_from or ""), list(envelope.rcpt_tos)
            )
        except Exception:
            log.exception("could not store an inbound message; asking the sender to retry")
            return "451 4.3.0 temporary failure, please retry later"
        self.wake.set()
        return f"250 2.0.0 queued as {stored}"

    async def store(self, raw: bytes, mail_from: str, rcpt_to: list[str]) -> tuple[str, bool]:
        """Record the raw message (once per Message-ID or content hash); (ID, new)."""
        return await store_message(self.sessions, raw, mail_from, rcpt_to)


@dataclass(frozen=True)
class Outcome:
    # TICKET_CREATED | COMMENT_ADDED | NOTE_ADDED | SATISFACTION | IGNORED | PROSPECT |
    # BOUNCE | FAILED
    status: str
    ticket_id: int = 0
    detail: str = ""


# How many senders' domains are turned into tickets at the same time.
CONCURRENT_DOMAINS = 8


class MailProcessor:
    """Turns stored messages into tickets, comments, sales requests or bounce records."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        tickets: TicketServiceAsyncStub,
        directory: DirectoryServiceAsyncStub,
        service_token: str,
        wake: asyncio.Event,
        our_domain: str = "helpdesk.localhost",
        *,
        events: MailEvents | None = None,
        our_addresses: set[str] | None = None,
        fax_address: str = "",
        limits: mailparse.Limits = mailparse.DEFAULT_LIMITS,
    ) -> None:
        self.sessions = sessions
        self.tickets = tickets
        self.directory = directory
        self.metadata = bearer_metadata(service_token)
        self.wake = wake
        self.events = events
        self.our_addresses = {a.lower() for a in (our_addresses or set()) if a}
        self.fax_address = fax_address.lower()
        self.limits = limits
        # Our outgoing mail references <ticket-42@our_domain> and its Message-ID names the
        # ticket, <notify.created.t42.<hash>@our_domain> (see notify's mailer).
        self.our_ticket_ref = re.compile(
            rf"^<(?:ticket-(\d{{1,12}})|notify\.[a-z_]+\.t(\d{{1,12}})\.[0-9a-f]{{32}})"
            rf"@{re.escape(our_domain)}>$",
            re.IGNORECASE,
        )

    async def run_forever(self, idle: float = 5.0) -> None:
        await drain_forever(self.process_pending, self.wake, idle, "mail")

    async def process_pending(self, batch: int = 50) -> bool:
        """Process stored messages; True when some were handled (there may be more).

        Mail from one domain is handled in the order it arrived (a colleague's reply may
        thread to the ticket the previous message opens); different domains concurrently.
        """
        async with self.sessions() as session:
            rows = (
                await session.execute(
                    select(InboundMessage.id, InboundMessage.mail_from)
                    .where(InboundMessage.status == "RECEIVED")
                    .order_by(InboundMessage.received_at)
                    .limit(batch)
                )
            ).all()
        in_order: dict[str, list[str]] = {}
        for message_id, mail_from in rows:
            domain = (mail_from or "").rpartition("@")[2].lower()
            in_order.setdefault(domain, []).append(message_id)
        gate = asyncio.Semaphore(CONCURRENT_DOMAINS)

        async def one_domain(ids: list[str]) -> bool:
            async with gate:
                handled = False
                for message_id in ids:
                    handled |= await self.process(message_id)
                return handled

        return any(await asyncio.gather(*(one_domain(ids) for ids in in_order.values())))

    async def process(self, message_id: str) -> bool:
        async with self.sessions() as session:
            row = await session.get(InboundMessage, message_id)
            if row is None or row.status != "RECEIVED":
                return False
            raw, key, mail_from, rcpt_to = row.raw, row.dedup_key, row.mail_from, row.rcpt_to
        try:
            mail = await asyncio.wait_for(
                asyncio.to_thread(mailparse.parse, raw, self.limits), PARSE_TIMEOUT_SECONDS * 3
            )
            outcome = await self._deliver(message_id, mail, key, mail_from, list(rcpt_to or []))
        except grpc.aio.AioRpcError as err:
            if err.code() in TRANSIENT:
                log.warning("tickets service unavailable (%s); will retry", err.code().name)
                await self._mark(message_id, "RECEIVED", 0, err.details() or "", attempt=True)
                return False
            outcome = Outcome("FAILED", 0, f"{err.code().name}: {err.details()}")
        except (OSError, NatsError, TimeoutError) as err:  # NATS down: keep it, retry later
            log.warning("cannot hand message %s on yet (%r); will retry", message_id, err)
            await self._mark(message_id, "RECEIVED", 0, repr(err)[:900], attempt=True)
            return False
        except Exception as err:
            log.exception("cannot process inbound message %s", message_id)
            outcome = Outcome("FAILED", 0, repr(err)[:900])
        await self._mark(message_id, outcome.status, outcome.ticket_id, outcome.detail)
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

    async def _publish(self, kind: str, event_id: str, payload: dict[str, object]) -> None:
        if self.events is None:
            log.debug("no event publisher: %s %s not published", kind, event_id)
            return
        await self.events.publish(
            mail_subject(kind), event_id, {"event_id": event_id, "type": kind, **payload}
        )

    async def _deliver(
        self,
        stored_id: str,
        mail: mailparse.ParsedMail,
        key: str,
        mail_from: str,
        rcpt_to: list[str],
    ) -> Outcome:
        if mail.bounce is not None:
            return await self._bounce(mail, key)
        if not mail.sender:
            return Outcome("FAILED", 0, "no single, well-formed From address")
        automatic = mail.automatic_reason
        loop = mail.sender in self.our_addresses or any(
            a in mail.x_loop for a in self.our_addresses
        )
        if not automatic and loop:
            automatic = "our own mail came back (a loop)"
        loop = loop or "X-Helpdesk-Ticket" in automatic
        if not automatic and not mail_from and rcpt_to:
            automatic = "empty return path (a report or an auto-reply)"
        if automatic:
            # An out-of-office answering our mail belongs on its ticket, moving nothing;
            # our own mail coming back is dropped.
            noted = None if loop else await self._automatic_note(mail, key, automatic)
            return noted or Outcome("IGNORED", 0, f"automatic message: {automatic}")
        fax = bool(self.fax_address) and self.fax_address in {
            *(r.lower() for r in rcpt_to),
            *mail.recipients,
        }
        contact = await self._contact(mail)
        if contact is None:
            return await self._prospect(stored_id, mail, key)
        answered = await self._survey_answer(mail, contact)
        if answered is not None:
            return answered
        attachments = [
            pb.Attachment(filename=a.filename, content_type=a.content_type, content=a.content)
            for a in mail.attachments
        ]
        body = mail.text or "(messaggio senza testo)"
        if mail.skipped_attachments:
            note = "\n\n[Allegati non accettati: " + "; ".join(mail.skipped_attachments) + "]"
            body = body[: MAX_BODY_CHARS - min(len(note), 2000)] + note[:2000]
        body = body[:MAX_BODY_CHARS]
        target = await self._threaded_ticket(mail, contact)
        if target is None:
            tag = (
                mail.ticket_tag
                if mail.ticket_tag is not None
                else (_fax_ticket_id(mail) if fax else None)
            )
            if tag is not None:
                target = await self._tagged_ticket(tag, contact)
        if target is not None:
            reply: tpb.AddCommentResponse = await self._call(
                self.tickets.AddComment,
                tpb.AddCommentRequest(
                    ticket_id=target,
                    request_id=_request_id(key),
                    visibility=pb.COMMENT_VISIBILITY_PUBLIC,
                    author=tpb.Actor(kind=pb.AUTHOR_KIND_CONTACT, id=contact.id),
                    body=body,
                    attachments=attachments,
                ),
            )
            ticket_id = reply.ticket.id or target
            if ticket_id != target:  # a follow-up ticket was opened: its ack answers this mail
                await self._received(ticket_id, mail, key)
            return Outcome("COMMENT_ADDED", ticket_id, f"comment on #{target}")
        created: pb.Ticket = await self._call(
            self.tickets.CreateTicket,
            tpb.CreateTicketRequest(
                request_id=_request_id(key),
                subject=mail.subject.strip() or ("Fax" if fax else "(senza oggetto)"),
                description=body,
                requester_id=contact.id,
                channel=pb.CHANNEL_FAX if fax else pb.CHANNEL_EMAIL,
                attachments=attachments,
            ),
        )
        await self._received(created.id, mail, key)
        return Outcome("TICKET_CREATED", created.id, "fax" if fax else "")

    async def _survey_answer(
        self, mail: mailparse.ParsedMail, contact: dpb.Contact
    ) -> Outcome | None:
        """A reply to the satisfaction survey (seed 002) whose first line is a number from
        1 to 5: the answer, the lines after it the comment. None: handle the mail as usual
        (not a survey reply, no number, or the survey no longer takes answers)."""
        survey_refs = [r for r in mail.replies_to if r.lower().startswith("<notify.survey.")]
        if not survey_refs:
            return None
        ticket_id = 0
        for ref in (*survey_refs, *mail.replies_to):
            matched = self.our_ticket_ref.match(ref)
            if matched:
                ticket_id = int(matched.group(1) or matched.group(2))
                break
        ticket_id = ticket_id or (mail.ticket_tag or 0)
        lines = [line.strip() for line in (mail.text or "").strip().splitlines()]
        rating = _SURVEY_RATING.match(lines[0]) if lines else None
        if not ticket_id or rating is None:
            return None
        comment = "\n".join(lines[1:]).strip()[:2000]
        try:
            await self._call(
                self.tickets.SubmitSatisfaction,
                tpb.SubmitSatisfactionRequest(
                    ticket_id=ticket_id,
                    rating=int(rating.group(1)),
                    comment=comment,
                    actor=tpb.Actor(kind=pb.AUTHOR_KIND_CONTACT, id=contact.id),
                ),
            )
        except grpc.aio.AioRpcError as err:
            if err.code() in _SURVEY_REFUSALS:
                log.info("survey reply for #%s not taken: %s", ticket_id, err.details())
                return None
            raise
        return Outcome("SATISFACTION", ticket_id, f"rating {rating.group(1)}")

    async def _automatic_note(
        self, mail: mailparse.ParsedMail, key: str, why: str
    ) -> Outcome | None:
        """Attach automatic mail that threads to a ticket (In-Reply-To / References, else the
        tag) as an internal system note: no status change, no mail. None when it threads to
        no ticket its sender may write to (it is then ignored). A closed ticket takes no
        note: the message is dropped (logged)."""
        if not mail.sender:
            return None
        target = await self._automatic_target(mail)
        if target is None:
            return None
        snippet = " ".join((mail.text or mail.subject or "").split())
        if len(snippet) > NOTE_TEXT_CHARS:
            snippet = snippet[: NOTE_TEXT_CHARS - 1].rstrip() + "…"
        body = f"Risposta automatica da {mail.sender}: {snippet or '(senza testo)'}"
        try:
            reply: tpb.AddCommentResponse = await self._call(
                self.tickets.AddComment,
                tpb.AddCommentRequest(
                    ticket_id=target,
                    request_id=_request_id(key),
                    visibility=pb.COMMENT_VISIBILITY_INTERNAL,
                    author=tpb.Actor(kind=pb.AUTHOR_KIND_SYSTEM),
                    body=body,
                ),
            )
        except grpc.aio.AioRpcError as err:
            if err.code() not in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND):
                raise
            log.info(
                "automatic message from %s for ticket #%s dropped: %s",
                mail.sender,
                target,
                err.details(),
            )
            return Outcome(
                "IGNORED", target, f"automatic message ({why}) for #{target}: {err.details()}"
            )
        ticket_id = reply.ticket.id or target
        return Outcome("NOTE_ADDED", ticket_id, f"automatic message ({why}) noted on #{ticket_id}")

    async def _automatic_target(self, mail: mailparse.ParsedMail) -> int | None:
        """The ticket automatic mail answers: threading first, then the subject tag; only a
        ticket of the sender's organisation (a contact of it, or an address of one of its
        domains: an auto-responder often writes from another mailbox)."""
        candidates: list[int] = []
        for ref in mail.replies_to:
            ticket_id = await self._ticket_of_ref(ref)
            if ticket_id and ticket_id not in candidates:
                candidates.append(ticket_id)
        if mail.ticket_tag is not None and mail.ticket_tag not in candidates:
            candidates.append(mail.ticket_tag)
        contact: dpb.Contact | None = None
        try:
            contact = await self._call(
                self.directory.GetContactByEmail, dpb.GetContactByEmailRequest(email=mail.sender)
            )
        except grpc.aio.AioRpcError as err:
            if err.code() != grpc.StatusCode.NOT_FOUND:
                raise
        domain = mail.sender.rsplit("@", 1)[-1].lower()
        for ticket_id in candidates[:10]:
            try:
                ticket: pb.Ticket = await self._call(
                    self.tickets.GetTicket, tpb.GetTicketRequest(id=ticket_id)
                )
            except grpc.aio.AioRpcError as err:
                if err.code() == grpc.StatusCode.NOT_FOUND:
                    continue
                raise
            if contact is not None:
                if contact.organization_id == ticket.organization_id:
                    return ticket.id
                continue
            org: dpb.Organization = await self._call(
                self.directory.GetOrganization,
                dpb.GetOrganizationRequest(id=ticket.organization_id),
            )
            if domain in (d.lower() for d in org.email_domains):
                return ticket.id
        return None

    async def _ticket_of_ref(self, ref: str) -> int:
        """The ticket a Message-ID names: one of ours (``<ticket-N@our domain>``) or a
        message we received and filed on a ticket; 0 when none."""
        matched = self.our_ticket_ref.match(ref)
        if matched:
            return int(matched.group(1) or matched.group(2))
        async with self.sessions() as session:
            return (
                await session.scalars(
                    select(InboundMessage.ticket_id).where(
                        InboundMessage.dedup_key == f"mid:{ref}",
                        InboundMessage.ticket_id > 0,
                    )
                )
            ).first() or 0

    async def _received(self, ticket_id: int, mail: mailparse.ParsedMail, key: str) -> None:
        """Tell notify which message opened the ticket: its acknowledgement answers it
        (In-Reply-To), or is not sent at all when the mail must get no automatic reply."""
        await self._publish(
            "received",
            f"mail-received:{ticket_id}:{hashlib.sha256(key.encode()).hexdigest()[:24]}",
            {
                "ticket_id": ticket_id,
                "message_id": mail.message_id if _MSG_ID.match(mail.message_id) else "",
                "sender": mail.sender,
                "auto_reply": mail.auto_reply_allowed,
                "no_auto_reply_reason": mail.no_auto_reply_reason,
            },
        )

    async def _bounce(self, mail: mailparse.ParsedMail, key: str) -> Outcome:
        bounce = mail.bounce
        assert bounce is not None
        ours = [i for i in bounce.original_message_ids if i.startswith("<notify.")]
        if not ours:
            return Outcome("BOUNCE", 0, "delivery report about none of our messages")
        await self._publish(
            "bounce",
            f"mail-bounce:{hashlib.sha256(key.encode()).hexdigest()[:32]}",
            {
                "original_message_ids": ours,
                "recipients": bounce.recipients,
                "action": bounce.action,
                "status": bounce.status,
                "diagnostic": bounce.diagnostic,
            },
        )
        return Outcome("BOUNCE", 0, f"bounce of {', '.join(ours)}: {bounce.status}")

    async def _prospect(self, stored_id: str, mail: mailparse.ParsedMail, key: str) -> Outcome:
        """Not a customer (seed 003): a sales request and its own polite reply."""
        locale = "en" if mail.content_language.startswith("en") else "it"
        async with self.sessions() as session:
            existing = (
                await session.scalars(
                    select(SalesRequest).where(SalesRequest.inbound_message_id == stored_id)
                )
            ).first()
            if existing is None:
                existing = SalesRequest(
                    id=uuid.uuid4().hex,
                    inbound_message_id=stored_id,
                    sender=mail.sender,
                    sender_name=mail.sender_name,
                    subject=mail.subject,
                    body=mail.text,
                    locale=locale,
                    attachment_names=[a.filename for a in mail.attachments],
                    received_at=datetime.now(UTC),
                )
                session.add(existing)
                await session.commit()
            request_id = existing.id
        if mail.auto_reply_allowed:
            await self._publish(
                "prospect",
                f"mail-prospect:{request_id}",
                {
                    "request_id": request_id,
                    "sender": mail.sender,
                    "sender_name": mail.sender_name,
                    "subject": mail.subject,
                    "message_id": mail.message_id if _MSG_ID.match(mail.message_id) else "",
                    "locale": locale,
                },
            )
        detail = f"{mail.sender} is not a customer: sales request {request_id}"
        return Outcome("PROSPECT", 0, detail)

    async def _contact(self, mail: mailparse.ParsedMail) -> dpb.Contact | None:
        """The sender's contact; a new one when the sender's domain is an organisation's
        email domain; None for a prospect."""
        try:
            return cast(
                dpb.Contact,
                await self._call(
                    self.directory.GetContactByEmail,
                    dpb.GetContactByEmailRequest(email=mail.sender),
                ),
            )
        except grpc.aio.AioRpcError as err:
            if err.code() != grpc.StatusCode.NOT_FOUND:
                raise
        org = await self._organization_of(mail.sender.rsplit("@", 1)[1])
        # The organisation's policy: unset is on; off, a stranger of its domain is a prospect.
        if org is None or (
            org.HasField("add_contacts_by_domain") and not org.add_contacts_by_domain
        ):
            return None
        name = mail.sender_name or mail.sender.split("@", 1)[0]
        try:
            return cast(
                dpb.Contact,
                await self._call(
                    self.directory.AddContact,
                    dpb.AddContactRequest(organization_id=org.id, name=name, email=mail.sender),
                ),
            )
        except grpc.aio.AioRpcError as err:
            if err.code() != grpc.StatusCode.ALREADY_EXISTS:  # a concurrent retry added it
                raise
        return cast(
            dpb.Contact,
            await self._call(
                self.directory.GetContactByEmail, dpb.GetContactByEmailRequest(email=mail.sender)
            ),
        )

    async def _organization_of(self, domain: str) -> dpb.Organization | None:
        """The organisation whose email domains include ``domain`` (None: none)."""
        try:
            return cast(
                dpb.Organization,
                await self._call(
                    self.directory.GetOrganizationByDomain,
                    dpb.GetOrganizationByDomainRequest(domain=domain),
                ),
            )
        except grpc.aio.AioRpcError as err:
            # INVALID_ARGUMENT: not a domain an organisation could have (an IP literal...).
            if err.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                return None
            raise

    async def _threaded_ticket(
        self, mail: mailparse.ParsedMail, contact: dpb.Contact
    ) -> int | None:
        """The ticket this mail answers, by In-Reply-To / References: one of our messages
        (which reference ``<ticket-N@our domain>``) or a message we received earlier."""
        for ref in mail.replies_to:
            ticket_id = await self._ticket_of_ref(ref)
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


_FAX_ID = re.compile(
    r"(?:#|\b(?:ticket|richiesta|pratica)\s*(?:n\.?|nr\.?|numero)?\s*#?)\s*(\d{1,12})\b",
    re.IGNORECASE,
)


# "4", "5.", "5/5", "4 - ottimo" on the first line of a reply to the survey.
_SURVEY_RATING = re.compile(r"^([1-5])(?:\s*/\s*5)?(?:\s*[.!:,-].*)?$")
# The survey no longer takes answers (closed window, not the requester): a normal mail.
_SURVEY_REFUSALS = frozenset(
    {
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
    }
)


def _request_id(key: str) -> str:
    """The tickets service's idempotency key for a stored message (its dedup key, hashed
    when too long: a Message-ID may be up to 280 characters)."""
    request_id = f"email:{key}"
    if len(request_id) <= MAX_REQUEST_ID:
        return request_id
    return "email:sha256:" + hashlib.sha256(key.encode()).hexdigest()


def _fax_ticket_id(mail: mailparse.ParsedMail) -> int | None:
    """A ticket ID a fax quotes ("#42", "ticket 42", "richiesta n. 42") in its subject or in
    the first lines of its text (a gateway's cover page)."""
    for text in (mail.subject, "\n".join(mail.text.splitlines()[:10])):
        found = _FAX_ID.search(text)
        if found:
            return int(found.group(1))
    return None


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
