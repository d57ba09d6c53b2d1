"""Turning stored instant-messaging updates into tickets, comments and bot replies.

The webhook stored each update (``im_updates``) before its ``200``; this works from the
table, like ``MailProcessor`` for mail. Calls to the tickets service carry idempotency
keys made from the update (``im:<provider>:<id>``), and what the update changes in intake's
tables is committed in one transaction with its status and with the events it announces
(``im_outbox``), which are then published and deleted. A crash anywhere loses nothing and
a retry duplicates nothing. As for mail, several replicas may run it: an update is claimed
under a lease and its outcome committed only while the claim holds; a chat's updates keep
their order; a failing update waits (backoff), holds no other, and ends FAILED after
``MAX_FAILURES`` attempts that count. Files over the limits, or refused by the tickets
service, are left out, named on the ticket and told to the sender.

Who wrote (``DirectoryService.GetContactByIm``):

- a linked contact in a private chat: the chat's open IM ticket takes the message as the
  contact's comment; with none (or the last one SOLVED / CLOSED) a new ticket opens;
- an unknown sender in a private chat: the linking flow. The bot asks for the registered
  email; an email address gets the same answer whether or not it is a contact's, and only a
  contact's address receives a 6-digit code (through notify, on the secrets stream); the
  code typed in the chat links the account (``LinkContactIm``). Codes expire after 15
  minutes, are single-use, 5 wrong ones start over, at most 3 codes an hour. Nothing of
  any organisation is created or shown;
- a registered group chat (``RegisterImGroup``): its linked members of that organisation
  open and comment the group's ticket as themselves; an unlinked member is asked (once) to
  link privately, and what they write lands on the group's open ticket as an internal note
  (agents see it, nothing is opened in anyone's name); unregistered groups are ignored.

The critical tier: a message matching ``HELPDESK_CRITICAL_KEYWORDS`` opens a CRITICAL
(URGENT) ticket at once. Otherwise the bot asks "Il lavoro è fermo? / Is work stopped?"
and holds the message: "sì"/"yes" opens it CRITICAL, "no" BLOCKING (HIGH), any other
message opens it BLOCKING (CRITICAL if that message has a keyword) and joins it as a
comment; with no answer within ``question_timeout`` it opens BLOCKING anyway.

An edited message is added to the chat's open ticket as a comment marked as an edit
(ignored when the chat has none).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import grpc
from nats.errors import Error as NatsError
from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import tickets_pb2 as tpb
from services.common.auth import bearer_metadata
from services.common.events import EventPublisher, SecretPublisher
from services.common.messages.im import subject as im_subject
from services.common.messages.secrets import SecretEventPayload
from services.intake import claims
from services.intake.im_media import Fetched, MediaFetcher, MediaTransient, Refused
from services.intake.im_models import ImChat, ImGroup, ImLink, ImOutbox, ImUpdate
from services.intake.im_parse import TELEGRAM, ImMessage, message_of
from services.intake.im_texts import text as bot_text
from services.intake.mailparse import human_size
from services.intake.pending import drain_forever

if TYPE_CHECKING:
    from helpdesk.v1.directory_pb2_grpc import DirectoryServiceAsyncStub
    from helpdesk.v1.tickets_pb2_grpc import TicketServiceAsyncStub

log = logging.getLogger("helpdesk.intake.im")

CODE_TTL = timedelta(minutes=15)
MAX_CODE_ATTEMPTS = 5
MAX_CODES_PER_HOUR = 3
QUESTION_TIMEOUT = timedelta(minutes=2)
# A provider's file that is not there yet is asked for again (2, 4, 8, 10, 10 s apart):
# after about 35 s the message goes on without it (named on the ticket and to the sender).
MAX_ATTEMPTS_BEFORE_GIVING_UP_MEDIA = 6
MAX_BODY_CHARS = 100_000
# As for mail (``services.intake.mail_processor``): INTERNAL / UNKNOWN from the tickets service
# count towards giving up (FAILED after MAX_FAILURES); a service that is down, or a provider's
# file not there yet, is waited for, at most RETRY_WAIT_MAX apart (a chat expects an
# answer soon).
MAX_FAILURES = 5
RETRY_BASE = timedelta(seconds=10)
RETRY_MAX = timedelta(minutes=10)
RETRY_WAIT_BASE = timedelta(seconds=2)
RETRY_WAIT_MAX = timedelta(seconds=10)
COUNTED = frozenset({grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN})
WAITED = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
DONE, RETRY, BUSY = "done", "retry", "busy"
_EMAIL = re.compile(r"[^@\s<>\"',;:]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})+")
_CODE = re.compile(r"^\s*(\d{6})\s*$")
YES = {"si", "sì", "sí", "yes", "y", "s", "certo", "esatto", "yes it is", "sì è fermo"}
NO = {"no", "n", "non", "nope"}
PROVIDER_PB = {"telegram": dpb.IM_PROVIDER_TELEGRAM, "whatsapp": dpb.IM_PROVIDER_WHATSAPP}
CHANNEL_PB = {"telegram": pb.CHANNEL_TELEGRAM, "whatsapp": pb.CHANNEL_WHATSAPP}
OPEN_STATUSES_END = (pb.TICKET_STATUS_SOLVED, pb.TICKET_STATUS_CLOSED)

Write = Callable[[AsyncSession], Awaitable[None]]


@dataclass
class Effects:
    """What processing one update decided: its outcome, the writes to intake's tables and
    the events for notify, all committed together."""

    status: str
    ticket_id: int = 0
    detail: str = ""
    writes: list[Write] = field(default_factory=list)
    outbox: list[ImOutbox] = field(default_factory=list)


def keyword_matcher(keywords: tuple[str, ...]) -> re.Pattern[str] | None:
    words = [re.escape(k.strip().lower()) for k in keywords if k.strip()]
    if not words:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(sorted(words, key=len, reverse=True)) + r")(?!\w)")


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w\sàèéìòùí]", " ", text.lower()).split())


class ImProcessor:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        tickets: TicketServiceAsyncStub,
        directory: DirectoryServiceAsyncStub,
        service_token: str,
        wake: asyncio.Event,
        media: MediaFetcher,
        events: EventPublisher | None,
        secrets_out: SecretPublisher | None,
        critical_keywords: tuple[str, ...] = (),
        question_timeout: timedelta = QUESTION_TIMEOUT,
        *,
        max_failures: int = MAX_FAILURES,
        retry_base: timedelta = RETRY_BASE,
        retry_wait_base: timedelta = RETRY_WAIT_BASE,
        lease: timedelta = claims.LEASE,
        replica: str = "",
    ) -> None:
        self.sessions = sessions
        self.tickets = tickets
        self.directory = directory
        self.metadata = bearer_metadata(service_token)
        self.wake = wake
        self.media = media
        self.events = events
        self.secrets_out = secrets_out
        self.critical = keyword_matcher(critical_keywords)
        self.question_timeout = question_timeout
        self.max_failures = max(1, max_failures)
        self.retry_base = retry_base
        self.retry_wait_base = retry_wait_base
        self.lease = lease
        self.replica = replica or claims.replica_name()

    # -- the loop ------------------------------------------------------------------------

    async def run_forever(self, idle: float = 2.0) -> None:
        await drain_forever(self.process_pending, self.wake, idle, "instant-messaging")

    async def process_pending(self, batch: int = 20) -> bool:
        """Process the stored updates that are due, oldest first. Several replicas may run
        this: an update is claimed before it is worked on, and a chat whose earlier
        update another replica holds is left to it for this pass (a conversation keeps
        its order). An update waiting after a failed attempt is not read until it is
        due, so it stands in front of no other."""
        await self.flush_outbox()
        now = datetime.now(UTC)
        async with self.sessions() as session:
            rows = (
                await session.execute(
                    select(
                        ImUpdate.id,
                        ImUpdate.provider,
                        ImUpdate.external_id,
                        ImUpdate.kind,
                        ImUpdate.payload,
                        ImUpdate.claimed_until,
                    )
                    .where(
                        ImUpdate.status == "RECEIVED",
                        or_(ImUpdate.next_attempt_at.is_(None), ImUpdate.next_attempt_at <= now),
                    )
                    .order_by(ImUpdate.received_at, ImUpdate.id)
                    .limit(batch)
                )
            ).all()
        handled = False
        blocked: set[tuple[str, str]] = set()
        for update_id, provider, key, kind, payload, claimed_until in rows:
            chat = _chat_of(provider, key, kind, payload)
            if chat is not None and chat in blocked:
                continue
            if claimed_until is not None and claimed_until > now:
                if chat is not None:
                    blocked.add(chat)
                continue
            result = await self._process(update_id)
            if result == BUSY and chat is not None:
                blocked.add(chat)
            handled |= result == DONE
        handled |= await self.expire_questions()
        await self.flush_outbox()
        return handled

    async def process(self, update_id: str) -> bool:
        """Process one stored update now (when it is due and nobody else holds it)."""
        return await self._process(update_id) == DONE

    async def _process(self, update_id: str) -> str:
        """DONE (an outcome is committed), RETRY (a later attempt) or BUSY (not ours)."""
        if not await claims.claim(self.sessions, ImUpdate, update_id, self.replica, self.lease):
            return BUSY
        async with claims.Lease(self.sessions, ImUpdate, update_id, self.replica, self.lease):
            return await self._claimed(update_id)

    async def _claimed(self, update_id: str) -> str:
        async with self.sessions() as session:
            row = await session.get(ImUpdate, update_id)
            if row is None or row.status != "RECEIVED" or row.claimed_by != self.replica:
                return BUSY
            provider, key, kind = row.provider, row.external_id, row.kind
            payload, attempts, failures = dict(row.payload), row.attempts, row.failures
        try:
            if kind == "status":
                effects = self._status(update_id, provider, key, payload)
            else:
                msg = message_of(provider, key, payload)
                if msg is None:
                    effects = Effects("IGNORED", detail="not a message we take")
                else:
                    effects = await self._message(
                        update_id, msg, attempts >= MAX_ATTEMPTS_BEFORE_GIVING_UP_MEDIA
                    )
        except grpc.aio.AioRpcError as err:
            detail = f"{err.code().name}: {err.details() or ''}"
            if err.code() in WAITED or err.code() in COUNTED:
                log.warning("update %s: tickets service %s; will retry", update_id, detail)
                counted = err.code() in COUNTED
                return await self._retry(update_id, attempts, failures, detail, counted)
            effects = Effects("FAILED", detail=detail)
        except (MediaTransient, OSError, TimeoutError) as err:
            log.warning("update %s: cannot finish now (%r); will retry", update_id, err)
            return await self._retry(update_id, attempts, failures, repr(err), counted=False)
        except Exception as err:
            log.exception("cannot process instant-messaging update %s", update_id)
            effects = Effects("FAILED", detail=repr(err)[:900])
        return await self._commit(update_id, effects)

    async def _retry(
        self, update_id: str, attempts: int, failures: int, detail: str, counted: bool
    ) -> str:
        """Back for a later attempt, or FAILED once ``max_failures`` counted ones failed."""
        failures += 1 if counted else 0
        if counted and failures >= self.max_failures:
            log.error("update %s: giving up after %d attempts: %s", update_id, failures, detail)
            return await self._commit(
                update_id,
                Effects("FAILED", detail=f"gave up after {failures} failed attempts: {detail}"),
            )
        wait = (
            claims.backoff(failures, self.retry_base, RETRY_MAX)
            if counted
            else claims.backoff(attempts + 1, self.retry_wait_base, RETRY_WAIT_MAX)
        )
        async with self.sessions() as session:
            kept = await claims.record_failure(
                session,
                ImUpdate,
                update_id,
                self.replica,
                attempts=attempts + 1,
                failures=failures,
                retry_in=wait,
                detail=detail,
            )
            await session.commit()
        if not kept:
            log.warning("update %s: no longer ours; its retry is not recorded", update_id)
        return RETRY

    async def _commit(self, update_id: str, effects: Effects) -> str:
        """The outcome, the writes and the events, in one transaction, only while the
        update is still ours (BUSY otherwise: another replica recorded it, or will)."""
        async with self.sessions() as session:
            kept = await claims.record_outcome(
                session,
                ImUpdate,
                update_id,
                self.replica,
                status=effects.status,
                ticket_id=effects.ticket_id,
                detail=effects.detail,
            )
            if not kept:
                await session.rollback()
                log.warning("IM update %s: no longer ours; %s not recorded", update_id, effects)
                return BUSY
            applied = await _apply(session, effects)
        if not applied:  # lost a race on a chat row: let go of it, to be redone soon
            async with self.sessions() as session:
                await claims.write_back(
                    session,
                    ImUpdate,
                    update_id,
                    self.replica,
                    claimed_by="",
                    claimed_until=None,
                    next_attempt_at=datetime.now(UTC) + self.retry_wait_base,
                )
                await session.commit()
            return BUSY
        log.info("IM update %s: %s %s", update_id, effects.status, effects.detail)
        return DONE

    async def flush_outbox(self) -> None:
        """Publish committed events in order; each is deleted once NATS has it."""
        async with self.sessions() as session:
            rows = (await session.scalars(select(ImOutbox).order_by(ImOutbox.seq).limit(100))).all()
        for row in rows:
            try:
                if row.kind == "secret":
                    if self.secrets_out is not None:
                        # Stored by this processor as a secret event (the link code).
                        secret = cast(SecretEventPayload, row.payload)
                        await self.secrets_out.publish(row.event_type, secret)
                elif self.events is not None:
                    await self.events.publish(im_subject(row.event_type), row.event_id, row.payload)
            except (OSError, NatsError, TimeoutError) as err:
                log.warning("cannot publish %s yet (%r); will retry", row.event_id, err)
                return
            async with self.sessions() as session:
                await session.execute(delete(ImOutbox).where(ImOutbox.seq == row.seq))
                await session.commit()

    # -- what an update is ---------------------------------------------------------------

    def _status(self, update_id: str, provider: str, key: str, payload: dict[str, Any]) -> Effects:
        found = payload.get("status")
        status: dict[str, Any] = found if isinstance(found, dict) else {}
        listed = status.get("errors")
        errors: list[Any] = listed if isinstance(listed, list) else []
        event = {
            "type": "status",
            "provider": provider,
            "message_id": str(status.get("id") or ""),
            "status": str(status.get("status") or ""),
            "recipient": str(status.get("recipient_id") or ""),
            "timestamp": str(status.get("timestamp") or ""),
            "error": "; ".join(
                f"{e.get('code')}: {e.get('title') or e.get('message') or ''}"
                for e in errors
                if isinstance(e, dict)
            ),
        }
        return Effects(
            "STATUS",
            detail=f"{event['message_id']} {event['status']}",
            outbox=[_event(f"im-status:{provider}:{key}", "status", event)],
        )

    async def _message(self, update_id: str, msg: ImMessage, give_up_media: bool) -> Effects:
        if not msg.chat_id or not msg.sender_id:
            return Effects("IGNORED", detail="no chat or sender")
        group_org = 0
        if msg.group:
            group = await self._get(ImGroup, msg.provider, msg.chat_id)
            if group is None:
                return Effects("IGNORED", detail=f"group chat {msg.chat_id} is not registered")
            group_org = group.organization_id
        contact = await self._contact_by_im(msg)
        if contact is not None and group_org and contact.organization_id != group_org:
            contact = None  # someone of another organisation in this customer's group
        if contact is None:
            if msg.group:
                return await self._unlinked_member(update_id, msg)
            return await self._linking(update_id, msg)
        chat = await self._get(ImChat, msg.provider, msg.chat_id)
        open_ticket = 0
        if chat is not None and chat.ticket_id and await self._is_open(chat.ticket_id):
            open_ticket = chat.ticket_id
        if msg.edited:
            if not open_ticket:
                return Effects("IGNORED", detail="edit of a message with no open ticket")
            return await self._comment(update_id, msg, contact, open_ticket, edited=True)
        if chat is not None and chat.state == "AWAIT_CRITICAL" and chat.pending_update_id:
            return await self._answer(update_id, msg, contact, chat, give_up_media)
        if open_ticket:
            return await self._comment(update_id, msg, contact, open_ticket)
        if self._is_critical(msg.text):
            return await self._open(update_id, msg, contact, "CRITICAL", give_up_media)
        # A new conversation without keywords: ask, and hold the message for the answer.
        now = datetime.now(UTC)

        async def hold(session: AsyncSession) -> None:
            row = await session.get(ImChat, (msg.provider, msg.chat_id))
            if row is None:
                row = ImChat(provider=msg.provider, chat_id=msg.chat_id, ticket_id=0)
                session.add(row)
            row.contact_id, row.state, row.pending_update_id = (
                contact.id,
                "AWAIT_CRITICAL",
                update_id,
            )
            row.asked_at = row.updated_at = now

        return Effects(
            "HELD",
            detail="asked whether work is stopped",
            writes=[hold],
            outbox=[self._say(update_id, 0, msg, "im_critical_question", contact.locale)],
        )

    async def expire_questions(self) -> bool:
        """Open the held messages nobody answered in time (BLOCKING)."""
        cutoff = datetime.now(UTC) - self.question_timeout
        async with self.sessions() as session:
            chats = (
                await session.scalars(
                    select(ImChat).where(ImChat.state == "AWAIT_CRITICAL", ImChat.asked_at < cutoff)
                )
            ).all()
        done = False
        for chat in chats:
            try:
                pending = await self._pending(chat)
                if pending is None:
                    await self._clear_question(chat)
                    continue
                pending_id, pending_msg = pending
                contact = await self._call(
                    self.directory.GetContact, dpb.GetContactRequest(id=chat.contact_id)
                )
                effects = await self._open(pending_id, pending_msg, contact, "BLOCKING", True)
                effects.detail += " (no answer to the question)"
                await self._commit_held(pending_id, effects)
                done = True
            except grpc.aio.AioRpcError as err:
                log.warning("cannot open held message of %s yet: %s", chat.chat_id, err.code())
        return done

    async def _commit_held(self, pending_id: str, effects: Effects) -> None:
        """Commit the effects of opening a held message (its row leaves HELD), once: the
        row moves only from HELD (another replica may have opened it first)."""
        async with self.sessions() as session:
            moved = await session.execute(
                update(ImUpdate)
                .where(ImUpdate.id == pending_id, ImUpdate.status == "HELD")
                .values(
                    status=effects.status,
                    ticket_id=effects.ticket_id,
                    detail=effects.detail[:1000],
                    processed_at=datetime.now(UTC),
                )
                .execution_options(synchronize_session=False)
            )
            if getattr(moved, "rowcount", 0) != 1:
                await session.rollback()
                return
            await _apply(session, effects)

    async def _clear_question(self, chat: ImChat) -> None:
        async with self.sessions() as session:
            row = await session.get(ImChat, (chat.provider, chat.chat_id))
            if row is not None:
                row.state, row.pending_update_id = "", ""
                await session.commit()

    async def _pending(self, chat: ImChat) -> tuple[str, ImMessage] | None:
        async with self.sessions() as session:
            row = await session.get(ImUpdate, chat.pending_update_id)
            if row is None or row.status != "HELD":
                return None
            msg = message_of(row.provider, row.external_id, dict(row.payload))
        return (row.id, msg) if msg is not None else None

    async def _answer(
        self,
        update_id: str,
        msg: ImMessage,
        contact: dpb.Contact,
        chat: ImChat,
        give_up_media: bool,
    ) -> Effects:
        """The message after the question: it decides the held message's tier."""
        pending = await self._pending(chat)
        if pending is None:
            await self._clear_question(chat)
            return await self._message(update_id, msg, give_up_media)
        pending_id, pending_msg = pending
        answer = _norm(msg.text)
        only_answer = not msg.media and (answer in YES or answer in NO)
        if (answer in YES and not msg.media) or self._is_critical(msg.text):
            tier = "CRITICAL"
        else:
            tier = "BLOCKING"
        effects = await self._open(pending_id, pending_msg, contact, tier, give_up_media)

        async def held_done(session: AsyncSession) -> None:
            await session.execute(
                update(ImUpdate)
                .where(ImUpdate.id == pending_id, ImUpdate.status == "HELD")
                .values(
                    status="TICKET_CREATED",
                    ticket_id=effects.ticket_id,
                    detail=f"opened {tier} after the answer",
                    processed_at=datetime.now(UTC),
                )
                .execution_options(synchronize_session=False)
            )

        effects.writes.append(held_done)
        if only_answer:  # "sì" / "no" only answered the question
            effects.detail = f"answer: {tier}"
            return effects
        comment = await self._comment(update_id, msg, contact, effects.ticket_id)
        comment.writes = effects.writes + comment.writes
        comment.outbox = effects.outbox + comment.outbox
        return comment

    def _is_critical(self, text: str) -> bool:
        return bool(self.critical and self.critical.search(text.lower()))

    # -- tickets --------------------------------------------------------------------------

    async def _open(
        self,
        update_id: str,
        msg: ImMessage,
        contact: dpb.Contact,
        tier: str,
        give_up_media: bool,
    ) -> Effects:
        fetched = await self.media.fetch(msg, give_up=give_up_media)
        first_line = next((line.strip() for line in msg.text.splitlines() if line.strip()), "")
        subject = (
            first_line[:120] or f"Messaggio {msg.channel} da {msg.sender_name or contact.name}"
        )

        async def create() -> Any:
            return await self._call(
                self.tickets.CreateTicket,
                tpb.CreateTicketRequest(
                    request_id=f"im:{msg.provider}:{msg.key}",
                    subject=subject,
                    description=self._body(msg, fetched),
                    requester_id=contact.id,
                    channel=CHANNEL_PB[msg.provider],
                    criticality=pb.CRITICALITY_CRITICAL
                    if tier == "CRITICAL"
                    else pb.CRITICALITY_BLOCKING,
                    phone=msg.sender_id if msg.provider == "whatsapp" else "",
                    attachments=fetched.attachments,
                ),
            )

        ticket: pb.Ticket = await _with_files(create, fetched)
        now = datetime.now(UTC)

        async def mapped(session: AsyncSession) -> None:
            row = await session.get(ImChat, (msg.provider, msg.chat_id))
            if row is None:
                row = ImChat(provider=msg.provider, chat_id=msg.chat_id)
                session.add(row)
            row.ticket_id, row.contact_id = ticket.id, contact.id
            row.state, row.pending_update_id, row.updated_at = "", "", now

        opened = "im_ticket_critical" if tier == "CRITICAL" else "im_ticket_opened"
        return Effects(
            "TICKET_CREATED",
            ticket.id,
            f"{tier} ticket #{ticket.id}",
            writes=[mapped],
            outbox=[
                self._ticket_event(msg, ticket.id),
                self._say(update_id, ticket.id, msg, opened, contact.locale, ticket=ticket.id),
                *self._refusals(update_id, ticket.id, msg, fetched, contact.locale),
            ],
        )

    async def _comment(
        self,
        update_id: str,
        msg: ImMessage,
        contact: dpb.Contact,
        ticket_id: int,
        edited: bool = False,
    ) -> Effects:
        fetched = await self.media.fetch(msg, give_up=True) if msg.media else Fetched()

        async def comment() -> Any:
            body = self._body(msg, fetched)
            if edited:
                body = "(messaggio modificato / edited message)\n" + body
            return await self._call(
                self.tickets.AddComment,
                tpb.AddCommentRequest(
                    ticket_id=ticket_id,
                    request_id=f"im:{msg.provider}:{msg.key}",
                    visibility=pb.COMMENT_VISIBILITY_PUBLIC,
                    author=tpb.Actor(kind=pb.AUTHOR_KIND_CONTACT, id=contact.id),
                    body=body[:MAX_BODY_CHARS],
                    attachments=fetched.attachments,
                ),
            )

        reply: tpb.AddCommentResponse = await _with_files(comment, fetched)
        landed = reply.ticket.id or ticket_id
        effects = Effects(
            "COMMENT_ADDED",
            landed,
            f"comment on #{landed}",
            outbox=self._refusals(update_id, landed, msg, fetched, contact.locale),
        )
        if landed != ticket_id:  # closed meanwhile: a follow-up ticket took the message
            now = datetime.now(UTC)

            async def moved(session: AsyncSession) -> None:
                row = await session.get(ImChat, (msg.provider, msg.chat_id))
                if row is not None:
                    row.ticket_id, row.updated_at = landed, now

            effects.writes.append(moved)
            effects.outbox.insert(0, self._ticket_event(msg, landed))
        return effects

    async def _is_open(self, ticket_id: int) -> bool:
        try:
            ticket: pb.Ticket = await self._call(
                self.tickets.GetTicket, tpb.GetTicketRequest(id=ticket_id)
            )
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.NOT_FOUND:
                return False
            raise
        return ticket.status not in OPEN_STATUSES_END

    def _body(self, msg: ImMessage, fetched: Fetched) -> str:
        """The message's text, naming the files it came with that were not accepted."""
        body = msg.text or "(messaggio senza testo)"
        if fetched.refused:
            note = "\n".join(f"Allegato non accettato: {r.note()}" for r in fetched.refused)
            note = note[:4000]
            body = body[: MAX_BODY_CHARS - len(note) - 2].rstrip() + "\n\n" + note
        return body[:MAX_BODY_CHARS]

    # -- who wrote --------------------------------------------------------------------------

    async def _contact_by_im(self, msg: ImMessage) -> dpb.Contact | None:
        try:
            return cast(
                dpb.Contact,
                await self._call(
                    self.directory.GetContactByIm,
                    dpb.GetContactByImRequest(provider=PROVIDER_PB[msg.provider], id=msg.sender_id),
                ),
            )
        except grpc.aio.AioRpcError as err:
            if err.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                return None
            raise

    async def _unlinked_member(self, update_id: str, msg: ImMessage) -> Effects:
        """A registered group's member who is no linked contact of its organisation."""
        effects = Effects("IGNORED", detail="unlinked member of a registered group")
        chat = await self._get(ImChat, msg.provider, msg.chat_id)
        if chat is not None and chat.ticket_id and await self._is_open(chat.ticket_id) and msg.text:
            name = msg.sender_name or msg.sender_id
            reply: tpb.AddCommentResponse = await self._call(
                self.tickets.AddComment,
                tpb.AddCommentRequest(
                    ticket_id=chat.ticket_id,
                    request_id=f"im:{msg.provider}:{msg.key}",
                    visibility=pb.COMMENT_VISIBILITY_INTERNAL,
                    author=tpb.Actor(kind=pb.AUTHOR_KIND_SYSTEM),
                    body=f"Messaggio {msg.channel} da {name} (account non collegato): {msg.text}"[
                        :MAX_BODY_CHARS
                    ],
                ),
            )
            effects = Effects(
                "NOTE_ADDED", reply.ticket.id or chat.ticket_id, "unlinked member: internal note"
            )
        if await self._get(ImLink, msg.provider, msg.sender_id) is None:
            now = datetime.now(UTC)

            async def asked(session: AsyncSession) -> None:
                if await session.get(ImLink, (msg.provider, msg.sender_id)) is None:
                    session.add(_new_link(msg, now))

            effects.writes.append(asked)
            effects.outbox.append(
                self._say(
                    update_id,
                    0,
                    msg,
                    "im_group_unlinked",
                    msg.language,
                    name=msg.sender_name or "",
                )
            )
        return effects

    async def _linking(self, update_id: str, msg: ImMessage) -> Effects:
        """An unknown sender in a private chat: email, then code, then linked."""
        link = await self._get(ImLink, msg.provider, msg.sender_id)
        now = datetime.now(UTC)
        found = _EMAIL.search(msg.text)
        code = _CODE.match(msg.text)
        locale = msg.language
        if found:
            return await self._send_code(update_id, msg, link, found.group(0), now)
        if link is not None and link.state == "AWAIT_CODE" and code:
            return await self._check_code(update_id, msg, link, code.group(1), now)

        async def asked(session: AsyncSession) -> None:
            if await session.get(ImLink, (msg.provider, msg.sender_id)) is None:
                session.add(_new_link(msg, now))

        return Effects(
            "LINKING",
            detail="asked for the registered email",
            writes=[asked],
            outbox=[self._say(update_id, 0, msg, "im_link_request", locale)],
        )

    async def _send_code(
        self, update_id: str, msg: ImMessage, link: ImLink | None, address: str, now: datetime
    ) -> Effects:
        window = link.window_start if link is not None else None
        fresh_window = window is None or now - window > timedelta(hours=1)
        sent = 0 if fresh_window or link is None else link.codes_sent
        if sent >= MAX_CODES_PER_HOUR:
            return Effects(
                "LINKING",
                detail="code limit reached",
                outbox=[self._say(update_id, 0, msg, "im_code_limit", msg.language)],
            )
        contact: dpb.Contact | None = None
        try:
            contact = await self._call(
                self.directory.GetContactByEmail, dpb.GetContactByEmailRequest(email=address)
            )
        except grpc.aio.AioRpcError as err:
            if err.code() not in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                raise
        code = f"{secrets.randbelow(10**6):06d}"
        expires = now + CODE_TTL
        contact_id = contact.id if contact is not None else 0

        async def pending(session: AsyncSession) -> None:
            row = await session.get(ImLink, (msg.provider, msg.sender_id))
            if row is None:
                row = _new_link(msg, now)
                session.add(row)
            row.state, row.contact_id = "AWAIT_CODE", contact_id
            row.code_hash = _code_hash(msg, code)
            row.expires_at, row.attempts = expires, 0
            row.codes_sent = sent + 1
            row.window_start = now if fresh_window else window
            row.updated_at = now

        outbox = []
        if contact is not None:
            outbox.append(
                ImOutbox(
                    event_id=f"im-code:{update_id}",
                    kind="secret",
                    event_type="im_link_code",
                    payload={
                        "event_id": f"im-code:{update_id}",
                        "type": "im_link_code",
                        "recipient": {
                            "email": contact.email,
                            "name": contact.name,
                            "locale": contact.locale,
                        },
                        "kind": "CONTACT",
                        "secret": code,
                        "expires_at": expires.isoformat(),
                        "organization_name": contact.organization_name,
                    },
                    created_at=now,
                )
            )
        # The same answer whether or not the address is a contact's.
        outbox.append(self._say(update_id, 0, msg, "im_code_sent", msg.language))
        return Effects("LINKING", detail="code step", writes=[pending], outbox=outbox)

    async def _check_code(
        self, update_id: str, msg: ImMessage, link: ImLink, code: str, now: datetime
    ) -> Effects:
        expired = link.expires_at is None or link.expires_at < now
        good = (
            not expired
            and link.contact_id > 0
            and link.attempts < MAX_CODE_ATTEMPTS
            and hmac.compare_digest(_code_hash(msg, code), link.code_hash)
        )
        if good:
            try:
                contact: dpb.Contact = await self._call(
                    self.directory.LinkContactIm,
                    dpb.LinkContactImRequest(
                        contact_id=link.contact_id,
                        provider=PROVIDER_PB[msg.provider],
                        id=msg.sender_id,
                    ),
                )
            except grpc.aio.AioRpcError as err:
                if err.code() != grpc.StatusCode.ALREADY_EXISTS:
                    raise
                return Effects(
                    "LINKING",
                    detail="identity linked to another contact",
                    writes=[_drop_link(msg)],
                    outbox=[self._say(update_id, 0, msg, "im_link_taken", msg.language)],
                )
            return Effects(
                "LINKING",
                detail=f"linked to contact {contact.id}",
                writes=[_drop_link(msg)],  # single use
                outbox=[
                    self._say(update_id, 0, msg, "im_linked", contact.locale, name=contact.name)
                ],
            )
        attempts = link.attempts + 1
        if expired or attempts >= MAX_CODE_ATTEMPTS:

            async def reset(session: AsyncSession) -> None:
                row = await session.get(ImLink, (msg.provider, msg.sender_id))
                if row is not None:
                    row.state, row.code_hash, row.contact_id, row.attempts = "AWAIT_EMAIL", "", 0, 0
                    row.expires_at, row.updated_at = None, now

            return Effects(
                "LINKING",
                detail="code expired" if expired else "too many wrong codes",
                writes=[reset],
                outbox=[self._say(update_id, 0, msg, "im_code_reset", msg.language)],
            )

        async def wrong(session: AsyncSession) -> None:
            row = await session.get(ImLink, (msg.provider, msg.sender_id))
            if row is not None:
                row.attempts, row.updated_at = attempts, now

        return Effects(
            "LINKING",
            detail="wrong code",
            writes=[wrong],
            outbox=[
                self._say(
                    update_id,
                    0,
                    msg,
                    "im_code_wrong",
                    msg.language,
                    left=MAX_CODE_ATTEMPTS - attempts,
                )
            ],
        )

    # -- helpers ---------------------------------------------------------------------------

    async def _call(self, rpc: Any, request: Any) -> Any:
        return await rpc(request, metadata=self.metadata, timeout=90)

    async def _get(self, model: Any, provider: str, key: str) -> Any:
        async with self.sessions() as session:
            return await session.get(model, (provider, key))

    def _say(
        self,
        update_id: str,
        ticket_id: int,
        msg: ImMessage,
        template: str,
        locale: str,
        n: int = 0,
        **values: object,
    ) -> ImOutbox:
        event_id = f"im-send:{update_id}:{template}:{n}"
        return _event(
            event_id,
            "send",
            {
                "provider": msg.provider,
                "chat_id": msg.chat_id,
                "ticket_id": ticket_id,
                "template": template,
                "locale": "en" if locale.startswith("en") else "it",
                "text": bot_text(template, locale, **values),
            },
        )

    def _refusals(
        self, update_id: str, ticket_id: int, msg: ImMessage, fetched: Fetched, locale: str
    ) -> list[ImOutbox]:
        limit = human_size(self.media.limits.max_attachment_bytes)
        return [
            self._say(
                update_id,
                ticket_id,
                msg,
                "im_media_refused",
                locale,
                n=i,
                file=refused.filename,
                why=refused.why(locale),
                limit=limit,
            )
            for i, refused in enumerate(fetched.refused)
        ]

    def _ticket_event(self, msg: ImMessage, ticket_id: int) -> ImOutbox:
        return _event(
            f"im-ticket:{ticket_id}:{msg.provider}:{msg.chat_id}",
            "ticket",
            {
                "ticket_id": ticket_id,
                "provider": msg.provider,
                "chat_id": msg.chat_id,
                "group": msg.group,
            },
        )


