"""The quotes' events (seed 003), ``helpdesk.sales.quote_<type>`` on the ``HELPDESK``
stream beside the sales requests' own, published from the tickets service's sales outbox
by the quote workflow's activity: ``quote_sent``, ``quote_reminder``, ``quote_accepted``,
``quote_declined``, ``quote_expired``.

Each carries what notify needs to write its mails without asking: the customer who asked
(the ticket's requester) and the ticket's assignee.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any, TypedDict, cast

from services.common.messages.codec import json_object, to_json

TYPES = ("quote_sent", "quote_reminder", "quote_accepted", "quote_declined", "quote_expired")
_REQUIRED = (
    ("event_id", str),
    ("type", str),
    ("quote_id", int),
    ("number", str),
    ("ticket_id", int),
    ("organization_id", int),
    ("total", str),
    ("valid_until", str),
)


def subject(event_type: str) -> str:
    """``helpdesk.sales.quote_<type>`` for ``quote_<type>``: the sales subjects'."""
    return f"helpdesk.sales.{event_type}"


class QuoteEventPayload(TypedDict):
    event_id: str
    type: str  # one of TYPES
    occurred_at: str  # ISO 8601, UTC
    quote_id: int
    number: str  # "Q-3"
    ticket_id: int
    subject: str  # the ticket's
    organization_id: int
    organization_name: str
    status: str
    title: str
    total: str  # VAT included, "1250.00"
    currency: str  # "EUR"
    valid_until: str  # ISO date: the last day it may be accepted
    proposed_dates: str
    decided_by_name: str
    reason: str  # why it was declined ("" otherwise)
    requester_id: int
    requester_email: str
    requester_name: str
    locale: str  # the requester's, "it" | "en"
    assignee_id: int  # 0: unassigned
    assignee_name: str
    assignee_email: str


def is_quote(data: bytes) -> bool:
    """Whether a ``helpdesk.sales.>`` body is a quote's (its ``type`` is ``quote_*``)."""
    try:
        body: Any = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(body, dict) and str(body.get("type") or "").startswith("quote_")


def encode(payload: QuoteEventPayload) -> bytes:
    return to_json(payload)


def decode(data: bytes) -> QuoteEventPayload:
    """A message body; ``ValueError`` naming what is wrong when it is not a quote event."""
    body = json_object(data)
    for key, kind in _REQUIRED:
        value = body.get(key)
        if not isinstance(value, kind) or isinstance(value, bool) or not value:
            raise ValueError(f"{key}: missing or not a {kind.__name__}")
    if body["type"] not in TYPES:
        raise ValueError(f"type: not one of {', '.join(TYPES)}")
    try:
        date.fromisoformat(body["valid_until"])
    except ValueError as err:
        raise ValueError("valid_until: not an ISO date") from err
    return cast(QuoteEventPayload, body)
