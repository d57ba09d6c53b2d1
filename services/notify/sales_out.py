"""The sales office's mail (seed 003): durable ``notify-sales`` on ``helpdesk.sales.>``.

- ``created``: every SALES agent the event names (``sales_emails``), in their language,
  with the request's kind, requester, subject, first lines and the console link;
- ``assigned``: the new owner, unless they took it themselves;
- ``replied``: the answer to the requester, "Re: <subject> [V-12]", answering their first
  mail (In-Reply-To) when there was one;
- ``message_received``: the owner (if any), that the requester wrote back;
- ``updated``: nothing.

Every one of these mails carries ``References: <sales-<id>@domain>``, so that a reply
threads back to the request (intake reads it, ``services.common.mail_threading``). Each is
recorded once in the delivery log (event, template, recipient) and sent at least once
with one Message-ID, sealed and stable per event: a redelivered event sends nothing it
finished, a resend carries the same ID.
"""

from __future__ import annotations

import functools
from typing import Any

from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy

from services.common.events import STREAM as HELPDESK_STREAM
from services.common.events import ensure_stream
from services.common.messages import sales as sales_messages
from services.notify.consumer import JetStreamConsumer
from services.notify.notifier import Notifier, Progress, RetryPolicy
from services.notify.quote_mails import QuoteMails
from services.notify.render import RenderedEmail, Renderer, one_line
from services.notify.rules import NEVER_MAIL_LOCAL_PARTS, PlannedEmail, locale_of
from services.notify.store import DeliveryDraft

DURABLE = "notify-sales"
TEMPLATES = {
    "created": "sales_new",
    "assigned": "sales_assigned",
    "replied": "sales_answer",
    "message_received": "sales_message",
}
# The first lines of a request in the agents' mail.
FIRST_LINES = 8
FIRST_CHARS = 800
KIND_WORDS = {
    "it": {
        "INFORMATION": "informazioni",
        "DEVELOPMENT_QUOTE": "preventivo di sviluppo software",
        "TRAINING": "formazione o giornate di ottimizzazione",
        "CUSTOMISATION": "modifica o personalizzazione del software",
        "PRICE_LIST": "listino prezzi",
    },
    "en": {
        "INFORMATION": "information",
        "DEVELOPMENT_QUOTE": "a software development quote",
        "TRAINING": "training or optimisation days",
        "CUSTOMISATION": "a change or customisation of the software",
        "PRICE_LIST": "the price list",
    },
}


def display_number(event: dict[str, Any]) -> str:
    """The request's number for people: ``V-12``."""
    return f"V-{event['number']}"


def first_lines(text: str) -> str:
    """The start of a request's text, for a mail that points to the whole of it."""
    lines = [line.rstrip() for line in text.strip().splitlines()][:FIRST_LINES]
    out = "\n".join(lines)
    if len(out) > FIRST_CHARS:
        out = out[: FIRST_CHARS - 1].rstrip() + "…"
    elif len(text.strip()) > len(out):
        out += "\n…"
    return out


def _address(value: object) -> str:
    """A usable address (lower case), "" for none or a robot's."""
    address = str(value or "").strip().lower()
    if "@" not in address or address.split("@", 1)[0] in NEVER_MAIL_LOCAL_PARTS:
        return ""
    return address