async def _apply(session: AsyncSession, effects: Effects) -> bool:
    """The writes and the events of ``effects``, committed with what the caller already
    did in ``session``; False (all rolled back) when an event was already committed by
    someone else (another replica recording the same outcome)."""
    for write in effects.writes:
        await write(session)
    for item in effects.outbox:
        session.add(item)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        log.warning("%s: already recorded by another replica", effects.detail)
        return False
    return True


async def _with_files(call: Callable[[], Awaitable[Any]], fetched: Fetched) -> Any:
    """Make the ticket or comment with its files; when the tickets service refuses them,
    make it without them: each is then named on it and to the sender (``fetched``)."""
    try:
        return await call()
    except grpc.aio.AioRpcError as err:
        details = err.details() or ""
        if (
            err.code() != grpc.StatusCode.INVALID_ARGUMENT
            or not fetched.attachments
            or not details.startswith("attachments")
        ):
            raise
        log.warning("the tickets service refused the files (%s): sent without", details)
        fetched.refused.extend(
            Refused(a.filename, "refused", len(a.content), detail=details[:200])
            for a in fetched.attachments
        )
        fetched.attachments = []
        return await call()


def _chat_of(provider: str, key: str, kind: str, payload: dict[str, Any]) -> tuple[str, str] | None:
    """The conversation an update belongs to (None: a status, or no message we take)."""
    if kind == "status":
        return None
    msg = message_of(provider, key, payload)
    return (msg.provider, msg.chat_id) if msg is not None else None


def _event(event_id: str, event_type: str, payload: dict[str, Any]) -> ImOutbox:
    return ImOutbox(
        event_id=event_id[:200],
        kind="event",
        event_type=event_type,
        payload={"event_id": event_id[:200], "type": event_type, **payload},
        created_at=datetime.now(UTC),
    )


def _new_link(msg: ImMessage, now: datetime) -> ImLink:
    return ImLink(
        provider=msg.provider,
        sender_id=msg.sender_id,
        state="AWAIT_EMAIL",
        contact_id=0,
        code_hash="",
        attempts=0,
        codes_sent=0,
        updated_at=now,
    )


def _drop_link(msg: ImMessage) -> Write:
    async def drop(session: AsyncSession) -> None:
        await session.execute(
            delete(ImLink).where(ImLink.provider == msg.provider, ImLink.sender_id == msg.sender_id)
        )

    return drop


def _code_hash(msg: ImMessage, code: str) -> str:
    return hashlib.sha256(f"{msg.provider}:{msg.sender_id}:{code}".encode()).hexdigest()


__all__ = ["TELEGRAM", "Effects", "ImProcessor", "keyword_matcher"]
