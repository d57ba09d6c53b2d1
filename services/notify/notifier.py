"""Turning one ticket event into sent emails, with the delivery log as the record.

For each email the event calls for: insert the delivery row (PENDING) and
commit, send, then mark it SENT. A row already SENT or FAILED is skipped, so
a redelivered event repeats nothing it finished; a PENDING row (a crash mid-send, a
relay whose reply was lost, or a retry) is sent again with the same Message-ID.

So each email is recorded once and handed to the relay **at least once**, not exactly
once: a crash after the relay took a message and before its row says SENT sends it a
second time. Both copies carry the same Message-ID, by which receivers can deduplicate.

An answer's files (``services.notify.mail_files``) are downloaded from the tickets
service only when its email is sent, so a retry attaches the same files again; when they
cannot be had now, the email is retried as when the relay is down.

An email that cannot be written (``ComposeError``: a template failing on the event, a
header the email library refuses) ends FAILED with the reason at once: never retried,
so its event is acked.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr

from services.common import metrics
from services.common.limits import limit_texts
from services.common.mail_threading import MessageIds, mail_domain, sales_thread_id, subject_tag
from services.common.messages.tickets import AttachmentPayload, TicketEventPayload
from services.notify.mail_files import (
    AnswerFiles,
    CommentFiles,
    FileNotes,
    FilesDeferred,
    MailFile,
    answer_files,
)
from services.notify.mailer import Envelope, Mailer, SendError, compose
from services.notify.models import DeliveryStatus, utcnow
from services.notify.render import ComposeError, RenderedEmail, Renderer
from services.notify.resend import RESEND_EVENT, resend_answers
from services.notify.rules import (
    AUTO_REPLY_TEMPLATES,
    NEVER_MAIL_LOCAL_PARTS,
    REFUSED_ATTACHMENTS_TEMPLATE,
    SURVEY_TEMPLATE,
    PlannedEmail,
    locale_of,
    plan,
)
from services.notify.store import BouncedDelivery, DeliveryDraft, DeliveryStore

log = logging.getLogger(__name__)

Progress = Callable[[], Awaitable[None]]

# At most this many automatic replies to one address per hour (RFC 3834's spirit).
MAX_AUTO_REPLIES_PER_HOUR = 5
# How long an acknowledgement of an emailed ticket waits for intake to say which message
# opened the ticket (its In-Reply-To), retrying every INBOUND_RETRY_SECONDS.
INBOUND_WAIT_SECONDS = 60.0
INBOUND_RETRY_SECONDS = 2.0
MAIL_CHANNELS = ("EMAIL", "FAX")


# Templates that carry the answer's files.
FILE_TEMPLATES = frozenset({"agent_reply"})


@dataclass(frozen=True)
class RetryPolicy:
    """How long to wait before retrying a message, and when to give up."""

    base_delay: float = 5.0  # seconds before the first retry, doubled each time
    max_delay: float = 600.0
    max_permanent_attempts: int = 3  # 5xx refusals: give up after this many attempts
    max_transient_attempts: int = 60  # 4xx, timeouts, relay down: about 8 hours at max_delay

    def delay(self, attempts: int) -> float:
        """Seconds to wait after ``attempts`` failed attempts."""
        return float(min(self.base_delay * 2 ** max(attempts - 1, 0), self.max_delay))


class Notifier:
    """Sends the emails of ticket events and records each delivery."""

    def __init__(
        self,
        store: DeliveryStore,
        renderer: Renderer,
        mailer: Mailer,
        mail_from: str,
        retry: RetryPolicy | None = None,
        *,
        signing_key: str,
        files: CommentFiles | None = None,
    ) -> None:
        self._store = store
        # Downloads answers' files; None: none is attached, the body points to the portal.
        self._files = files
        self._renderer = renderer
        self._mailer = mailer
        self._mail_from = mail_from
        self._sender = parseaddr(mail_from)[1] or mail_from
        self._domain = mail_domain(mail_from)
        # Seals our Message-IDs (``Settings.token_signing_key()``): a delivery report is
        # trusted only about an ID we wrote.
        self._ids = MessageIds(signing_key, self._domain)
        self._retry = retry or RetryPolicy()

    async def handle(
        self, event: TicketEventPayload, progress: Progress | None = None
    ) -> float | None:
        """Send what ``event`` calls for; None when done, else seconds to wait before a retry."""
        try:
            if event["type"] == RESEND_EVENT:
                return await resend_answers(self, self._store, self._renderer, event, progress)
            retry_after: float | None = None
            for email in plan(event):
                delay = await self._deliver(event, email, progress)
                if delay is not None:
                    retry_after = max(retry_after or 0.0, delay)
            return retry_after
        finally:
            if self._files is not None:
                self._files.forget()  # the event's files are not kept past it

    def planned_files(self, files: tuple[AttachmentPayload, ...]) -> FileNotes:
        """What the body says of ``files`` when all are there (without a downloader:
        that they are on the portal)."""
        if self._files is None:
            return FileNotes(on_portal=tuple(f["filename"] for f in files))
        return self._files.planned(files)

    async def _deliver(
        self, event: TicketEventPayload, email: PlannedEmail, progress: Progress | None
    ) -> float | None:
        in_reply_to = suppress = ""
        if email.template in AUTO_REPLY_TEMPLATES and event["ticket"]["channel"] in MAIL_CHANNELS:
            inbound = await self._store.inbound(event["ticket_id"])
            if inbound is None:
                if age_seconds(event.get("occurred_at", "")) < INBOUND_WAIT_SECONDS:
                    return INBOUND_RETRY_SECONDS  # intake's "received" event is on its way
                log.warning(
                    "event %s: no word from intake on the message that opened ticket %s; "
                    "acknowledging without In-Reply-To",
                    event["event_id"],
                    event["ticket_id"],
                )
            else:
                in_reply_to = inbound.message_id
                if not inbound.auto_reply:
                    suppress = f"no automatic reply to this message ({inbound.reason})"
        draft = DeliveryDraft(
            event_id=event["event_id"],
            event_type=event["type"],
            ticket_id=event["ticket_id"],
            recipient=email.recipient,
            subject="",
            template=email.template,
            locale=email.locale,
            message_id=self._ids.notification(
                event["event_id"], email.template, event["ticket_id"]
            ),
        )
        files = tuple(answer_files(event)) if email.template in FILE_TEMPLATES else ()
        return await self.render_and_deliver(
            draft,
            email,
            lambda: self._renderer.render(event, email),
            progress,
            in_reply_to=in_reply_to,
            suppress=suppress,
            files=(
                AnswerFiles(
                    event["ticket_id"],
                    files,
                    lambda notes: self._renderer.render(event, email, notes),
                )
                if files
                else None
            ),
        )

    async def reply_to_prospect(
        self, event: Mapping[str, object], progress: Progress | None = None
    ) -> float | None:
        """The polite reply to someone who is not a customer (seed 003): their request went
        to the sales office, who will contact them. Never a ticket. It is in the request's
        thread (``References: <sales-<id>@domain>``, intake's row ID being the request's),
        so an answer to it joins the request's conversation."""
        recipient = str(event.get("sender") or "").strip().lower()
        if "@" not in recipient or recipient.split("@", 1)[0] in NEVER_MAIL_LOCAL_PARTS:
            log.info("event %s: no polite reply to %r", event.get("event_id"), recipient)
            return None
        email = PlannedEmail(
            template="prospect_reply",
            recipient=recipient,
            recipient_name=str(event.get("sender_name") or "").strip(),
            locale=locale_of(str(event.get("locale") or "")),
        )
        context = {
            "name": email.recipient_name,
            "subject": str(event.get("subject") or ""),
            # A known contact asking the sales office (the web form): not told that
            # they are no customer.
            "known_contact": event.get("known_contact") is True,
        }
        event_id = str(event["event_id"])
        draft = DeliveryDraft(
            event_id=event_id,
            event_type="prospect",
            ticket_id=0,
            recipient=recipient,
            subject="",
            template=email.template,
            locale=email.locale,
            message_id=self.message_id(event_id, email.template),
        )
        try:
            thread: tuple[str, ...] = (self.sales_thread(str(event.get("request_id") or "")),)
        except ValueError:  # no usable request ID: the reply is sent, unthreaded
            thread = ()
        return await self.render_and_deliver(
            draft,
            email,
            lambda: self._renderer.render_template(email.template, email.locale, context),
            progress,
            in_reply_to=str(event.get("message_id") or ""),
            references=thread,
        )

    async def tell_refused_attachments(
        self, event: Mapping[str, object], progress: Progress | None = None
    ) -> float | None:
        """Answer a customer's mail whose files were left out of its ticket or comment
        (too large, too many, unreadable): which ones, why, and the limits. An automatic
        reply, so it is suppressed for mail that must get none (an auto-reply, a list)."""
        recipient = str(event.get("sender") or "").strip().lower()
        raw_files = event.get("files")
        files = [str(f) for f in raw_files] if isinstance(raw_files, list) else []
        if not files or "@" not in recipient:
            return None
        email = PlannedEmail(
            template=REFUSED_ATTACHMENTS_TEMPLATE,
            recipient=recipient,
            recipient_name=str(event.get("sender_name") or "").strip(),
            locale=locale_of(str(event.get("locale") or "")),
        )
        ticket_id = event.get("ticket_id")
        context = {
            "name": email.recipient_name,
            "ticket_id": ticket_id,
            "subject_tag": subject_tag(ticket_id) if isinstance(ticket_id, int) else "",
            "subject": str(event.get("subject") or ""),
            "files": files,
            "more": event.get("more") or 0,
            **limit_texts(),
        }
        event_id = str(event["event_id"])
        suppress = (
            ""
            if event.get("auto_reply", True) is not False
            else str(event.get("no_auto_reply_reason") or "the mail asks for no automatic reply")
        )
        draft = DeliveryDraft(
            event_id=event_id,
            event_type="attachments_refused",
            ticket_id=ticket_id if isinstance(ticket_id, int) else 0,
            recipient=recipient,
            subject="",
            template=email.template,
            locale=email.locale,
            message_id=self.message_id(event_id, email.template),
        )
        return await self.render_and_deliver(
            draft,
            email,
            lambda: self._renderer.render_template(email.template, email.locale, context),
            progress,
            in_reply_to=str(event.get("message_id") or ""),
            suppress=suppress,
        )

    async def record_bounce(self, event: Mapping[str, object]) -> list[BouncedDelivery]:
        """Mark the notifications a delivery-status report names BOUNCED; returns them.

        Only Message-IDs whose seal verifies count: anyone can write a report quoting
        ``<notify.created.t42...>``, only we can write one that verifies (IDs from before
        the seal, or under another signing key, are not trusted either)."""
        raw_ids = event.get("original_message_ids")
        raw_recipients = event.get("recipients")
        quoted = [i for i in raw_ids if isinstance(i, str)] if isinstance(raw_ids, list) else []
        ids = [i.strip() for i in quoted if self.verified(i)]
        if len(ids) < len(quoted):
            log.warning(
                "bounce %s: ignoring Message-IDs we did not write: %s",
                event.get("event_id"),
                [i[:120] for i in quoted if not self.verified(i)],
            )
        recipients = ", ".join(
            str(r) for r in (raw_recipients if isinstance(raw_recipients, list) else [])
        )
        report = " ".join(
            part
            for part in (
                f"bounced ({event.get('action') or 'failed'}",
                f"{event.get('status') or '?'})",
                f"for {recipients}:" if recipients else ":",
                str(event.get("diagnostic") or ""),
            )
            if part
        )
        marked = await self._store.mark_bounced(ids, report)
        if marked:
            log.info(
                "bounce %s: deliveries %s marked BOUNCED",
                event.get("event_id"),
                [d.id for d in marked],
            )
        else:
            log.warning("bounce %s names none of our deliveries (%s)", event.get("event_id"), ids)
        return marked

    def message_id(self, event_id: str, template: str, ticket_id: int = 0) -> str:
        """The Message-ID of the email ``template`` for ``event_id`` (the same on every resend;
        naming ``ticket_id`` when it is about a ticket)."""
        return self._ids.notification(event_id, template, ticket_id)

    def sales_thread(self, sales_request_id: str) -> str:
        """The ``References`` entry of every mail about a sales request."""
        return sales_thread_id(sales_request_id, self._domain)

    def verified(self, message_id: str) -> bool:
        """Whether ``message_id`` is a notification ID we wrote (its seal checks)."""
        ours = self._ids.parse(message_id)
        return ours is not None and ours.verified

    async def render_and_deliver(
        self,
        draft: DeliveryDraft,
        email: PlannedEmail,
        render: Callable[[], RenderedEmail],
        progress: Progress | None = None,
        *,
        redact: tuple[str, ...] = (),
        in_reply_to: str = "",
        suppress: str = "",
        files: AnswerFiles | None = None,
        references: tuple[str, ...] = (),
    ) -> float | None:
        """``deliver`` the email that ``render`` makes, its subject in the row. ``render``
        depends only on the event, so when it fails (``ComposeError``, or a field the
        event lacks) the email is recorded FAILED with the reason (``refuse``). With
        ``files``, the email is ``files.render``'s, naming them."""
        try:
            if files is not None:
                rendered = files.render(self.planned_files(files.files))
            else:
                rendered = render()
        except Exception as err:  # rendering is pure: the same event fails the same way
            reason = str(err) if isinstance(err, ComposeError) else f"cannot render: {err!r}"
            await self.refuse(draft, reason, redact)
            return None
        return await self.deliver(
            replace(draft, subject=rendered.subject),
            email,
            rendered.body,
            progress,
            redact=redact,
            in_reply_to=in_reply_to,
            suppress=suppress,
            files=files,
            references=references,
        )

    async def refuse(self, draft: DeliveryDraft, reason: str, redact: tuple[str, ...] = ()) -> None:
        """Record an email that cannot be written as FAILED, with why: retrying the same
        event would fail the same way, so it is never retried (its event is acked)."""
        row = await self._store.claim(draft)
        if row.status != DeliveryStatus.PENDING:
            return
        reason = _redacted(reason, redact)
        await self._store.mark_failed(row.id, reason)
        metrics.NOTIFY_DELIVERIES.labels(channel="email", outcome="refused").inc()
        log.error(
            "event %s: %s to %s cannot be composed, not retried: %s",
            draft.event_id,
            draft.template,
            draft.recipient,
            reason,
        )

    async def deliver(
        self,
        draft: DeliveryDraft,
        email: PlannedEmail,
        body: str,
        progress: Progress | None = None,
        *,
        redact: tuple[str, ...] = (),
        in_reply_to: str = "",
        suppress: str = "",
        files: AnswerFiles | None = None,
        references: tuple[str, ...] = (),
    ) -> float | None:
        """Record, send and mark one email, unless its row says it was already handled.

        ``files`` are downloaded only now, for an email about to be sent: when the
        tickets service cannot give them, the attempt fails as a relay down does (retried
        later, never sent without them); a file gone is left out and the body, written
        again, names it.

        The row holds ``draft`` only, never ``body``; ``redact`` lists strings (secrets)
        that must not reach the log either, should an error message ever quote them.
        An automatic reply (``AUTO_REPLY_TEMPLATES``) is recorded SUPPRESSED instead of
        sent when ``suppress`` says why, or when its recipient already had
        ``MAX_AUTO_REPLIES_PER_HOUR`` of them in the last hour.
        """
        auto_reply = draft.template in AUTO_REPLY_TEMPLATES
        # An automatic reply may yet be suppressed (no attempt): its attempt is counted apart.
        if auto_reply:
            row, attempts = await self._store.claim(draft), 0
        else:
            row, attempts = await self._store.claim_attempt(draft)
        if row.status != DeliveryStatus.PENDING:
            log.info(
                "event %s: %s to %s already %s, not sent again",
                draft.event_id,
                draft.template,
                draft.recipient,
                row.status,
            )
            return None
        if auto_reply and not suppress:
            recent = await self._store.count_sent_since(
                draft.recipient, sorted(AUTO_REPLY_TEMPLATES), utcnow() - timedelta(hours=1)
            )
            if recent >= MAX_AUTO_REPLIES_PER_HOUR:
                suppress = f"{recent} automatic replies to this address in the last hour"
        if auto_reply and suppress:
            await self._store.mark_suppressed(row.id, suppress)
            metrics.NOTIFY_DELIVERIES.labels(channel="email", outcome="suppressed").inc()
            log.info(
                "event %s: %s to %s not sent: %s",
                draft.event_id,
                draft.template,
                draft.recipient,
                suppress,
            )
            return None
        attempts = attempts or await self._store.start_attempt(row.id)
        attached: tuple[MailFile, ...] = ()
        if files is not None and self._files is not None:
            try:
                fetched = await self._files.fetch(files.ticket_id, files.files)
            except FilesDeferred as err:
                return await self._failed(
                    row.id, attempts, SendError(str(err), permanent=False), draft, redact
                )
            if fetched.notes != self._files.planned(files.files):
                try:  # pure, as the first rendering was
                    body = files.render(fetched.notes).body
                except Exception as err:
                    await self.refuse(draft, f"cannot render: {err!r}", redact)
                    return None
            attached = fetched.files
        try:
            message = compose(
                Envelope(
                    sender=self._mail_from,
                    recipient=email.recipient,
                    recipient_name=email.recipient_name,
                    subject=row.subject,
                    body=body,
                    message_id=row.message_id,
                    ticket_id=draft.ticket_id,
                    locale=email.locale,
                    in_reply_to=in_reply_to,
                    references=references,
                    auto_submitted="auto-replied" if auto_reply else "auto-generated",
                    headers=(
                        (("X-Helpdesk-Survey", str(draft.ticket_id)),)
                        if draft.template == SURVEY_TEMPLATE
                        else ()
                    ),
                    attachments=attached,
                )
            )
        except ComposeError as err:
            await self.refuse(draft, str(err), redact)
            return None
        if progress is not None:
            await progress()
        try:
            await self._mailer.send(message, self._sender, email.recipient)
        except SendError as err:
            return await self._failed(row.id, attempts, err, draft, redact)
        await self._store.mark_sent(row.id)
        metrics.NOTIFY_DELIVERIES.labels(channel="email", outcome="sent").inc()
        log.info(
            "event %s (%s)%s: sent %s to %s, attempt %d",
            draft.event_id,
            draft.event_type,
            f" of ticket {draft.ticket_id}" if draft.ticket_id else "",
            draft.template,
            draft.recipient,
            attempts,
        )
        return None

    async def _failed(
        self,
        delivery_id: int,
        attempts: int,
        err: SendError,
        draft: DeliveryDraft,
        redact: tuple[str, ...] = (),
    ) -> float | None:
        error = _redacted(str(err), redact)
        limit = (
            self._retry.max_permanent_attempts
            if err.permanent
            else self._retry.max_transient_attempts
        )
        if attempts >= limit:
            await self._store.mark_failed(delivery_id, error)
            metrics.NOTIFY_DELIVERIES.labels(channel="email", outcome="failed").inc()
            log.error(
                "event %s: giving up on %s to %s after %d attempts: %s",
                draft.event_id,
                draft.template,
                draft.recipient,
                attempts,
                error,
            )
            return None
        await self._store.record_error(delivery_id, error)
        metrics.NOTIFY_DELIVERIES.labels(channel="email", outcome="retry").inc()
        delay = self._retry.delay(attempts)
        log.warning(
            "event %s: %s to %s failed (attempt %d, %s), retrying in %.1fs: %s",
            draft.event_id,
            draft.template,
            draft.recipient,
            attempts,
            "permanent" if err.permanent else "temporary",
            delay,
            error,
        )
        return delay


def _redacted(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text


def age_seconds(occurred_at: str) -> float:
    """Seconds since an event's ``occurred_at`` (large when it cannot be read)."""
    try:
        when = datetime.fromisoformat(occurred_at.replace("Z", "+00:00"))
    except ValueError:
        return float("inf")
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (datetime.now(UTC) - when).total_seconds()
