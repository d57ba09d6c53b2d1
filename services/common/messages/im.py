"""Intake's instant-messaging events for notify, ``helpdesk.im.<type>`` on the
``HELPDESK`` stream, published from intake's outbox:

- ``ticket``: a ticket's chat (where an agent's reply to it goes);
- ``send``: a message of the bot's own to a chat;
- ``status``: a provider's delivery status of a message notify sent (WhatsApp).
"""

from __future__ import annotations

from typing import NotRequired, TypedDict, cast

from services.common.messages.codec import json_object, to_json

FILTER = "helpdesk.im.>"
TYPES = ("ticket", "send", "status")
PROVIDERS = ("telegram", "whatsapp")


def subject(event_type: str) -> str:
    return f"helpdesk.im.{event_type}"


class ImEventPayload(TypedDict):
    event_id: str
    type: str  # one of TYPES
    provider: str  # one of PROVIDERS
    # ticket, send (0: none).
    ticket_id: NotRequired[int]
    chat_id: NotRequired[str]
    # ticket: whether the chat is a group.
    group: NotRequired[bool]
    # send: the bot's template, in the chat's language, and its text.
    template: NotRequired[str]
    locale: NotRequired[str]  # "it" | "en"
    text: NotRequired[str]
    # status: the provider's message ID and what became of it.
    message_id: NotRequired[str]
    status: NotRequired[str]  # "sent" | "delivered" | "read" | "failed"
    recipient: NotRequired[str]
    timestamp: NotRequired[str]
    error: NotRequired[str]


def encode(payload: ImEventPayload) -> bytes:
    return to_json(payload)


def decode(data: bytes) -> ImEventPayload:
    """A message body; ``ValueError`` naming what is wrong when it is not an IM event."""
    raw = json_object(data)
    if not isinstance(raw.get("event_id"), str):
        raise ValueError("event_id: missing")
    if raw.get("type") not in TYPES:
        raise ValueError(f"type: not one of {', '.join(TYPES)}")
    if raw.get("provider") not in PROVIDERS:
        raise ValueError("provider: not telegram or whatsapp")
    return cast(ImEventPayload, raw)
