"""Planned remote updates by email (seed 000, "Come avvengono gli aggiornamenti"): durable
``notify-maintenance`` on ``helpdesk.maintenance.>``, one email per recipient the tickets
service named, in the recipient's language, recorded once in the delivery log (event,
template, recipient) and sent at least once (a resend keeps its Message-ID).

- ``planned``: the referents, with the window in Italian time, the medium and the summary;
- ``reminder``: the referents again, HELPDESK_REMOTE_UPDATE_NOTICE before the start;
- ``started`` / ``finished``: the referents, users disconnect / may reconnect;
- ``overdue``: the operator who planned it, not marked finished by its planned end.
"""

from __future__ import annotations

import functools
from typing import Any, cast

from services.common.events import STREAM as HELPDESK_STREAM
from services.common.messages import maintenance as maintenance_messages
from services.common.messages.maintenance import MaintenanceEventPayload
from services.notify.consumer import HandledConsumer
from services.notify.local_time import format_window, zone_note
from services.notify.notifier import Notifier, Progress
from services.notify.render import RenderedEmail, Renderer, one_line
from services.notify.rules import PlannedEmail, to_people
from services.notify.store import DeliveryDraft

DURABLE = "notify-maintenance"
TEMPLATES = {
    kind: f"maintenance_{kind}"
    for kind in ("planned", "reminder", "started", "finished", "overdue")
}
MEDIUM_WORDS = {
    "it": {
        "FILE_TRANSFER": "trasferimento del file di aggiornamento direttamente sul vostro server",
        "PHYSICAL_MEDIA": "invio del supporto fisico (CD)",
    },
    "en": {
        "FILE_TRANSFER": "the update file transferred directly to your server",
        "PHYSICAL_MEDIA": "physical media (a CD) sent to you",
    },
}


def maintenance_context(event: MaintenanceEventPayload, email: PlannedEmail) -> dict[str, Any]:
    """The variables the ``maintenance_*`` templates may use."""
    window = event["window"]
    words = MEDIUM_WORDS["en" if email.locale == "en" else "it"]
    return {
        "name": email.recipient_name,
        "organization_name": one_line(window["organization_name"]),
        "window": format_window(window["planned_start"], window["planned_end"], email.locale),
        "zone": zone_note(email.locale),
        "medium": words.get(window["medium"], window["medium"]),
        "physical_media": window["medium"] == "PHYSICAL_MEDIA",
        "summary": window["summary"].strip(),
        "note": (event.get("note") or "").strip(),
        "operator": one_line(event.get("actor_name") or ""),
        "window_id": event["window_id"],
    }


class MaintenanceNotifier:
    """Renders and sends one maintenance event's emails (each at least once)."""

    def __init__(self, notifier: Notifier, renderer: Renderer) -> None:
        self._notifier = notifier
        self._renderer = renderer

    async def handle(
        self, event: MaintenanceEventPayload, progress: Progress | None = None
    ) -> float | None:
        """Send what ``event`` calls for; None when done, else seconds to wait before a retry."""
        template = TEMPLATES[event["type"]]
        retry_after: float | None = None
        for email in to_people(cast(Any, event), template, event["recipients"]):
            draft = DeliveryDraft(
                event_id=event["event_id"],
                event_type=f"maintenance.{event['type']}",
                ticket_id=0,
                recipient=email.recipient,
                subject="",
                template=template,
                locale=email.locale,
                message_id=self._notifier.message_id(
                    f"{event['event_id']}\x00{email.recipient}", template
                ),
            )
            delay = await self._notifier.render_and_deliver(
                draft, email, functools.partial(self._render, event, email), progress
            )
            if delay is not None:
                retry_after = max(retry_after or 0.0, delay)
        return retry_after

    def _render(self, event: MaintenanceEventPayload, email: PlannedEmail) -> RenderedEmail:
        return self._renderer.render_template(
            email.template, email.locale, maintenance_context(event, email)
        )


class MaintenanceEventConsumer(HandledConsumer[MaintenanceEventPayload]):
    """Durable pull consumer ``notify-maintenance`` on ``helpdesk.maintenance.>``."""

    stream = HELPDESK_STREAM
    filter_subject = maintenance_messages.FILTER
    description = "notify: planned remote updates by email"
    default_durable = DURABLE

    decode = maintenance_messages.decode

    def describe(self, event: MaintenanceEventPayload) -> str:
        return f"{event['event_id']} (maintenance {event['window_id']} {event['type']})"
