"""Secrets (generated passwords, reset codes, IM link codes), ``helpdesk.secret.<type>``
on their own short-lived ``HELPDESK_SECRETS`` stream (kept one hour), never on the
durable ``HELPDESK`` stream of ticket events. Produced by the tickets service (portal
credentials, password resets) and intake (IM link codes), emailed by notify.

A secret goes into the email's body and nowhere else: ``decode``'s errors name the field,
never its value.
"""

from __future__ import annotations

from datetime import datetime
from typing import TypedDict, cast

from services.common.messages.codec import json_object, to_json

FILTER = "helpdesk.secret.>"


def subject(kind: str) -> str:
    return f"helpdesk.secret.{kind}"


class SecretRecipient(TypedDict):
    email: str
    name: str
    locale: str  # "it" | "en"


class SecretEventPayload(TypedDict):
    event_id: str
    type: str  # "credentials_issued" | "password_reset" | "im_link_code"
    recipient: SecretRecipient
    kind: str  # "CONTACT" | "AGENT"
    secret: str  # the password, or the one-time code
    expires_at: str | None  # ISO 8601; set for password_reset and im_link_code
    organization_name: str


def encode(payload: SecretEventPayload) -> bytes:
    """Strict JSON: a value JSON has no type for is an error, never its text in a secret."""
    return to_json(payload, strict=True)


def decode(data: bytes) -> SecretEventPayload:
    """A message body; ``ValueError`` naming the field (never its value) when bad."""
    raw = json_object(data)
    for key in ("event_id", "type", "secret"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise ValueError(f"{key}: missing or not a non-empty string")
    recipient = raw.get("recipient")
    if not isinstance(recipient, dict):
        raise ValueError("recipient: missing or not an object")
    # Optional text (missing or null reads as empty); notify checks the address itself.
    for where, key in (
        (recipient, "email"),
        (recipient, "name"),
        (recipient, "locale"),
        (raw, "kind"),
        (raw, "organization_name"),
    ):
        value = where.get(key)
        if value is not None and not isinstance(value, str):
            prefix = "recipient." if where is recipient else ""
            raise ValueError(f"{prefix}{key}: not a string")
    expires_at = raw.get("expires_at")
    if expires_at is not None:
        if not isinstance(expires_at, str):
            raise ValueError("expires_at: not an ISO 8601 string")
        try:
            datetime.fromisoformat(expires_at)
        except ValueError as err:
            raise ValueError("expires_at: not an ISO 8601 date and time") from err
    if raw["type"] == "password_reset" and not expires_at:
        raise ValueError("expires_at: required for password_reset")
    return cast(SecretEventPayload, raw)
