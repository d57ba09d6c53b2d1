"""Intake's mail events for notify, ``helpdesk.mail.<type>`` on the ``HELPDESK`` stream:

- ``received``: which message opened a ticket (its acknowledgement answers it, or is not
  sent when the mail must get no automatic reply);
- ``prospect``: a sender who is not a customer (an email, or the sales form), for the
  polite reply;
- ``bounce``: a delivery-status report about notify's own messages;
- ``attachments_refused``: files of a customer's mail left out of its ticket or comment.

Each event's ID is deterministic (it is the ``Nats-Msg-Id``); which keys each type carries
is noted on ``MailEventPayload``.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict, cast

from services.common.messages.codec import json_object, to_json

FILTER = "helpdesk.mail.>"
TYPES = ("received", "prospect", "bounce", "attachments_refused")


def subject(event_type: str) -> str:
    return f"helpdesk.mail.{event_type}"


class MailEventPayload(TypedDict):
    event_id: str
    type: str  # one of TYPES
    # received, attachments_refused: the ticket the mail opened or went to.
    ticket_id: NotRequired[int]
    # received, prospect, attachments_refused: the mail's own ("" when unusable or none).
    message_id: NotRequired[str]
    # received, prospect, attachments_refused: the sender's address.
    sender: NotRequired[str]
    # prospect, attachments_refused.
    sender_name: NotRequired[str]
    locale: NotRequired[str]  # "it" | "en"
    subject: NotRequired[str]
    # received, attachments_refused: whether the mail may be answered automatically.
    auto_reply: NotRequired[bool]
    no_auto_reply_reason: NotRequired[str]
    # prospect: the sales request the mail (or form) became; the form also says whether
    # the sender is a known contact.
    request_id: NotRequired[str]
    known_contact: NotRequired[bool]
    # attachments_refused: the files left out (at most a few named), and how many more.
    files: NotRequired[list[str]]
    more: NotRequired[int]
    # bounce: the report's fields; only notify's own Message-IDs are named.
    original_message_ids: NotRequired[list[str]]
    recipients: NotRequired[list[str]]
    action: NotRequired[str]
    status: NotRequired[str]
    diagnostic: NotRequired[str]


def encode(payload: MailEventPayload) -> bytes:
    return to_json(payload)


def decode(data: bytes) -> MailEventPayload:
    """A message body; ``ValueError`` naming what is wrong when it is not a mail event."""
    raw = json_object(data)
    if not isinstance(raw.get("event_id"), str) or not raw["event_id"]:
        raise ValueError("event_id: missing")
    if raw.get("type") not in TYPES:
        raise ValueError(f"type: not one of {', '.join(TYPES)}")
    if raw["type"] in ("received", "attachments_refused") and not isinstance(
        raw.get("ticket_id"), int
    ):
        raise ValueError("ticket_id: missing or not an integer")
    if raw["type"] in ("prospect", "attachments_refused") and not isinstance(
        raw.get("sender"), str
    ):
        raise ValueError("sender: missing")
    if raw["type"] == "bounce" and not isinstance(raw.get("original_message_ids"), list):
        raise ValueError("original_message_ids: missing")
    return cast(MailEventPayload, raw)
