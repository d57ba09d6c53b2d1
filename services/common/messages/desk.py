"""The desk's own events on the ``HELPDESK`` stream: ``helpdesk.desk.digest``, at the
desk's opening, the tickets received while it was closed, for the agents on duty.
Produced by the tickets service (the ``desk-digest`` workflow's activity), emailed by
notify to those who keep the digest on."""

from __future__ import annotations

from typing import TypedDict, cast

from services.common.messages.codec import json_object, to_json
from services.common.messages.tickets import PersonPayload

FILTER = "helpdesk.desk.>"
DIGEST_SUBJECT = "helpdesk.desk.digest"


class DigestTicketPayload(TypedDict):
    id: int
    display_id: str  # "#42"
    subject: str
    organization_name: str
    priority: str
    status: str
    channel: str
    received_at: str  # ISO 8601
    assignee_name: str  # "" when unassigned


class DigestEventPayload(TypedDict):
    event_id: str  # "desk-digest-<opened_at>": one per opening
    opened_at: str  # ISO 8601
    closed_since: str
    tickets: list[DigestTicketPayload]
    agents: list[PersonPayload]  # on duty at the opening


def digest_event_id(opened_at_iso_compact: str) -> str:
    return f"desk-digest-{opened_at_iso_compact}"


def encode(payload: DigestEventPayload) -> bytes:
    return to_json(payload)


def decode(data: bytes) -> DigestEventPayload:
    """A message body; ``ValueError`` naming what is wrong when it is not a digest."""
    raw = json_object(data)
    if not isinstance(raw.get("event_id"), str):
        raise ValueError("event_id: missing")
    for key in ("tickets", "agents"):
        if not isinstance(raw.get(key), list):
            raise ValueError(f"{key}: missing or not a list")
    for key in ("opened_at", "closed_since"):
        if not isinstance(raw.get(key), str):
            raise ValueError(f"{key}: missing or not a string")
    return cast(DigestEventPayload, raw)
