"""The sales office's events for notify, ``helpdesk.sales.<type>`` on the ``HELPDESK``
stream (seed 003), published from the tickets service's outbox (``sales_events``):
``created``, ``assigned``, ``replied``, ``message_received``, ``updated``.

The same subjects carry the quotes' events (``quote_<type>``, ``services.common.messages
.quotes``): ``decode_any`` tells them apart for the stream's consumer.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict, cast

from services.common.messages import quotes
from services.common.messages.codec import json_object, to_json

FILTER = "helpdesk.sales.>"
TYPES = ("created", "assigned", "replied", "message_received", "updated")
_REQUIRED = (
    ("event_id", str),
    ("type", str),
    ("sales_request_id", str),
    ("number", int),
    ("subject", str),
    ("sender", str),
)


def subject(event_type: str) -> str:
    return f"helpdesk.sales.{event_type}"


class SalesAgentPayload(TypedDict):
    """An agent of the sales office, told of a new request."""

    id: int
    name: str
    email: str
    locale: str  # "it"


class SalesEventPayload(TypedDict):
    # Every event (``services.tickets.sales_events.common_payload``).
    event_id: str
    type: str  # one of TYPES
    occurred_at: str  # ISO 8601, UTC
    sales_request_id: str
    number: int  # shown "V-12"
    kind: str  # "INFORMATION" | "DEVELOPMENT_QUOTE" | ...
    status: str
    subject: str
    sender: str
    sender_name: str
    locale: str  # "it" | "en"
    organization_id: int  # 0: a prospect
    organization_name: str
    owner_id: int  # 0: nobody yet
    owner_name: str
    owner_email: str
    company: str
    # created: where it came from, its text's start and the sales office to tell.
    source: NotRequired[str]
    body: NotRequired[str]  # also message_received, replied
    sales_emails: NotRequired[list[SalesAgentPayload]]
    # message_received, replied: the request's message.
    message_id: NotRequired[str]
    # assigned: by whom.
    assigned_by_id: NotRequired[int]
    assigned_by_name: NotRequired[str]
    # replied: who answered, and the requester's first mail the answer threads to.
    author_name: NotRequired[str]
    in_reply_to: NotRequired[str]
    # updated: the status before, and the agent's note.
    previous_status: NotRequired[str]
    note: NotRequired[str]


def encode(payload: SalesEventPayload) -> bytes:
    return to_json(payload)


def decode(data: bytes) -> SalesEventPayload:
    """A message body; ``ValueError`` naming what is wrong when it is not a sales event."""
    body = json_object(data)
    for key, kind in _REQUIRED:
        if not isinstance(body.get(key), kind) or (
            kind is str and key != "subject" and not body[key]
        ):
            raise ValueError(f"{key}: missing or not a {kind.__name__}")
    if body["type"] not in TYPES:
        raise ValueError(f"type: not one of {', '.join(TYPES)}")
    if body["type"] == "created" and not isinstance(body.get("sales_emails"), list):
        raise ValueError("sales_emails: missing or not a list")
    if body["type"] == "replied" and not isinstance(body.get("body"), str):
        raise ValueError("body: missing or not a string")
    return cast(SalesEventPayload, body)


def decode_any(data: bytes) -> SalesEventPayload | quotes.QuoteEventPayload:
    """Any body on ``helpdesk.sales.>``: a quote's (its ``type`` is ``quote_*``) or a
    request's, each checked by its own ``decode``."""
    if quotes.is_quote(data):
        return quotes.decode(data)
    return decode(data)
