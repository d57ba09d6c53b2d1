"""Ticket events, ``helpdesk.ticket.<type>`` on the ``HELPDESK`` stream: produced by the
tickets service's activity, consumed by notify (and anyone else who subscribes).

Event types: ``created``, ``follow_up_opened``, ``assigned``,
``comment_added``, ``status_changed``, ``solved``, ``reopened``,
``reactivated``, ``closed``, ``sla_breached``, ``merged_into``, ``requalified``
(``detail`` says what changed and why), ``priority_changed``; and, published by the
tickets service itself rather than a workflow, ``answers_resent``.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict, cast

from services.common.messages.codec import json_object, to_json

FILTER = "helpdesk.ticket.>"


def subject(event_type: str) -> str:
    return f"helpdesk.ticket.{event_type}"


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
    # The organisation's closed-ticket policy: "FOLLOW_UP" (a reply opens a new, linked
    # ticket) or "REOPEN" (a reply reactivates it); the solved and closed emails say which.
    closed_ticket_policy: NotRequired[str]
    # Where a merged ticket went (``merged_into``); 0 when not merged.
    merged_into: NotRequired[int]
    # Contacts following the ticket (CC) besides the requester: its public answers and
    # status emails go to them too.
    followers: NotRequired[list[PersonPayload]]
    # ``assigned`` away from another agent (a take-over or a team lead's reassignment):
    # who held the ticket, and the reason given (may be "" for a team lead).
    previous_assignee_id: NotRequired[int]
    previous_assignee: NotRequired[PersonPayload | None]
    assignment_reason: NotRequired[str]


class InteractionPayload(TypedDict):
    """A phone call or remote session the comment records (its body is the summary)."""

    type: str  # "PHONE_CALL" | "REMOTE_SESSION"
    direction: str  # "INBOUND" | "OUTBOUND" | "" (remote sessions)
    with_whom: str
    duration_minutes: int
    # The agent asked for the summary to be emailed to the customer.
    notify_customer: bool


class AttachmentPayload(TypedDict):
    """A file of a comment, by reference: its bytes stay in the tickets service
    (``TicketService.DownloadAttachment``)."""

    id: str
    filename: str
    content_type: str
    size: int  # bytes


class CommentPayload(TypedDict):
    id: str
    visibility: str  # "PUBLIC" | "INTERNAL"
    author_kind: str  # "CONTACT" | "AGENT" | "SYSTEM"
    author_id: int
    author_name: str
    body: str
    interaction: NotRequired[InteractionPayload]
    # The comment's files, in the order they were added (none: absent or empty).
    attachments: NotRequired[list[AttachmentPayload]]


class ResentAnswerPayload(TypedDict):
    """One public answer re-sent by ``answers_resent``."""

    comment_id: str
    # The ``comment_added`` event that first emailed it ("" when not on record).
    original_event_id: str
    author_name: str
    body: str
    created_at: str  # ISO 8601
    # The answer's files, mailed with it again.
    attachments: NotRequired[list[AttachmentPayload]]


class ResendPayload(TypedDict):
    """``answers_resent`` (TicketService.ResendAnswers): what to re-send, to whom."""

    recipient: PersonPayload
    answers: list[ResentAnswerPayload]


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
    # ``answers_resent`` only.
    resend: NotRequired[ResendPayload]


def encode(payload: TicketEventPayload) -> bytes:
    return to_json(payload)


def decode(data: bytes) -> TicketEventPayload:
    """A message body; ``ValueError`` naming what is missing when it is not an event."""
    raw = json_object(data)
    for key, kind in (("event_id", str), ("type", str), ("ticket_id", int), ("ticket", dict)):
        if not isinstance(raw.get(key), kind) or (kind is str and not raw[key]):
            raise ValueError(f"{key}: missing or not a {kind.__name__}")
    ticket = raw["ticket"]
    for key, kind in (("subject", str), ("requester", dict)):
        if not isinstance(ticket.get(key), kind):
            raise ValueError(f"ticket.{key}: missing or not a {kind.__name__}")
    comment = raw.get("comment")
    if comment is not None and not isinstance(comment, dict):
        raise ValueError("comment: not an object")
    if raw["type"] == "comment_added" and comment is None:
        raise ValueError("comment: required for comment_added")
    return cast(TicketEventPayload, raw)
