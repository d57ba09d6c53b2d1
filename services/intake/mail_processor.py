"""Inbound mail's processor: it turns the messages the SMTP listener stored
(``services.intake.smtp``) into tickets or comments, exactly once.

Processing is bounded and safe to run on several replicas at once: each stored row is
claimed under a lease and written back only while the claim holds (``claims``); the bytes
of mail in flight are bounded (``MAX_BYTES_IN_FLIGHT``); parsing happens in child
processes that are killed when they overrun (``parse_worker``), and a message that cannot
be parsed whole becomes a ticket from its headers that says so; a failed attempt waits
(backoff) without holding the rows behind it, and after ``MAX_FAILURES`` attempts that
count (INTERNAL / UNKNOWN from the tickets service) the row is ``FAILED`` with the reason.
Mails go concurrently; a mail that answers (In-Reply-To / References) one not handled yet
waits for it, so that it threads to what that one opens, and a reply (it names a message or
a ticket) waits for its sender's mail before it (two quick replies to a ticket are its
comments in that order).

What a stored message becomes: a delivery-status report that came with an empty return
path (``<>``, as real ones do; any other is ignored as forged) marks the notification it
reports ``BOUNCED`` (an event to notify); automatic mail (an out-of-office, an
auto-responder) that threads to a ticket is attached to it as an internal system note that
changes nothing, and is otherwise ignored (it never opens a ticket); a contact's mail
becomes a ticket (``FAX`` when sent to the fax gateway) or a comment on a ticket the contact
may see in the portal (own tickets; a referent's, the organisation's; a department's, when
the organisation shares them): a tag naming any other opens a ticket of the sender's own.
Files over the system's limits, or refused by the tickets service, are left out and named
on the ticket and in the ``received`` event. An unknown sender of an organisation's domain
becomes its contact first (unless the organisation turned that off), and anyone else is a
prospect: a sales request with its own polite reply, never a ticket; the request is handed
to the sales office (``SalesService``, ``services.intake.sales_forward``). A mail that
threads to a sales request (``<sales-<id>@our domain>`` in In-Reply-To / References) from
its requester is that request's conversation (``SALES_REPLY``), before anything else.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from nats.errors import Error as NatsError
from opentelemetry import trace
from sqlalchemy import LargeBinary, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import sales_pb2 as spb
from helpdesk.v1 import tickets_pb2 as tpb
from services.common import telemetry
from services.common.auth import bearer_metadata
from services.common.limits import MAX_ATTACHMENT_BYTES, MAX_ATTACHMENTS, MAX_ATTACHMENTS_TOTAL
from services.common.mail_threading import is_message_id, sales_request_of
from services.common.messages.mail import MailEventPayload
from services.common.messages.mail import subject as mail_subject
from services.intake import claims, mailparse
from services.intake.cc_followers import follow_cc
from services.intake.mail_criticality import MailCriticality
from services.intake.models import InboundMessage, SalesRequest
from services.intake.parse_worker import ParseFailed, ParseWorkers
from services.intake.sales_forward import SalesForwarder
from services.intake.smtp import MailEvents, null_path

if TYPE_CHECKING:
    from helpdesk.v1.directory_pb2_grpc import DirectoryServiceAsyncStub
    from helpdesk.v1.sales_pb2_grpc import SalesServiceAsyncStub
    from helpdesk.v1.tickets_pb2_grpc import TicketServiceAsyncStub

log = logging.getLogger("helpdesk.intake.mail")
_tracer = telemetry.tracer(__name__)


# An automatic message attached to its ticket: at most this much of its text.
NOTE_TEXT_CHARS = 500
MAX_REQUEST_ID = 200  # the tickets service's limit on a request_id
MAX_BODY_CHARS = 100_000  # ... on a description or a comment


@dataclass(frozen=True)
class Outcome:
    # TICKET_CREATED | COMMENT_ADDED | NOTE_ADDED | SATISFACTION | IGNORED | PROSPECT |
    # SALES_REPLY | BOUNCE | FAILED
    status: str
    ticket_id: int = 0
    detail: str = ""


@dataclass(frozen=True)
class _Stored:
    """What processing needs of a claimed row, but its raw message (which is dropped as
    soon as it is parsed)."""

    key: str
    mail_from: str
    rcpt_to: list[str]
    attempts: int
    failures: int
    traceparent: str = ""


# How many mails are turned into tickets at the same time, and how many more are taken in
# (waiting for a slot or for the mail they answer) before the next read of the table.
CONCURRENT_MAILS = 16
QUEUED_MAILS = 64
# A mail that answers one still waiting (after a failed attempt, or under another
# replica's claim) is looked at again after this long; so is a mail that could not be
# started for a reason of ours (the database away).
RECHECK = timedelta(seconds=2)
# What of a stored message is read to find what it answers (its top header block).
HEAD_BYTES = 64 * 1024
# Raw bytes of mail being parsed and handed on at once, all domains together. Measured
# for a 24 MiB message: its parsing child peaks at about 2.5 times its size above the
# child's own 27 MiB (5 times for 8-bit text), and this process holds about twice its
# size while the attachments go to the tickets service. Six such mails of six domains
# took this process 856 MiB above its base without the budget, 45 MiB with it. A message
# larger than the budget is processed alone.
MAX_BYTES_IN_FLIGHT = 32 * 1024 * 1024
# Attempts that count towards giving up: a message whose parse failed even from its
# headers, or that met INTERNAL / UNKNOWN from the tickets service, is FAILED after this
# many. Waiting for a service that is down (UNAVAILABLE, DEADLINE_EXCEEDED, NATS) never
# gives up; it is retried, at most RETRY_WAIT_MAX apart.
MAX_FAILURES = 5
RETRY_BASE = timedelta(seconds=10)
RETRY_MAX = timedelta(minutes=10)
RETRY_WAIT_MAX = timedelta(seconds=30)
COUNTED = frozenset({grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN})
WAITED = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
# What one stored row came to (``MailProcessor._process``); WAIT: not started, the mail
# it answers is not done yet.
DONE, RETRY, BUSY, WAIT = "done", "retry", "busy", "wait"


@dataclass(frozen=True)
class _Due:
    """A stored row that may be started now: what scheduling needs of it."""

    id: str
    key: str  # its dedup key: ``mid:<Message-ID>`` when it has one
    size: int
    order: tuple[datetime, str]  # (received_at, id): the order mails are answered in
    refs: list[str]  # the Message-IDs it answers
    sender: str  # its sender's address, lower-cased ("" when none is well-formed)
    answers: bool  # it names a message or a ticket: a reply, to follow its sender's mails


class MailProcessor:
    """Turns stored messages into tickets, comments, sales requests or bounce records.

    Several replicas may run it over one database: each row is claimed (``claims``) before
    it is worked on, and written back only while the claim is ours."""

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
        parser: ParseWorkers | None = None,
        max_bytes_in_flight: int = MAX_BYTES_IN_FLIGHT,
        max_failures: int = MAX_FAILURES,
        retry_base: timedelta = RETRY_BASE,
        lease: timedelta = claims.LEASE,
        replica: str = "",
        critical_keywords: tuple[str, ...] | None = None,
        sales: SalesServiceAsyncStub | None = None,
        forwarder: SalesForwarder | None = None,
    ) -> None:
        self.sessions = sessions
        # The sales office: replies threaded onto requests, prospects' requests handed
        # over (None: neither, the requests stay in intake's table).
        self.sales = sales
        self.forwarder = forwarder
        self.our_domain = our_domain
        # An email ticket's tier: CRITICAL for a critical word in the subject, else
        # NON_BLOCKING (None: the default words).
        self.criticality = MailCriticality(critical_keywords)
        self.tickets = tickets
        self.directory = directory
        self.metadata = bearer_metadata(service_token)
        self.wake = wake
        self.events = events
        self.our_addresses = {a.lower() for a in (our_addresses or set()) if a}
        self.fax_address = fax_address.lower()
        self.limits = limits
        self.parser = parser or ParseWorkers()
        self.budget = claims.ByteBudget(max_bytes_in_flight)
        self.max_failures = max(1, max_failures)
        self.retry_base = retry_base
        self.lease = lease
        self.replica = replica or claims.replica_name()
        # Our outgoing mail references <ticket-42@our_domain> and its Message-ID names the
        # ticket, <notify.created.t42.<hash>@our_domain> (see notify's mailer).
        self.our_ticket_ref = re.compile(
            rf"^<(?:ticket-(\d{{1,12}})|notify\.[a-z_]+\.t(\d{{1,12}})\.[0-9a-f]{{32}})"
            rf"@{re.escape(our_domain)}>$",
            re.IGNORECASE,
        )
        # Mails started and not ended, by row, by dedup key (what a reply names) and the
        # last one by sender; rows left for a later look (the monotonic time of that look);
        # the slots of work.
        self._in_flight: dict[str, asyncio.Task[str]] = {}
        self._by_key: dict[str, str] = {}
        self._by_sender: dict[str, str] = {}
        self._deferred: dict[str, float] = {}
        self._slots = asyncio.Semaphore(CONCURRENT_MAILS)
        self._ended = asyncio.Event()

    async def run_forever(self, idle: float = 5.0) -> None:
        """Start mails as they become due, never waiting for a whole pass to end: the table
        is read again when a mail arrives (``wake``), when one in flight ends, and every
        ``idle`` seconds (for mails whose wait after a failed attempt is over)."""
        while True:
            self.wake.clear()
            self._ended.clear()
            try:
                room = QUEUED_MAILS - len(self._in_flight)
                if room > 0:
                    await self._start_due(room, deferring=True)
            except Exception:
                log.exception("mail processing pass failed")
            waits = [asyncio.ensure_future(e.wait()) for e in (self.wake, self._ended)]
            try:
                await asyncio.wait(
                    waits, timeout=self._next_look(idle), return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                for waiting in waits:
                    waiting.cancel()

    async def close(self) -> None:
        """Stop the mails in flight (a claim taken runs out and a later pass takes the row
        again) and the parsing children."""
        for task in list(self._in_flight.values()):
            task.cancel()
        if self._in_flight:
            await asyncio.wait(list(self._in_flight.values()))
        await self.parser.close()

    async def process_pending(self, batch: int = 50) -> bool:
        """One pass over the stored messages that are due; True when some were handled.

        A mail that answers (In-Reply-To / References) a mail not handled yet waits for it,
        so that a reply sent right after its original comments on the ticket the original
        opens; every other mail goes at once, ``CONCURRENT_MAILS`` at a time, whoever sent
        it. A message waiting after a failed attempt is not read at all until it is due,
        so it never stands in front of the ones behind it (only its own replies wait)."""
        tasks = await self._start_due(batch, deferring=False)
        return any(result == DONE for result in await asyncio.gather(*tasks))

    def _next_look(self, idle: float) -> float:
        """Seconds until the pump reads the table again unless woken before."""
        if not self._deferred:
            return idle
        soonest = min(self._deferred.values()) - asyncio.get_running_loop().time()
        return max(0.05, min(idle, soonest))

    def _defer(self, row_id: str) -> None:
        self._deferred[row_id] = asyncio.get_running_loop().time() + RECHECK.total_seconds()

    async def _due(self, batch: int, skip: set[str]) -> list[_Due]:
        """The first ``batch`` rows that may be claimed now (received, due, nobody's lease
        running), but those in ``skip``, in the order they arrived, with what each answers
        (read from the head of the raw message)."""
        now = datetime.now(UTC)
        query = (
            select(
                InboundMessage.id,
                InboundMessage.dedup_key,
                func.length(InboundMessage.raw),
                InboundMessage.received_at,
                func.substr(InboundMessage.raw, 1, HEAD_BYTES, type_=LargeBinary),
            )
            .where(
                InboundMessage.status == "RECEIVED",
                or_(
                    InboundMessage.next_attempt_at.is_(None),
                    InboundMessage.next_attempt_at <= now,
                ),
                or_(InboundMessage.claimed_until.is_(None), InboundMessage.claimed_until <= now),
            )
            .order_by(InboundMessage.received_at, InboundMessage.id)
            .limit(batch)
        )
        if skip:
            query = query.where(InboundMessage.id.not_in(sorted(skip)))
        async with self.sessions() as session:
            found = (await session.execute(query)).all()
        heads = [bytes(head or b"") for *_, head in found]
        limits = self.limits
        threads = await asyncio.to_thread(lambda: [mailparse.thread_head(h, limits) for h in heads])
        return [
            _Due(row_id, key, int(size or 0), (received_at, row_id), *thread)
            for (row_id, key, size, received_at, _), thread in zip(found, threads, strict=True)
        ]

    async def _unfinished(self, keys: set[str]) -> dict[str, tuple[datetime, str]]:
        """Of these dedup keys, the rows still RECEIVED (due or not, anyone's): their
        (received_at, id) by key."""
        if not keys:
            return {}
        async with self.sessions() as session:
            found = (
                await session.execute(
                    select(
                        InboundMessage.dedup_key, InboundMessage.received_at, InboundMessage.id
                    ).where(
                        InboundMessage.status == "RECEIVED",
                        InboundMessage.dedup_key.in_(sorted(keys)),
                    )
                )
            ).all()
        return {key: (received_at, row_id) for key, received_at, row_id in found}

    async def _start_due(self, batch: int, *, deferring: bool) -> list[asyncio.Task[str]]:
        """Start the due rows (``_due``). Each waits only for the mails it answers that are
        not handled yet (one in flight here, or one received before it) and, a reply, for
        its sender's previous mail in flight here; what it waits for was started before it,
        so no two ever wait for each other. One that answers an earlier mail that cannot
        start now (waiting after a failed attempt, claimed by another replica), or a reply
        whose sender's earlier mail is left so in this pass, is left for a later pass;
        ``deferring`` (the pump): not read again for ``RECHECK``."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        self._deferred = {k: t for k, t in self._deferred.items() if t > now}
        skip = set(self._in_flight)
        if deferring:
            skip.update(self._deferred)
        due = await self._due(batch, skip)
        wanted = {f"mid:{ref}" for row in due for ref in row.refs} - self._by_key.keys()
        unfinished = await self._unfinished(wanted)
        started: list[asyncio.Task[str]] = []
        held: set[str] = set()  # senders whose earlier mail is left for later in this pass
        for row in due:
            after: list[asyncio.Task[str]] = []
            blocked = row.answers and row.sender in held
            for ref in [] if blocked else row.refs:
                key = f"mid:{ref}"
                if key == row.key:
                    continue  # a mail naming itself waits for nothing
                if key in self._by_key:
                    after.append(self._in_flight[self._by_key[key]])
                elif key in unfinished and unfinished[key] < row.order:
                    blocked = True
                    break
            if blocked:
                if row.sender:
                    held.add(row.sender)
                if deferring:
                    self._defer(row.id)
                continue
            # A person's replies in the order they came, after their mail before: the
            # second of two quick replies to one ticket is its second comment, whatever
            # each names. New requests of one person still go at once.
            if row.answers and row.sender in self._by_sender:
                after.append(self._in_flight[self._by_sender[row.sender]])
            task = loop.create_task(self._when_answered(row, after))
            self._in_flight[row.id] = task
            self._by_key[row.key] = row.id
            if row.sender:
                self._by_sender[row.sender] = row.id
            task.add_done_callback(functools.partial(self._ended_one, row))
            started.append(task)
        return started

    def _ended_one(self, row: _Due, _task: object) -> None:
        self._in_flight.pop(row.id, None)
        if self._by_key.get(row.key) == row.id:
            del self._by_key[row.key]
        if self._by_sender.get(row.sender) == row.id:
            del self._by_sender[row.sender]
        self._ended.set()

    async def _when_answered(self, row: _Due, after: list[asyncio.Task[str]]) -> str:
        """Process ``row`` once the mails it answers are done; a slot of
        ``CONCURRENT_MAILS`` is taken only then, so that waiting holds none. When one of
        them did not end done (it waits after a failed attempt, another replica has it)
        this one is not started: a later pass looks again."""
        if after:
            await asyncio.wait(after)  # never cancels them, whatever happens to this one
            if any(t.cancelled() or t.exception() or t.result() != DONE for t in after):
                self._defer(row.id)
                return WAIT
        try:
            async with self._slots:
                return await self._process(row.id, row.size)
        except Exception:
            # A claim taken runs out, and a later pass takes the row again.
            log.exception("cannot process inbound message %s now", row.id)
            self._defer(row.id)
            return RETRY

    async def process(self, message_id: str) -> bool:
        """Process one stored message now (when it is due and nobody else holds it)."""
        async with self.sessions() as session:
            size = await session.scalar(
                select(func.length(InboundMessage.raw)).where(InboundMessage.id == message_id)
            )
        return await self._process(message_id, int(size or 0)) == DONE

    async def _process(self, message_id: str, size: int) -> str:
        """DONE (an outcome is recorded), RETRY (it waits for a later attempt) or BUSY
        (not ours: gone, finished, not due, or another replica's)."""
        async with self.budget.hold(size):
            if not await claims.claim(
                self.sessions, InboundMessage, message_id, self.replica, self.lease
            ):
                return BUSY
            async with claims.Lease(
                self.sessions, InboundMessage, message_id, self.replica, self.lease
            ):
                return await self._claimed(message_id)

    async def _load(self, message_id: str) -> tuple[bytes, _Stored] | None:
        async with self.sessions() as session:
            row = await session.get(InboundMessage, message_id)
            if row is None or row.status != "RECEIVED" or row.claimed_by != self.replica:
                return None
            return row.raw, _Stored(
                row.dedup_key,
                row.mail_from,
                list(row.rcpt_to or []),
                row.attempts,
                row.failures,
                row.traceparent or "",
            )

    async def _claimed(self, message_id: str) -> str:
        loaded = await self._load(message_id)
        if loaded is None:
            return BUSY
        raw, stored = loaded
        del loaded
        # Continues the trace of the SMTP accept that stored the message.
        with _tracer.start_as_current_span(
            "mail process",
            context=telemetry.from_traceparent(stored.traceparent),
            attributes={"helpdesk.mail.stored_id": message_id, "helpdesk.attempt": stored.attempts},
        ) as span:
            result = await self._handle_claimed(message_id, raw, stored)
            span.set_attribute("helpdesk.mail.result", result)
            return result

    async def _handle_claimed(self, message_id: str, raw: bytes, stored: _Stored) -> str:
        try:
            mail = await self._parse(raw)
        except ParseFailed as err:
            return await self._retry(message_id, stored, f"unreadable: {err}", counted=True)
        except OSError as err:  # no parsing child could be started: not the mail's fault
            log.warning("cannot parse message %s now (%r); will retry", message_id, err)
            return await self._retry(message_id, stored, repr(err), counted=False)
        finally:
            del raw  # the parsed message is all that is needed from here on
        key, mail_from, rcpt_to = stored.key, stored.mail_from, stored.rcpt_to
        try:
            outcome = await self._deliver(message_id, mail, key, mail_from, rcpt_to)
        except grpc.aio.AioRpcError as err:
            detail = f"{err.code().name}: {err.details() or ''}"
            if err.code() in WAITED or err.code() in COUNTED:
                log.warning("message %s: tickets service %s; will retry", message_id, detail)
                return await self._retry(message_id, stored, detail, counted=err.code() in COUNTED)
            outcome = Outcome("FAILED", 0, detail)
        except (OSError, NatsError, TimeoutError) as err:  # NATS down: keep it, retry later
            log.warning("cannot hand message %s on yet (%r); will retry", message_id, err)
            return await self._retry(message_id, stored, repr(err), counted=False)
        except Exception as err:
            log.exception("cannot process inbound message %s", message_id)
            outcome = Outcome("FAILED", 0, repr(err)[:900])
        await self._finish(message_id, outcome)
        return DONE

    async def _parse(self, raw: bytes) -> mailparse.ParsedMail:
        """The parsed message, in a child process that is killed when it overruns; a
        message that cannot be parsed whole is read from its header block alone (its
        sender still gets a ticket, which says that the rest was not read)."""
        from services.common import metrics

        with metrics.MAIL_PARSE_SECONDS.time():
            try:
                return await self.parser.parse(raw, self.limits)
            except ParseFailed as err:
                log.warning("a stored message could not be parsed (%s): reading its headers", err)
                mail = await self.parser.parse_headers(raw, self.limits)
                mail.unread = str(err)
                return mail

    async def _retry(self, message_id: str, stored: _Stored, detail: str, counted: bool) -> str:
        """Put the row back for a later attempt, or give up: FAILED once ``max_failures``
        attempts that count have failed."""
        failures = stored.failures + (1 if counted else 0)
        if counted and failures >= self.max_failures:
            log.error("message %s: giving up after %d attempts: %s", message_id, failures, detail)
            await self._finish(
                message_id,
                Outcome("FAILED", 0, f"gave up after {failures} failed attempts: {detail}"),
            )
            return DONE
        wait = (
            claims.backoff(failures, self.retry_base, RETRY_MAX)
            if counted
            else claims.backoff(stored.attempts + 1, self.retry_base, RETRY_WAIT_MAX)
        )
        async with self.sessions() as session:
            kept = await claims.record_failure(
                session,
                InboundMessage,
                message_id,
                self.replica,
                attempts=stored.attempts + 1,
                failures=failures,
                retry_in=wait,
                detail=detail,
            )
            await session.commit()
        if not kept:
            log.warning("message %s: no longer ours; its retry is not recorded", message_id)
        return RETRY

    async def _finish(self, message_id: str, outcome: Outcome) -> None:
        span = trace.get_current_span()
        span.set_attribute("helpdesk.mail.outcome", outcome.status)
        if outcome.ticket_id:
            span.set_attribute("helpdesk.ticket_id", outcome.ticket_id)
        async with self.sessions() as session:
            kept = await claims.record_outcome(
                session,
                InboundMessage,
                message_id,
                self.replica,
                status=outcome.status,
                ticket_id=outcome.ticket_id,
                detail=outcome.detail,
            )
            await session.commit()
        if not kept:  # the work is idempotent: whoever holds it now records the same
            log.warning(
                "message %s: %s not recorded, the row is no longer ours", message_id, outcome
            )

    async def _call(self, rpc: Any, request: Any) -> Any:
        return await rpc(request, metadata=self.metadata, timeout=90)

    async def _follow_cc(self, ticket_id: int, mail: mailparse.ParsedMail, key: str) -> None:
        """The mail's ``Cc`` colleagues follow its ticket (``services.intake.cc_followers``)."""
        await follow_cc(
            self._call, self.tickets.AddFollower, ticket_id, mail, key, self.our_addresses
        )

    async def _publish(self, event: MailEventPayload) -> None:
        if self.events is None:
            log.debug("no event publisher: %s %s not published", event["type"], event["event_id"])
            return
        await self.events.publish(mail_subject(event["type"]), event["event_id"], event)

    async def _deliver(
        self,
        stored_id: str,
        mail: mailparse.ParsedMail,
        key: str,
        mail_from: str,
        rcpt_to: list[str],
    ) -> Outcome:
        if mail.bounce is not None:
            if not null_path(mail_from):  # real reports have an empty one (RFC 5321 4.5.5)
                return Outcome(
                    "IGNORED",
                    0,
                    f"delivery report with a return path ({mail_from[:100]}): not trusted",
                )
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
        if not automatic and null_path(mail_from) and rcpt_to:
            automatic = "empty return path (a report or an auto-reply)"
        if automatic:
            # An out-of-office answering our mail belongs on its ticket, moving nothing;
            # our own mail coming back is dropped.
            noted = None if loop else await self._automatic_note(mail, key, automatic)
            return noted or Outcome("IGNORED", 0, f"automatic message: {automatic}")
        sales_reply = await self._sales_reply(stored_id, mail, key)
        if sales_reply is not None:
            return sales_reply
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
        attachments, refused = admissible(mail.attachments)
        refused = [*mail.skipped_attachments, *refused]
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
            commented = target

            async def comment(files: list[pb.Attachment], body: str) -> Any:
                return await self._call(
                    self.tickets.AddComment,
                    tpb.AddCommentRequest(
                        ticket_id=commented,
                        request_id=_request_id(key),
                        visibility=pb.COMMENT_VISIBILITY_PUBLIC,
                        author=tpb.Actor(kind=pb.AUTHOR_KIND_CONTACT, id=contact.id),
                        body=body,
                        attachments=files,
                    ),
                )

            reply: tpb.AddCommentResponse = await _with_files(comment, mail, attachments, refused)
            ticket_id = reply.ticket.id or target
            if ticket_id != target:  # a follow-up ticket was opened: its ack answers this mail
                await self._received(ticket_id, mail, key)
            await self._refusal(ticket_id, mail, key, contact, refused)
            await self._follow_cc(ticket_id, mail, key)
            detail = f"comment on #{target}" + _refused_detail(refused)
            return Outcome("COMMENT_ADDED", ticket_id, detail)

        async def create(files: list[pb.Attachment], body: str) -> Any:
            return await self._call(
                self.tickets.CreateTicket,
                tpb.CreateTicketRequest(
                    request_id=_request_id(key),
                    subject=mail.subject.strip() or ("Fax" if fax else "(senza oggetto)"),
                    description=body,
                    requester_id=contact.id,
                    channel=pb.CHANNEL_FAX if fax else pb.CHANNEL_EMAIL,
                    attachments=files,
                    criticality=self.criticality.of(mail.subject),
                    # Its clocks count from when our listener accepted it, not from now.
                    received_at=await self._accepted_at(stored_id),
                ),
            )

        created: pb.Ticket = await _with_files(create, mail, attachments, refused)
        await self._received(created.id, mail, key)
        await self._refusal(created.id, mail, key, contact, refused)
        await self._follow_cc(created.id, mail, key)
        return Outcome(
            "TICKET_CREATED", created.id, ("fax" if fax else "") + _refused_detail(refused)
        )

    async def _accepted_at(self, stored_id: str) -> Timestamp | None:
        """When the SMTP listener accepted the stored message (None: not stored here)."""
        async with self.sessions() as session:
            at = await session.scalar(
                select(InboundMessage.received_at).where(InboundMessage.id == stored_id)
            )
        if at is None:
            return None
        stamp = Timestamp()
        stamp.FromDatetime(at)
        return stamp

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
            MailEventPayload(
                event_id=f"mail-received:{ticket_id}:{hashlib.sha256(key.encode()).hexdigest()[:24]}",
                type="received",
                ticket_id=ticket_id,
                message_id=mail.message_id if is_message_id(mail.message_id) else "",
                sender=mail.sender,
                auto_reply=mail.auto_reply_allowed,
                no_auto_reply_reason=mail.no_auto_reply_reason,
            )
        )

    async def _refusal(
        self,
        ticket_id: int,
        mail: mailparse.ParsedMail,
        key: str,
        contact: dpb.Contact,
        refused: list[str],
    ) -> None:
        """Tell notify to write to the sender that these files were left out (the ticket or
        comment names them too); nothing when every file was taken."""
        if not refused:
            return
        await self._publish(
            MailEventPayload(
                event_id=f"mail-refused:{ticket_id}:{hashlib.sha256(key.encode()).hexdigest()[:24]}",
                type="attachments_refused",
                ticket_id=ticket_id,
                message_id=mail.message_id if is_message_id(mail.message_id) else "",
                sender=mail.sender,
                sender_name=contact.name,
                locale=contact.locale,
                subject=mail.subject.strip()[:200],
                auto_reply=mail.auto_reply_allowed,
                no_auto_reply_reason=mail.no_auto_reply_reason,
                files=refused[: MAX_ATTACHMENTS * 2],
                more=max(0, len(refused) - MAX_ATTACHMENTS * 2),
            )
        )

    async def _bounce(self, mail: mailparse.ParsedMail, key: str) -> Outcome:
        bounce = mail.bounce
        assert bounce is not None
        ours = [i for i in bounce.original_message_ids if i.startswith("<notify.")]
        if not ours:
            return Outcome("BOUNCE", 0, "delivery report about none of our messages")
        await self._publish(
            MailEventPayload(
                event_id=f"mail-bounce:{hashlib.sha256(key.encode()).hexdigest()[:32]}",
                type="bounce",
                original_message_ids=ours,
                recipients=bounce.recipients,
                action=bounce.action,
                status=bounce.status,
                diagnostic=bounce.diagnostic,
            )
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
        if self.forwarder is not None:  # not handed over now: the sweep does it
            await self.forwarder.forward(request_id)
        if mail.auto_reply_allowed:
            await self._publish(
                MailEventPayload(
                    event_id=f"mail-prospect:{request_id}",
                    type="prospect",
                    request_id=request_id,
                    sender=mail.sender,
                    sender_name=mail.sender_name,
                    subject=mail.subject,
                    message_id=mail.message_id if is_message_id(mail.message_id) else "",
                    locale=locale,
                )
            )
        detail = f"{mail.sender} is not a customer: sales request {request_id}"
        return Outcome("PROSPECT", 0, detail)

    async def _sales_reply(
        self, stored_id: str, mail: mailparse.ParsedMail, key: str
    ) -> Outcome | None:
        """A mail threading to a sales request of ours, onto its conversation
        (``RecordSalesReply``, idempotent by Message-ID). None: no such thread, or the
        sales office did not take it (another sender: FAILED_PRECONDITION; no such
        request: NOT_FOUND), and the mail goes the normal way. The tickets process away
        raises, and the stored mail is retried."""
        if self.sales is None:
            return None
        threads: list[str] = []
        for ref in mail.replies_to:
            found = sales_request_of(ref, self.our_domain)
            if found and found not in threads:
                threads.append(found)
        if not threads:
            return None
        received = await self._accepted_at(stored_id)
        # The same mail again adds nothing: its Message-ID, or one made of its content hash.
        mail_id = (
            mail.message_id
            if is_message_id(mail.message_id)
            else f"<intake-{hashlib.sha256(key.encode()).hexdigest()[:32]}@{self.our_domain}>"
        )
        for sales_id in threads[:5]:
            request = spb.RecordSalesReplyRequest(
                sales_request_id=sales_id,
                message_id=mail_id,
                sender=mail.sender,
                sender_name=mail.sender_name,
                body=_mail_body(mail, list(mail.skipped_attachments)),
                attachment_names=[a.filename for a in mail.attachments][: MAX_ATTACHMENTS * 2],
            )
            if received is not None:
                request.received_at.CopyFrom(received)
            try:
                try:
                    await self._call(self.sales.RecordSalesReply, request)
                except grpc.aio.AioRpcError as err:
                    # A request of ours not handed over yet (the sales office was away):
                    # hand it over now, then its reply.
                    if err.code() != grpc.StatusCode.NOT_FOUND or self.forwarder is None:
                        raise
                    if not await self.forwarder.hand_over(sales_id):
                        raise
                    await self._call(self.sales.RecordSalesReply, request)
            except grpc.aio.AioRpcError as err:
                if err.code() in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND):
                    log.info("reply for sales request %s not threaded: %s", sales_id, err.details())
                    continue
                raise
            return Outcome(
                "SALES_REPLY", 0, f"reply from {mail.sender} on sales request {sales_id}"
            )
        return None

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
        """The tagged ticket, when it exists and the sender may see it in the portal
        (``may_see``); a tag naming any other ticket is ignored: the mail is a new ticket
        of the sender's own, and nothing of the other ticket (not even whether it exists,
        nor its subject through a follow-up) leaks."""
        try:
            ticket: pb.Ticket = await self._call(
                self.tickets.GetTicket, tpb.GetTicketRequest(id=ticket_id)
            )
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise
        return ticket.id if await self._may_see(ticket, contact) else None

    async def _may_see(self, ticket: pb.Ticket, contact: dpb.Contact) -> bool:
        """What ``TicketService.GetTicket`` lets a customer see: their own tickets; a
        REFERENT all of the organisation's; a USER also their department colleagues'
        when the organisation shares tickets within departments."""
        if ticket.organization_id != contact.organization_id:
            return False
        if contact.role == pb.CONTACT_ROLE_REFERENT or ticket.requester_id == contact.id:
            return True
        if not contact.department:
            return False
        org: dpb.Organization = await self._call(
            self.directory.GetOrganization,
            dpb.GetOrganizationRequest(id=contact.organization_id),
        )
        if not org.department_sees_tickets:
            return False
        try:
            requester: dpb.Contact = await self._call(
                self.directory.GetContact, dpb.GetContactRequest(id=ticket.requester_id)
            )
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.NOT_FOUND:
                return False
            raise
        return (
            requester.organization_id == contact.organization_id
            and requester.department == contact.department
        )


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


