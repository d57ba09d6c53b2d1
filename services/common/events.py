"""Events on NATS JetStream: stream ``HELPDESK``, subjects ``helpdesk.<entity>.<event>``,
and the short-lived ``HELPDESK_SECRETS``; the publishers of both.

What each message holds, and its subjects, live in ``services.common.messages`` (one
module per stream). Every event carries its ID as ``Nats-Msg-Id`` so that a retried
publish is dropped by the server's duplicate window; consumers also keep the IDs they
have handled, so a redelivery never repeats an effect.
"""

from __future__ import annotations

from collections.abc import Mapping

import nats
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError
from opentelemetry.trace import SpanKind

from services.common import telemetry
from services.common.messages import (
    desk,
    im,
    mail,
    maintenance,
    programming,
    reports,
    sales,
    secrets,
    tickets,
)
from services.common.messages.codec import to_json

STREAM = "HELPDESK"
SUBJECTS = [
    tickets.FILTER,
    programming.FILTER,
    mail.FILTER,
    reports.FILTER,
    im.FILTER,  # intake's instant-messaging events for notify
    desk.FILTER,  # the desk's own events (the opening digest) for notify
    maintenance.FILTER,  # planned remote updates (seed 000) for notify
    sales.FILTER,  # the sales office's requests and quotes (seeds 003/004) for notify
]
_tracer = telemetry.tracer(__name__)
# How long JetStream remembers a message ID: longer than any activity retry gap we expect.
DUPLICATE_WINDOW_SECONDS = 24 * 3600


def _covers(wide: str, narrow: str) -> bool:
    """Whether every subject matching ``narrow`` also matches ``wide``."""
    left, right = wide.split("."), narrow.split(".")
    for i, token in enumerate(left):
        if token == ">":
            return len(right) > i
        if i >= len(right) or (token != "*" and token != right[i]):
            return False
    return len(left) == len(right)


async def connect(url: str, name: str) -> NatsClient:
    return await nats.connect(
        url, name=name, max_reconnect_attempts=-1, reconnect_time_wait=0.5, connect_timeout=5
    )


async def ensure_stream(js: JetStreamContext) -> None:
    """Create the ``HELPDESK`` stream when missing, and add subjects it lacks (idempotent)."""
    try:
        info = await js.stream_info(STREAM)
    except NotFoundError:
        await js.add_stream(
            StreamConfig(
                name=STREAM,
                subjects=SUBJECTS,
                duplicate_window=DUPLICATE_WINDOW_SECONDS,
            )
        )
        return
    existing = list(info.config.subjects or [])
    missing = [s for s in SUBJECTS if not any(_covers(e, s) for e in existing)]
    if missing:
        info.config.subjects = existing + missing
        try:
            await js.update_stream(info.config)
        except BadRequestError:  # updated meanwhile by another process
            await js.stream_info(STREAM)


class _Publisher:
    """A NATS connection made on first use, with its stream ensured (``_ensure``)."""

    def __init__(self, url: str, name: str) -> None:
        self._url = url
        self._name = name
        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None

    async def _ensure(self, js: JetStreamContext) -> None:
        await ensure_stream(js)

    async def _jetstream(self) -> JetStreamContext:
        if self._js is None:
            self._nc = await connect(self._url, self._name)
            self._js = self._nc.jetstream()
            await self._ensure(self._js)
        return self._js

    async def close(self) -> None:
        if self._nc is not None:
            await self._nc.drain()
            self._nc = None
            self._js = None


class EventPublisher(_Publisher):
    """Publishes JSON events with their ID as ``Nats-Msg-Id``."""

    async def publish(self, subject: str, event_id: str, payload: Mapping[str, object]) -> bool:
        """Publish once; returns False when the server saw this event ID before.

        The message's headers carry the trace context, so its consumers' spans join the
        trace of what published it."""
        js = await self._jetstream()
        with _tracer.start_as_current_span(
            f"{subject} publish",
            kind=SpanKind.PRODUCER,
            attributes={"messaging.system": "nats", "messaging.destination.name": subject},
        ) as span:
            ack = await js.publish(
                subject,
                to_json(payload),
                headers=telemetry.inject({"Nats-Msg-Id": event_id}),
                timeout=10,
            )
            span.set_attribute("messaging.message.id", event_id)
            span.set_attribute("helpdesk.duplicate", bool(ack.duplicate))
        return not ack.duplicate


