"""Intake's mail events: durable pull consumer ``notify-mail`` on ``helpdesk.mail.>``.

- ``received``: which message opened a ticket, so that its acknowledgement answers it
  (``In-Reply-To``), or is suppressed when that message must get no automatic reply;
- ``prospect``: a sender who is not a customer: the polite reply (seed 003);
- ``bounce``: a delivery-status report came back: the notifications it names are BOUNCED,
  and each one about a ticket gets an internal system note on it (agents see the bounce);
- ``attachments_refused``: files of a customer's mail were left out of its ticket or
  comment: the sender is told which, why, and the limits (one delivery row per event).

Each event carries a deterministic ID (``Nats-Msg-Id``), and each effect is idempotent
(first ``received`` per ticket wins; a prospect reply is one delivery row per event;
marking BOUNCED twice is marking it once; a note's ``request_id`` comes from the event ID
and the delivery), so a redelivery repeats nothing. A note the tickets service cannot take
now (``NoteDeferred``) fails the event: it is nak'ed with a delay and comes back.
"""

from __future__ import annotations

from typing import Any

from nats.js import JetStreamContext

from services.common.events import STREAM, ensure_stream
from services.common.messages import mail as mail_messages
from services.notify.consumer import JetStreamConsumer
from services.notify.notifier import Notifier, Progress
from services.notify.store import DeliveryStore
from services.notify.ticket_notes import TicketNotes, bounce_note

DURABLE = "notify-mail"
FILTER_SUBJECT = mail_messages.FILTER


class MailEventConsumer(JetStreamConsumer[dict[str, Any]]):
    """Pulls intake's mail events and acts on them, one at a time."""

    stream = STREAM
    filter_subject = FILTER_SUBJECT
    description = "notify: acknowledgement threading, prospects' replies, bounces"

    def __init__(
        self,
        nats_url: str,
        notifier: Notifier,
        store: DeliveryStore,
        notes: TicketNotes | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("durable", DURABLE)
        super().__init__(nats_url, **kwargs)
        self._notifier = notifier
        self._store = store
        self._notes = notes

    async def ensure_stream(self, js: JetStreamContext) -> None:
        await ensure_stream(js)

    decode = mail_messages.decode

    def describe(self, event: dict[str, Any]) -> str:
        return f"{event['event_id']} (mail {event['type']})"

    async def process(self, event: dict[str, Any], progress: Progress) -> float | None:
        kind = event["type"]
        if kind == "received":
            await self._store.record_inbound(
                event["ticket_id"],
                str(event.get("message_id") or ""),
                str(event.get("sender") or ""),
                bool(event.get("auto_reply", True)),
                str(event.get("no_auto_reply_reason") or ""),
            )
            return None
        if kind == "prospect":
            return await self._notifier.reply_to_prospect(event, progress)
        if kind == "attachments_refused":
            return await self._notifier.tell_refused_attachments(event, progress)
        bounced = await self._notifier.record_bounce(event)
        if self._notes is not None:
            status = str(event.get("status") or "")
            diagnostic = str(event.get("diagnostic") or "")
            for delivery in bounced:
                if delivery.ticket_id > 0:
                    await self._notes.add(
                        delivery.ticket_id,
                        f"notify-bounce:{event['event_id']}:{delivery.id}",
                        bounce_note(delivery.recipient, status, diagnostic),
                    )
        return None
