"""The organisation report by email (seed 002): ``helpdesk.report.ready`` events from the
tickets service, one email to each referent, recorded once in the delivery log and sent at
least once (a resend keeps its Message-ID)."""

from __future__ import annotations

import functools
import logging
from typing import Any, cast

from services.common.events import STREAM as HELPDESK_STREAM
from services.common.messages import reports as reports_messages
from services.common.messages.reports import ReportEventPayload
from services.notify.consumer import HandledConsumer
from services.notify.local_time import format_day, local_instant
from services.notify.notifier import Notifier, Progress
from services.notify.render import RenderedEmail, Renderer
from services.notify.rules import PlannedEmail, to_people
from services.notify.store import DeliveryDraft

log = logging.getLogger(__name__)

DURABLE = "notify-report"
TEMPLATE = "report"
TARGET_WORDS = {
    "it": {
        "SLA_TARGET_TAKEN_IN_CHARGE": "Presa in carico",
        "SLA_TARGET_FIRST_FEEDBACK": "Primo riscontro",
        "SLA_TARGET_RESOLUTION": "Risoluzione",
    },
    "en": {
        "SLA_TARGET_TAKEN_IN_CHARGE": "Taken in charge",
        "SLA_TARGET_FIRST_FEEDBACK": "First feedback",
        "SLA_TARGET_RESOLUTION": "Resolution",
    },
}


def _hours(seconds: Any) -> str:
    return f"{float(seconds or 0) / 3600:.1f}"


def report_context(event: ReportEventPayload, email: PlannedEmail) -> dict[str, Any]:
    """The report's figures as the template shows them."""
    report = event["report"]
    words = TARGET_WORDS["en" if email.locale == "en" else "it"]
    milestones = [
        {
            "name": words.get(str(x.get("target")), str(x.get("target"))),
            "met": int(x.get("met", 0)),
            "breached": int(x.get("breached", 0)),
            "open": int(x.get("open", 0)),
            "median_hours": _hours(x.get("median_business_seconds")),
            "p90_hours": _hours(x.get("p90_business_seconds")),
        }
        for x in report.get("milestones", [])
    ]

    def counts(key: str) -> list[tuple[str, int]]:
        return [(str(c.get("key")), int(c.get("count", 0))) for c in report.get(key, [])]

    return {
        "name": email.recipient_name,
        "organization_name": event.get("organization_name") or "",
        "from_day": format_day(local_instant(event["period_start"]), email.locale),
        "to_day": format_day(local_instant(event["period_end"]), email.locale),
        "received": int(report.get("tickets_received", 0)),
        "by_criticality": counts("by_criticality"),
        "by_priority": counts("by_priority"),
        "by_channel": counts("by_channel"),
        "milestones": milestones,
        "hours_spent": f"{float(report.get('hours_spent', 0)):.2f}",
        "satisfaction_average": f"{float(report.get('satisfaction_average', 0)):.1f}",
        "satisfaction_count": int(report.get("satisfaction_count", 0)),
    }


class ReportNotifier:
    """Renders and sends one report event's emails (each at least once)."""

    def __init__(self, notifier: Notifier, renderer: Renderer) -> None:
        self._notifier = notifier
        self._renderer = renderer

    async def handle(
        self, event: ReportEventPayload, progress: Progress | None = None
    ) -> float | None:
        retry_after: float | None = None
        people = to_people(cast(Any, event), TEMPLATE, event["recipients"])
        for email in people:
            draft = DeliveryDraft(
                event_id=event["event_id"],
                event_type="report.ready",
                ticket_id=0,
                recipient=email.recipient,
                subject="",
                template=TEMPLATE,
                locale=email.locale,
                message_id=self._notifier.message_id(
                    f"{event['event_id']}\x00{email.recipient}", TEMPLATE
                ),
            )
            delay = await self._notifier.render_and_deliver(
                draft, email, functools.partial(self._render, event, email), progress
            )
            if delay is not None:
                retry_after = max(retry_after or 0.0, delay)
        return retry_after

    def _render(self, event: ReportEventPayload, email: PlannedEmail) -> RenderedEmail:
        return self._renderer.render_template(TEMPLATE, email.locale, report_context(event, email))


class ReportEventConsumer(HandledConsumer[ReportEventPayload]):
    """Durable pull consumer ``notify-report`` on ``helpdesk.report.>``."""

    stream = HELPDESK_STREAM
    filter_subject = reports_messages.FILTER
    description = "notify: organisation reports by email"
    default_durable = DURABLE

    decode = reports_messages.decode

    def describe(self, event: ReportEventPayload) -> str:
        return f"{event['event_id']} (report of organisation {event['organization_id']})"
