"""The JSON body of ``helpdesk.ticket.<type>`` events: produced by the tickets
service's activity, consumed by notify (and anyone else who subscribes).

Event types: ``created``, ``follow_up_opened``, ``assigned``,
``comment_added``, ``status_changed``, ``solved``, ``reopened``,
``reactivated``, ``closed``, ``sla_breached``.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict


class PersonPayload(TypedDict):
    id: int
    name: str
    email: str
    locale: str  # "it" | "en"


class TicketPayload(TypedDict):
    id: int
    display_id: str  # "#42"
    subject: str
    status: str  # "NEW" ... "CLOSED"
    priority: str
    channel: str
    organization_id: int
    organization_name: str
    requester: PersonPayload
    assignee: PersonPayload | None
    follow_up_of: int  # 0 when none
    close_reason: str  # "" | "CONFIRMED" | "VERIFIED" | "AUTO_CLOSED"
    auto_close_at: str | None  # ISO 8601, set while SOLVED
    auto_close_after_seconds: int
    # ISO 8601: when the request arrived, and when its clocks started (the next opening:
    # later when it arrived out of hours).
    received_at: NotRequired[str]
    clocks_start_at: NotRequired[str | None]
    # ``sla_breached`` only: the team leads to tell.
    team_leads: NotRequired[list[PersonPayload]]
    # An URGENT ticket's ``created`` / ``follow_up_opened`` / ``priority_changed``: the
    # support agents on call, paged at once (seed 001).
    on_call: NotRequired[list[PersonPayload]]


class CommentPayload(TypedDict):
    id: str
    visibility: str  # "PUBLIC" | "INTERNAL"
    author_kind: str  # "CONTACT" | "AGENT" | "SYSTEM"
    author_id: int
    author_name: str
    body: str


class TicketEventPayload(TypedDict):
    event_id: str
    type: str
    ticket_id: int
    occurred_at: str  # ISO 8601, UTC
    actor_kind: str
    actor_id: int
    actor_name: str
    from_status: str
    to_status: str
    detail: str
    ticket: TicketPayload
    comment: CommentPayload | None
