"""Publishing secrets (generated passwords, reset codes) for notify to email.

They go to the short-lived ``HELPDESK_SECRETS`` stream (kept one hour), never
to the durable ``HELPDESK`` stream of ticket events.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext

from services.common import events, telemetry


class SecretPublisher:
    def __init__(self, url: str, name: str) -> None:
        self._url = url
        self._name = name
        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None

    async def _jetstream(self) -> JetStreamContext:
        if self._js is None:
            self._nc = await events.connect(self._url, self._name)
            self._js = self._nc.jetstream()
            await events.ensure_secrets_stream(self._js)
        return self._js

    async def publish(self, kind: str, payload: Mapping[str, object]) -> None:
        js = await self._jetstream()
        await js.publish(
            events.secret_subject(kind),
            json.dumps(payload, ensure_ascii=False).encode(),
            # The trace context only: a span never holds the secret itself.
            headers=telemetry.inject({"Nats-Msg-Id": str(payload["event_id"])}),
            timeout=10,
        )

    async def close(self) -> None:
        if self._nc is not None:
            await self._nc.drain()
            self._nc = None
            self._js = None
