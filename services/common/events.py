"""Events on NATS JetStream: stream ``HELPDESK``, subjects ``helpdesk.<entity>.<event>``.

Every event carries its ID as ``Nats-Msg-Id`` so that a retried publish is
dropped by the server's duplicate window; consumers also keep the IDs they
have handled, so a redelivery never repeats an effect.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import nats
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import StreamConfig
from nats.js.errors import NotFoundError

STREAM = "HELPDESK"
SUBJECTS = ["helpdesk.>"]
# How long JetStream remembers a message ID: longer than any activity retry gap we expect.
DUPLICATE_WINDOW_SECONDS = 24 * 3600


def ticket_subject(event_type: str) -> str:
    return f"helpdesk.ticket.{event_type}"


async def connect(url: str, name: str) -> NatsClient:
    return await nats.connect(
        url, name=name, max_reconnect_attempts=-1, reconnect_time_wait=0.5, connect_timeout=5
    )


async def ensure_stream(js: JetStreamContext) -> None:
    """Create the ``HELPDESK`` stream when missing (idempotent)."""
    try:
        await js.stream_info(STREAM)
    except NotFoundError:
        await js.add_stream(
            StreamConfig(
                name=STREAM,
                subjects=SUBJECTS,
                duplicate_window=DUPLICATE_WINDOW_SECONDS,
            )
        )


class EventPublisher:
    """Publishes JSON events with their ID as ``Nats-Msg-Id``."""

    def __init__(self, url: str, name: str) -> None:
        self._url = url
        self._name = name
        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None

    async def _jetstream(self) -> JetStreamContext:
        if self._js is None:
            self._nc = await connect(self._url, self._name)
            self._js = self._nc.jetstream()
            await ensure_stream(self._js)
        return self._js

    async def publish(self, subject: str, event_id: str, payload: Mapping[str, object]) -> bool:
        """Publish once; returns False when the server saw this event ID before."""
        js = await self._jetstream()
        ack = await js.publish(
            subject,
            json.dumps(payload, ensure_ascii=False, default=str).encode(),
            headers={"Nats-Msg-Id": event_id},
            timeout=10,
        )
        return not ack.duplicate

    async def close(self) -> None:
        if self._nc is not None:
            await self._nc.drain()
            self._nc = None
            self._js = None