class SalesNotifier:
    """Renders and sends one sales event's emails (each at least once)."""

    def __init__(self, notifier: Notifier, renderer: Renderer) -> None:
        self._notifier = notifier
        self._renderer = renderer

    def plan(self, event: dict[str, Any]) -> list[PlannedEmail]:
        """Whom ``event`` writes to, each address once."""
        kind = event["type"]
        template = TEMPLATES.get(kind)
        if template is None:
            return []  # "updated": recorded only
        people: list[tuple[object, object, object]] = []
        if kind == "created":
            people = [
                (p.get("email"), p.get("name"), p.get("locale"))
                for p in event["sales_emails"]
                if isinstance(p, dict)
            ]
        elif kind == "assigned":
            if event.get("owner_id") and event.get("assigned_by_id") != event.get("owner_id"):
                people = [(event.get("owner_email"), event.get("owner_name"), "it")]
        elif kind == "replied":
            people = [(event["sender"], event.get("sender_name"), event.get("locale"))]
        elif kind == "message_received" and event.get("owner_id"):
            people = [(event.get("owner_email"), event.get("owner_name"), "it")]
        emails: dict[str, PlannedEmail] = {}
        for address, name, locale in people:
            recipient = _address(address)
            if recipient:
                emails.setdefault(
                    recipient,
                    PlannedEmail(
                        template=template,
                        recipient=recipient,
                        recipient_name=one_line(str(name or "")),
                        locale=locale_of(str(locale or "")),
                    ),
                )
        return list(emails.values())

    async def handle(self, event: dict[str, Any], progress: Progress | None = None) -> float | None:
        """Send what ``event`` calls for; None when done, else seconds to wait before a retry."""
        retry_after: float | None = None
        thread = self._notifier.sales_thread(event["sales_request_id"])
        for email in self.plan(event):
            # The answer has one Message-ID per event; the office's mail one per recipient.
            stamp = (
                event["event_id"]
                if email.template == "sales_answer"
                else f"{event['event_id']}\x00{email.recipient}"
            )
            draft = DeliveryDraft(
                event_id=event["event_id"],
                event_type=f"sales.{event['type']}",
                ticket_id=0,
                recipient=email.recipient,
                subject="",
                template=email.template,
                locale=email.locale,
                message_id=self._notifier.message_id(stamp, email.template),
            )
            in_reply_to = ""
            if email.template == "sales_answer":
                in_reply_to = str(event.get("in_reply_to") or "")
            delay = await self._notifier.render_and_deliver(
                draft,
                email,
                functools.partial(self._render, event, email),
                progress,
                in_reply_to=in_reply_to,
                references=(thread,),
            )
            if delay is not None:
                retry_after = max(retry_after or 0.0, delay)
        return retry_after

    def _render(self, event: dict[str, Any], email: PlannedEmail) -> RenderedEmail:
        return self._renderer.render_template(
            email.template, email.locale, sales_context(event, email, self._renderer.portal_url)
        )


def sales_context(event: dict[str, Any], email: PlannedEmail, portal_url: str) -> dict[str, Any]:
    """The variables the ``sales_*`` templates may use."""
    words = KIND_WORDS["en" if email.locale == "en" else "it"]
    kind = str(event.get("kind") or "")
    link = f"{portal_url}/agent/sales/{event['sales_request_id']}" if portal_url else ""
    return {
        "name": email.recipient_name,
        "number": display_number(event),
        "subject": one_line(event.get("subject") or ""),
        "kind": words.get(kind, kind.lower().replace("_", " ")),
        "requester": one_line(event.get("sender_name") or ""),
        "sender": event["sender"],
        "company": one_line(event.get("company") or ""),
        "organization_name": one_line(event.get("organization_name") or ""),
        "source": str(event.get("source") or ""),
        "first_lines": first_lines(str(event.get("body") or "")),
        "body": str(event.get("body") or "").strip(),
        "author_name": one_line(event.get("author_name") or ""),
        "assigned_by": one_line(event.get("assigned_by_name") or ""),
        "link": link,
    }


class SalesEventConsumer(JetStreamConsumer[dict[str, Any]]):
    """Durable pull consumer ``notify-sales`` on ``helpdesk.sales.>``."""

    stream = HELPDESK_STREAM
    filter_subject = sales_messages.FILTER
    description = "notify: the sales office's mail"

    def __init__(
        self,
        nats_url: str,
        notifier: SalesNotifier,
        *,
        quotes: QuoteMails | None = None,
        durable: str = DURABLE,
        deliver_policy: DeliverPolicy = DeliverPolicy.ALL,
        retry: RetryPolicy | None = None,
    ) -> None:
        super().__init__(nats_url, durable=durable, deliver_policy=deliver_policy, retry=retry)
        self._notifier = notifier
        self._quotes = quotes

    async def ensure_stream(self, js: JetStreamContext) -> None:
        await ensure_stream(js)

    decode = sales_messages.decode_any

    def describe(self, event: dict[str, Any]) -> str:
        if event["type"].startswith("quote_"):
            return f"{event['event_id']} (quote {event['number']} {event['type']})"
        return f"{event['event_id']} (sales {display_number(event)} {event['type']})"

    async def process(self, event: dict[str, Any], progress: Progress) -> float | None:
        if event["type"].startswith("quote_"):
            if self._quotes is None:
                return None
            return await self._quotes.handle(event, progress=progress)
        return await self._notifier.handle(event, progress=progress)
