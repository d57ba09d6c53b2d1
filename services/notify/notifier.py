"""Turning one ticket event into sent emails, exactly once, with the delivery log as the record.

For each email the event calls for: insert the delivery row (PENDING) and
commit, send, then mark it SENT. A row already SENT or FAILED is skipped, so
a redelivered event repeats nothing; a PENDING row (a crash mid-send, or a
retry) is sent again with the same Message-ID.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import parseaddr

from services.common.ticket_events import TicketEventPayload
from services.notify.mailer import (
    Envelope,
    Mailer,
    SendError,
    compose,
    mail_domain,
    make_message_id,
)
from services.notify.models import DeliveryStatus
from services.notify.render import Renderer
from services.notify.rules import PlannedEmail, plan
from services.notify.store import DeliveryDraft, DeliveryStore

log = logging.getLogger(__name__)

Progress = Callable[[], Awaitable[None]]


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
    ) -> None:
        self._store = store
        self._renderer = renderer
        self._mailer = mailer
        self._mail_from = mail_from
        self._sender = parseaddr(mail_from)[1] or mail_from
        self._domain = mail_domain(mail_from)
        self._retry = retry or RetryPolicy()

    async def handle(
        self, event: TicketEventPayload, progress: Progress | None = None
    ) -> float | None:
        """Send what ``event`` calls for; None when done, else seconds to wait before a retry."""
        retry_after: float | None = None
        for email in plan(event):
            delay = await self._deliver(event, email, progress)
            if delay is not None:
                retry_after = max(retry_after or 0.0, delay)
        return retry_after

    async def _deliver(
        self, event: TicketEventPayload, email: PlannedEmail, progress: Progress | None
    ) -> float | None:
        rendered = self._renderer.render(event, email)
        draft = DeliveryDraft(
            event_id=event["event_id"],
            event_type=event["type"],
            ticket_id=event["ticket_id"],
            recipient=email.recipient,
            subject=rendered.subject,
            template=email.template,
            locale=email.locale,
            message_id=make_message_id(event["event_id"], email.template, self._domain),
        )
        return await self.deliver(draft, email, rendered.body, progress)

    def message_id(self, event_id: str, template: str) -> str:
        """The Message-ID of the email ``template`` for ``event_id`` (the same on every resend)."""
        return make_message_id(event_id, template, self._domain)

    async def deliver(
        self,
        draft: DeliveryDraft,
        email: PlannedEmail,
        body: str,
        progress: Progress | None = None,
        *,
        redact: tuple[str, ...] = (),
    ) -> float | None:
        """Record, send and mark one email, unless its row says it was already handled.

        The row holds ``draft`` only, never ``body``; ``redact`` lists strings (secrets)
        that must not reach the log either, should an error message ever quote them.
        """
        row = await self._store.claim(draft)
        if row.status != DeliveryStatus.PENDING:
            log.info(
                "event %s: %s to %s already %s, not sent again",
                draft.event_id,
                draft.template,
                draft.recipient,
                row.status,
            )
            return None
        attempts = await self._store.start_attempt(row.id)
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
            )
        )
        if progress is not None:
            await progress()
        try:
            await self._mailer.send(message, self._sender, email.recipient)
        except SendError as err:
            return await self._failed(row.id, attempts, err, draft, redact)
        await self._store.mark_sent(row.id)
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
        error = str(err)
        for secret in redact:
            if secret:
                error = error.replace(secret, "[redacted]")
        limit = (
            self._retry.max_permanent_attempts
            if err.permanent
            else self._retry.max_transient_attempts
        )
        if attempts >= limit:
            await self._store.mark_failed(delivery_id, error)
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
