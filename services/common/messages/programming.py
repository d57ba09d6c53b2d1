"""Programming-ticket events, ``helpdesk.progticket.<type>`` on the ``HELPDESK`` stream:
produced by the dev_escalation service's activity ``record_programming_ticket_change``,
consumed by notify (and anyone else who subscribes).

Event types: ``created``, ``started``, ``scheduled``, ``fixed``, ``shipped``,
``cancelled``, ``start_overdue``, ``remote_update_announced``,
``remote_update_completed``, ``moved``.

``recipients`` are the people notify must write to for this event, resolved by
dev_escalation through the DirectoryService when the event is recorded:

- ``created`` of a ``HIGH`` programming ticket: every agent on call;
- ``start_overdue``: the development leads;
- ``remote_update_announced`` / ``remote_update_completed``: the organisation's
  ``REFERENT`` contacts;
- any other event: nobody (``[]``).
"""

from __future__ import annotations

from typing import Any, TypedDict, cast

from services.common.messages.codec import check_instant, json_object, to_json

# Display form of a programming ticket's ID, as support tickets are shown ``#42``.
DISPLAY_PREFIX = "P-"


def prog_display_id(prog_id: int) -> str:
    return f"{DISPLAY_PREFIX}{prog_id}"


FILTER = "helpdesk.progticket.>"


def subject(event_type: str) -> str:
    return f"helpdesk.progticket.{event_type}"


class RecipientPayload(TypedDict):
    kind: str  # "AGENT" | "CONTACT"
    id: int
    name: str
    email: str
    locale: str  # "it" | "en"


class ProgPersonPayload(TypedDict):
    id: int
    name: str
    email: str


class ProgActorPayload(TypedDict):
    kind: str  # "AGENT" (a developer or agent) | "SYSTEM"
    id: int
    name: str  # "" for SYSTEM or when unknown


class RemoteUpdatePayload(TypedDict):
    starts_at: str  # ISO 8601, UTC
    ends_at: str


class ProgTicketPayload(TypedDict):
    id: int
    display_id: str  # "P-12"
    support_ticket_id: int
    support_display_id: str  # "#42"
    organization_id: int
    organization_name: str
    title: str
    urgency: str  # "HIGH" | "AVERAGE" | "LOW" | "SECONDARY"
    status: str  # "OPEN" | "SCHEDULED" | "IN_PROGRESS" | "FIXED" | "RELEASED" | "CANCELLED"
    assignee: ProgPersonPayload | None
    target_release: str
    planned_date: str | None  # ISO 8601
    fix_version: str
    fix_notes: str
    release_notes: str  # for the customer, as the developer wrote them
    cancel_reason: str
    start_work_due: str | None  # HIGH only
    escalated_to_lead: bool
    remote_update: RemoteUpdatePayload | None
    created_at: str


class ProgEventPayload(TypedDict):
    event_id: str
    type: str
    programming_ticket_id: int
    occurred_at: str  # ISO 8601, UTC
    actor: ProgActorPayload
    from_status: str
    to_status: str
    detail: str
    programming_ticket: ProgTicketPayload
    recipients: list[RecipientPayload]


def encode(payload: ProgEventPayload) -> bytes:
    return to_json(payload)


def decode(data: bytes) -> ProgEventPayload:
    """A message body; ``ValueError`` naming what is wrong when it is not an event.

    ``recipients`` missing (or null) reads as nobody."""
    raw: dict[str, Any] = json_object(data)
    for key, kind in (
        ("event_id", str),
        ("type", str),
        ("programming_ticket_id", int),
        ("programming_ticket", dict),
    ):
        if not isinstance(raw.get(key), kind) or (kind is str and not raw[key]):
            raise ValueError(f"{key}: missing or not a {kind.__name__}")
    prog = raw["programming_ticket"]
    for key, kind in (("display_id", str), ("support_ticket_id", int), ("urgency", str)):
        if not isinstance(prog.get(key), kind):
            raise ValueError(f"programming_ticket.{key}: missing or not a {kind.__name__}")
    window = prog.get("remote_update")
    if window is not None:
        if not isinstance(window, dict):
            raise ValueError("programming_ticket.remote_update: not an object")
        for key in ("starts_at", "ends_at"):
            check_instant(window.get(key), f"programming_ticket.remote_update.{key}")
    if prog.get("start_work_due") is not None:
        check_instant(prog["start_work_due"], "programming_ticket.start_work_due")
    recipients = raw.get("recipients")
    if recipients is None:
        raw["recipients"] = []
    elif not isinstance(recipients, list) or not all(isinstance(r, dict) for r in recipients):
        raise ValueError("recipients: not a list of objects")
    return cast(ProgEventPayload, raw)
