"""The JSON body of ``helpdesk.report.ready``: an organisation's report for a period,
produced by the tickets service (TicketService.SendReport, or the monthly schedule) and
emailed by notify to the organisation's referents."""

from __future__ import annotations

from typing import Any, TypedDict

from services.common.ticket_events import PersonPayload


class ReportEventPayload(TypedDict):
    event_id: str
    organization_id: int
    organization_name: str
    period_start: str  # ISO 8601
    period_end: str
    # helpdesk.v1.Report as JSON (protobuf field names).
    report: dict[str, Any]
    recipients: list[PersonPayload]


def report_subject(kind: str) -> str:
    return f"helpdesk.report.{kind}"
