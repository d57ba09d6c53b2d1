"""The JSON body of ``helpdesk.desk.digest``: at the desk's opening, the tickets received
while it was closed, for the agents on duty. Produced by the tickets service (the
``desk-digest`` workflow's activity), emailed by notify to those who keep the digest on."""

from __future__ import annotations

from typing import TypedDict

from services.common.ticket_events import PersonPayload

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
