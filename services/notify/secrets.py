"""Emails that carry a secret: portal credentials and password-reset codes.

The tickets service publishes them on ``helpdesk.secret.<type>`` to the
short-lived ``HELPDESK_SECRETS`` stream; notify consumes them with its own
durable ``notify-secrets`` and sends them like the ticket emails (same mailer,
headers, delivery log and at-least-once rule: a resend keeps the Message-ID). The
secret goes into the body of the email and nowhere else: the delivery row keeps the
subject, never the body, and no log line names the secret.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any
from urllib.parse import quote

from nats.js import JetStreamContext

from services.common.events import SECRET_SUBJECTS, SECRETS_STREAM, ensure_secrets_stream
from services.common.local_dates import month_name
from services.common.messages import secrets as secrets_messages
from services.common.messages.secrets import SecretEventPayload
from services.notify.consumer import HandledConsumer
from services.notify.local_time import local_instant, zone_note
from services.notify.notifier import Notifier, Progress
from services.notify.render import RenderedEmail, Renderer, one_line
from services.notify.rules import PlannedEmail, locale_of
from services.notify.store import DeliveryDraft

log = logging.getLogger(__name__)

DURABLE = "notify-secrets"
FILTER_SUBJECT = SECRET_SUBJECTS[0]
# The event types and the template each one sends (same name).
SECRET_TEMPLATES = ("credentials_issued", "password_reset", "im_link_code")  # + IM link codes
KINDS = ("CONTACT", "AGENT")


def plan_secret(event: SecretEventPayload) -> PlannedEmail | None:
    """The one email a secret event calls for, or None (unknown type, no address)."""
    if event["type"] not in SECRET_TEMPLATES:
        log.warning(
            "secret event %s: unknown type %r, nothing sent", event["event_id"], event["type"]
        )
        return None
    recipient = event["recipient"]
    address = (recipient.get("email") or "").strip().lower()
    if "@" not in address:
        log.warning(
            "secret event %s (%s): no email address, nothing sent", event["event_id"], event["type"]
        )
        return None
    return PlannedEmail(
        template=event["type"],
        recipient=address,
        recipient_name=(recipient.get("name") or "").strip(),
        locale=locale_of(recipient.get("locale") or ""),
    )


def format_expiry(expires_at: str, locale: str) -> str:
    """``23/11/2026 alle 15:35 (ora italiana)`` / ``23 November 2026 at 15:35 (Italian time)``."""
    local = local_instant(expires_at)
    zone = zone_note(locale)
    if locale == "en":
        return (
            f"{local.day} {month_name(local.month, locale)} {local.year} at {local:%H:%M} ({zone})"
        )
    return f"{local:%d/%m/%Y} alle {local:%H:%M} ({zone})"


def secret_context(
    event: SecretEventPayload, email: PlannedEmail, portal_url: str = ""
) -> dict[str, Any]:
    """The variables the secret templates may use: the portal's sign-in page, and its
    reset page for this address ("" without a portal)."""
    expires_at = event.get("expires_at")
    portal = portal_url.rstrip("/")
    return {
        "login_link": f"{portal}/login" if portal else "",
        "reset_link": f"{portal}/reset?email={quote(email.recipient, safe='')}" if portal else "",
        "name": email.recipient_name,
        "email": email.recipient,
        "secret": event["secret"],
        "kind": event.get("kind") or "CONTACT",
        "organization_name": one_line(event.get("organization_name") or ""),
        "expires": format_expiry(expires_at, email.locale) if expires_at else "",
    }


class SecretNotifier:
    """Renders and sends the email of one secret event (recorded once, sent at least once)."""

    def __init__(self, notifier: Notifier, renderer: Renderer) -> None:
        self._notifier = notifier
        self._renderer = renderer

    async def handle(
        self, event: SecretEventPayload, progress: Progress | None = None
    ) -> float | None:
        """Send the email; None when done, else seconds to wait before a retry."""
        email = plan_secret(event)
        if email is None:
            return None
        secret = event["secret"]

        def render() -> RenderedEmail:
            context = secret_context(event, email, self._renderer.portal_url)
            rendered = self._renderer.render_template(email.template, email.locale, context)
            if secret not in rendered.subject:
                return rendered
            # The subject is stored: it must never hold the secret.
            log.warning(
                "secret event %s: the subject would show the secret, masked", event["event_id"]
            )
            return replace(rendered, subject=rendered.subject.replace(secret, "***"))

        draft = DeliveryDraft(
            event_id=event["event_id"],
            event_type=event["type"],
            ticket_id=0,
            recipient=email.recipient,
            subject="",
            template=email.template,
            locale=email.locale,
            message_id=self._notifier.message_id(event["event_id"], email.template),
        )
        return await self._notifier.render_and_deliver(
            draft, email, render, progress, redact=(secret,)
        )


class SecretConsumer(HandledConsumer[SecretEventPayload]):
    """Durable pull consumer ``notify-secrets`` on ``helpdesk.secret.>``."""

    stream = SECRETS_STREAM
    filter_subject = FILTER_SUBJECT
    description = "notify: emails carrying credentials and reset codes"
    default_durable = DURABLE

    async def ensure_stream(self, js: JetStreamContext) -> None:
        await ensure_secrets_stream(js)

    decode = secrets_messages.decode

    def describe(self, event: SecretEventPayload) -> str:
        return f"{event['event_id']} ({event['type']})"
