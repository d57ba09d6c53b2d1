"""Emails for programming-ticket events: durable ``notify-progticket`` on ``helpdesk.progticket.>``.

dev_escalation publishes every move of a programming ticket with the people to write to
already resolved (``recipients``, see ``services.common.messages.programming``). Four events send
mail, one message per recipient, each in the recipient's locale:

- ``created`` of a ``HIGH`` ticket: the on-call developers, with the start-work deadline;
- ``start_overdue``: the development leads (nobody started by the deadline);
- ``remote_update_announced``: the organisation's referents, with the window in Italian
  time, asking to keep users disconnected;
- ``remote_update_completed``: the referents again, users may reconnect.

Delivery goes through the same ``Notifier`` and delivery log as the ticket emails: one row
per (event, template, recipient), so a redelivered event sends nothing it finished (a
crash between the relay's acceptance and SENT resends, with the same Message-ID), and
``ListNotifications`` shows them under the support ticket (``ticket_id``) with
``event_type`` ``progticket.<type>``.
"""

from __future__ import annotations

import logging
from typing import Any

from services.common.events import STREAM as HELPDESK_STREAM
from services.common.messages import programming as programming_messages
from services.common.messages.programming import ProgEventPayload
from services.notify.consumer import HandledConsumer
from services.notify.local_time import format_instant, format_window, zone_note
from services.notify.notifier import Notifier, Progress
from services.notify.render import RenderedEmail, Renderer, one_line
from services.notify.rules import NEVER_MAIL_LOCAL_PARTS, PlannedEmail, locale_of
from services.notify.store import DeliveryDraft

log = logging.getLogger(__name__)

DURABLE = "notify-progticket"
FILTER_SUBJECT = programming_messages.FILTER
# Event type -> template. ``created`` sends only for HIGH urgency (see ``template_for_prog``).
PROG_TEMPLATES = {
    "created": "progticket_created",
    "start_overdue": "progticket_start_overdue",
    "remote_update_announced": "remote_update_announced",
    "remote_update_completed": "remote_update_completed",
}
EVENT_TYPE_PREFIX = "progticket."  # event_type in the delivery log: "progticket.created"


# -- planning ------------------------------------------------------------------------------


def template_for_prog(event: ProgEventPayload) -> str | None:
    """The template a programming-ticket event calls for, or None when it sends nothing."""
    kind = event["type"]
    if kind == "created" and event["programming_ticket"]["urgency"] != "HIGH":
        return None
    if kind == "remote_update_announced" and not event["programming_ticket"].get("remote_update"):
        log.warning(
            "event %s: remote update announced without a window, nothing sent", event["event_id"]
        )
        return None
    return PROG_TEMPLATES.get(kind)


def plan_prog(event: ProgEventPayload) -> list[PlannedEmail]:
    """One email per recipient (each address once), never to robots or to no address."""
    template = template_for_prog(event)
    if template is None:
        return []
    planned: list[PlannedEmail] = []
    seen: set[str] = set()
    for recipient in event["recipients"]:
        address = (recipient.get("email") or "").strip().lower()
        if address.split("@", 1)[0] in NEVER_MAIL_LOCAL_PARTS:
            log.info("event %s: %s is a robot address, nothing sent", event["event_id"], address)
            continue
        if "@" not in address:
            log.warning(
                "event %s (%s): recipient %s #%s has no email address, nothing sent",
                event["event_id"],
                event["type"],
                recipient.get("kind", "?"),
                recipient.get("id", "?"),
            )
            continue
        if address in seen:
            continue
        seen.add(address)
        planned.append(
            PlannedEmail(
                template=template,
                recipient=address,
                recipient_name=(recipient.get("name") or "").strip(),
                locale=locale_of(recipient.get("locale") or ""),
            )
        )
    if not planned:
        log.info("event %s (%s): nobody to write to", event["event_id"], event["type"])
    return planned


# -- rendering -----------------------------------------------------------------------------


def prog_context(event: ProgEventPayload, email: PlannedEmail) -> dict[str, Any]:
    """The variables the programming-ticket templates may use."""
    prog = event["programming_ticket"]
    window = prog.get("remote_update")
    due = prog.get("start_work_due")
    support_id = prog["support_ticket_id"]
    return {
        "event": event,
        "prog": prog,
        "name": email.recipient_name,
        "prog_display_id": prog["display_id"],
        "support_display_id": prog.get("support_display_id")
        or (f"#{support_id}" if support_id else ""),
        "organization_name": one_line(prog.get("organization_name") or ""),
        "title": one_line(prog.get("title") or ""),
        "urgency": prog["urgency"],
        "start_work_due": format_instant(due, email.locale) if due else "",
        "window": (
            format_window(window["starts_at"], window["ends_at"], email.locale) if window else ""
        ),
        "zone": zone_note(email.locale),
    }


# -- sending -------------------------------------------------------------------------------


class ProgNotifier:
    """Renders and sends the emails of one programming-ticket event (each at least once)."""

    def __init__(self, notifier: Notifier, renderer: Renderer) -> None:
        self._notifier = notifier
        self._renderer = renderer

    async def handle(
        self, event: ProgEventPayload, progress: Progress | None = None
    ) -> float | None:
        """Send what ``event`` calls for; None when done, else seconds to wait before a retry."""
        retry_after: float | None = None
        for email in plan_prog(event):
            delay = await self._deliver(event, email, progress)
            if delay is not None:
                retry_after = max(retry_after or 0.0, delay)
        return retry_after

    async def _deliver(
        self, event: ProgEventPayload, email: PlannedEmail, progress: Progress | None
    ) -> float | None:
        def render() -> RenderedEmail:
            context = prog_context(event, email)
            return self._renderer.render_template(email.template, email.locale, context)

        # One event writes to several people: each message gets its own Message-ID
        # (stable across resends), without showing the address in the header.
        message_id = self._notifier.message_id(
            f"{event['event_id']}\x00{email.recipient}", email.template
        )
        draft = DeliveryDraft(
            event_id=event["event_id"],
            event_type=f"{EVENT_TYPE_PREFIX}{event['type']}",
            ticket_id=event["programming_ticket"]["support_ticket_id"],
            recipient=email.recipient,
            subject="",
            template=email.template,
            locale=email.locale,
            message_id=message_id,
        )
        return await self._notifier.render_and_deliver(draft, email, render, progress)


class ProgEventConsumer(HandledConsumer[ProgEventPayload]):
    """Durable pull consumer ``notify-progticket`` on ``helpdesk.progticket.>``."""

    stream = HELPDESK_STREAM
    filter_subject = FILTER_SUBJECT
    description = "notify: emails for programming-ticket events"
    default_durable = DURABLE

    decode = programming_messages.decode

    def describe(self, event: ProgEventPayload) -> str:
        return f"{event['event_id']} ({event['type']})"