MAX_FILENAME = 255  # what the tickets service takes (``services.tickets.creation``)


def admissible(files: list[mailparse.Attachment]) -> tuple[list[pb.Attachment], list[str]]:
    """The files the tickets service takes (the system's limits, ``services.common.limits``)
    and the names of the others, with why. A content type it would refuse is sent as
    ``application/octet-stream`` rather than losing the file."""
    kept: list[pb.Attachment] = []
    refused: list[str] = []
    total = 0
    for f in files:
        name = f.filename.strip()[:MAX_FILENAME] or "allegato"
        if len(kept) >= MAX_ATTACHMENTS:
            refused.append(f"{name} (oltre il limite di {MAX_ATTACHMENTS} allegati)")
            continue
        if f.size > MAX_ATTACHMENT_BYTES:
            refused.append(mailparse.refused_for_size(name, f.size, MAX_ATTACHMENT_BYTES))
            continue
        if total + f.size > MAX_ATTACHMENTS_TOTAL:
            refused.append(
                mailparse.refused_for_size(name, f.size, MAX_ATTACHMENTS_TOTAL, " per messaggio")
            )
            continue
        total += f.size
        kept.append(
            pb.Attachment(
                filename=name,
                content_type=mailparse.safe_content_type(f.content_type),
                content=f.content,
            )
        )
    return kept, refused


