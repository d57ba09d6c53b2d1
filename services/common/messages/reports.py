"""Organisation reports, ``helpdesk.report.ready`` on the ``HELPDESK`` stream: an
organisation's report for a period, produced by the tickets service
(TicketService.SendReport, or the monthly schedule) and emailed by notify to the
organisation's referents."""

from __future__ import annotations

from typing import Any, TypedDict, cast

from services.common.messages.codec import json_object, to_json
from services.common.messages.tickets import PersonPayload

FILTER = "helpdesk.report.>"
READY = "ready"


def subject(kind: str) -> str:
    return f"helpdesk.report.{kind}"


class ReportEventPayload(TypedDict):
    event_id: str
    organization_id: int
    organization_name: str
    period_start: str  # ISO 8601
    period_end: str
    # helpdesk.v1.Report as JSON (protobuf field names).
    report: dict[str, Any]
    recipients: list[PersonPayload]


def encode(payload: ReportEventPayload) -> bytes:
    return to_json(payload)


def decode(data: bytes) -> ReportEventPayload:
    """A message body; ``ValueError`` naming what is missing when it is not a report."""
    body = json_object(data)
    for key in ("event_id", "organization_id", "period_start", "period_end", "report"):
        if key not in body:
            raise ValueError(f"{key}: missing")
    if not isinstance(body.get("recipients"), list):
        raise ValueError("recipients: missing or not a list")
    return cast(ReportEventPayload, body)
