"""Planned remote updates, ``helpdesk.maintenance.<type>`` on the ``HELPDESK`` stream: a
window's news (seed 000), produced by the tickets service's activity for the window's
workflow and emailed by notify to ``recipients`` (resolved by the producer).

Event types: ``planned``, ``reminder``, ``started``, ``finished`` (the organisation's
referents) and ``overdue`` (the operator who planned it).
"""

from __future__ import annotations

from typing import TypedDict, cast

from services.common.messages.codec import json_object, to_json
from services.common.messages.tickets import PersonPayload

FILTER = "helpdesk.maintenance.>"
TYPES = ("planned", "reminder", "started", "finished", "overdue")


def subject(kind: str) -> str:
    return f"helpdesk.maintenance.{kind}"


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


def encode(payload: MaintenanceEventPayload) -> bytes:
    return to_json(payload)


def decode(data: bytes) -> MaintenanceEventPayload:
    """A message body; ``ValueError`` naming what is wrong when it is not such an event."""
    body = json_object(data)
    for key, kind in (("event_id", str), ("type", str), ("window_id", int), ("window", dict)):
        if not isinstance(body.get(key), kind):
            raise ValueError(f"{key}: missing or not a {kind.__name__}")
    if body["type"] not in TYPES:
        raise ValueError(f"type: not one of {', '.join(TYPES)}")
    for key in ("planned_start", "planned_end", "organization_name", "medium", "summary"):
        if not isinstance(body["window"].get(key), str):
            raise ValueError(f"window.{key}: missing or not a string")
    if not isinstance(body.get("recipients"), list):
        raise ValueError("recipients: missing or not a list")
    return cast(MaintenanceEventPayload, body)
