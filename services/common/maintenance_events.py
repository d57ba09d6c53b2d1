"""The JSON body of ``helpdesk.maintenance.<event>``: a planned remote update's news
(seed 000), produced by the tickets service's activity for the window's workflow and
emailed by notify to ``recipients`` (resolved by the producer).

Event types: ``planned``, ``reminder``, ``started``, ``finished`` (the organisation's
referents) and ``overdue`` (the operator who planned it).
"""

from __future__ import annotations

from typing import TypedDict

from services.common.ticket_events import PersonPayload


class WindowPayload(TypedDict):
    id: int
    organization_id: int
    organization_name: str
    medium: str  # "FILE_TRANSFER" | "PHYSICAL_MEDIA"
    planned_start: str  # ISO 8601
    planned_end: str
    summary: str
    status: str  # "PLANNED" | "STARTED" | "FINISHED"


class MaintenanceEventPayload(TypedDict):
    event_id: str
    type: str
    window_id: int
    occurred_at: str  # ISO 8601
    actor_name: str
    # The operator's note with a mark ("" when none).
    note: str
    window: WindowPayload
    recipients: list[PersonPayload]


def maintenance_subject(kind: str) -> str:
    return f"helpdesk.maintenance.{kind}"