# -- secrets: passwords and reset codes on their own short-lived stream -----------------

SECRETS_STREAM = "HELPDESK_SECRETS"
SECRET_SUBJECTS = [secrets.FILTER]
# Secrets must not persist: JetStream drops them after an hour, delivered or not.
SECRETS_MAX_AGE_SECONDS = 3600
SECRETS_DUPLICATE_WINDOW_SECONDS = 10 * 60
# What the HELPDESK stream keeps once the secrets stream exists: JetStream refuses two
# streams with overlapping subjects, and ``helpdesk.>`` would also keep every secret forever.
TICKET_STREAM_SUBJECTS = SUBJECTS


def _subjects_overlap(a: str, b: str) -> bool:
    """Whether some subject matches both filters (``*`` one token, ``>`` the rest)."""
    left, right = a.split("."), b.split(".")
    for x, y in zip(left, right, strict=False):
        if x == ">" or y == ">":
            return True
        if x != y and "*" not in (x, y):
            return False
    return len(left) == len(right)


def _overlaps_secrets(subject: str) -> bool:
    return any(_subjects_overlap(subject, s) for s in SECRET_SUBJECTS)


async def _narrow_ticket_stream(js: JetStreamContext) -> None:
    """Create ``HELPDESK`` without the secret subjects, or narrow one that covers them."""
    try:
        info = await js.stream_info(STREAM)
    except NotFoundError:
        try:
            await js.add_stream(
                StreamConfig(
                    name=STREAM,
                    subjects=TICKET_STREAM_SUBJECTS,
                    duplicate_window=DUPLICATE_WINDOW_SECONDS,
                )
            )
            return
        except BadRequestError:  # created meanwhile by ensure_stream: narrow it below
            info = await js.stream_info(STREAM)
    config = info.config
    subjects = list(config.subjects or [])
    if not any(_overlaps_secrets(s) for s in subjects):
        return
    kept = [s for s in subjects if not _overlaps_secrets(s)]
    config.subjects = kept + [s for s in TICKET_STREAM_SUBJECTS if s not in kept]
    await js.update_stream(config)


async def ensure_secrets_stream(js: JetStreamContext) -> None:
    """Create the ``HELPDESK_SECRETS`` stream when missing (idempotent).

    Kept in memory only, for at most ``SECRETS_MAX_AGE_SECONDS``. A ``HELPDESK`` stream
    whose subjects cover ``helpdesk.secret.>`` (the original ``helpdesk.>``) is narrowed to
    ``TICKET_STREAM_SUBJECTS`` first, so that no secret ever lands in the long-lived stream.
    """
    try:
        await js.stream_info(SECRETS_STREAM)
        return
    except NotFoundError:
        pass
    await _narrow_ticket_stream(js)
    try:
        await js.add_stream(
            StreamConfig(
                name=SECRETS_STREAM,
                subjects=SECRET_SUBJECTS,
                max_age=SECRETS_MAX_AGE_SECONDS,
                duplicate_window=SECRETS_DUPLICATE_WINDOW_SECONDS,
                storage=StorageType.MEMORY,
            )
        )
    except BadRequestError:
        await js.stream_info(SECRETS_STREAM)  # created meanwhile by another process


class SecretPublisher(_Publisher):
    """Publishes secrets (generated passwords, reset codes) for notify to email: to the
    short-lived ``HELPDESK_SECRETS`` stream (kept one hour), never to ``HELPDESK``."""

    async def _ensure(self, js: JetStreamContext) -> None:
        await ensure_secrets_stream(js)

    async def publish(self, kind: str, payload: secrets.SecretEventPayload) -> None:
        js = await self._jetstream()
        await js.publish(
            secrets.subject(kind),
            secrets.encode(payload),
            # The trace context only: a span never holds the secret itself.
            headers=telemetry.inject({"Nats-Msg-Id": str(payload["event_id"])}),
            timeout=10,
        )