def refusal_note(refused: list[str], unread: str = "") -> str:
    """What a ticket or comment says about what it was made without."""
    lines = [f"Allegato non accettato: {r}" for r in refused[: MAX_ATTACHMENTS * 2]]
    if len(refused) > MAX_ATTACHMENTS * 2:
        lines.append(f"... e altri {len(refused) - MAX_ATTACHMENTS * 2} allegati non accettati")
    if unread:
        lines.append(f"Il messaggio non è stato letto per intero ({unread}).")
    return "\n".join(lines)


def _mail_body(mail: mailparse.ParsedMail, refused: list[str]) -> str:
    body = mail.text or "(messaggio senza testo)"
    note = refusal_note(refused, mail.unread)[:4000]
    if note:
        body = body[: MAX_BODY_CHARS - len(note) - 2].rstrip() + "\n\n" + note
    return body[:MAX_BODY_CHARS]


def _refused_detail(refused: list[str]) -> str:
    return f" (without {len(refused)} file(s): {'; '.join(refused)[:300]})" if refused else ""


async def _with_files(
    call: Callable[[list[pb.Attachment], str], Awaitable[Any]],
    mail: mailparse.ParsedMail,
    files: list[pb.Attachment],
    refused: list[str],
) -> Any:
    """Make the ticket or comment with its files; when the tickets service refuses the
    files, make it without them, naming them (``refused`` grows)."""
    try:
        return await call(files, _mail_body(mail, refused))
    except grpc.aio.AioRpcError as err:
        details = err.details() or ""
        if (
            err.code() != grpc.StatusCode.INVALID_ARGUMENT
            or not files
            or not details.startswith("attachments")
        ):
            raise
        log.warning("the tickets service refused the attachments (%s): sent without", details)
        refused.extend(f"{f.filename} (rifiutato: {details[:200]})" for f in files)
        return await call([], _mail_body(mail, refused))


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
