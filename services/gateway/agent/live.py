"""The console's live feed: ``GET /agent/live``, server-sent events fed by NATS.

Every ``helpdesk.ticket.>`` event (a core subscription: nothing durable, nothing kept)
becomes an SSE event ``ticket`` with data ``{"id": N}``; a presence change on a ticket
(``helpdesk.presence.<id>``, see ``presence``) becomes ``presence`` with ``{"id": N}``. Only
the ID leaves the gateway: the page then asks the services, with the viewer's own token,
for what it may see. ``static/agent.js`` turns them into DOM events on ``document.body``:
``hd-ticket-changed`` (detail: the ID), ``hd-ticket-<id>-changed`` and
``hd-presence-<id>-changed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from services.common.settings import Settings
from services.gateway.agent import presence
from services.gateway.agent.nats_link import NatsLink, link_of
from services.gateway.web import SESSION_COOKIE, Web

log = logging.getLogger("helpdesk.gateway.live")

TICKET_SUBJECTS = "helpdesk.ticket.>"
# A comment line this often keeps proxies from closing an idle stream; the session is
# checked again each time.
KEEPALIVE_SECONDS = 15.0
# Events a slow browser may fall behind by before the oldest are dropped (it refreshes
# on the next one anyway).
QUEUE_SIZE = 200
# How long EventSource waits before reconnecting.
RETRY_MS = 3000

Event = tuple[str, int]


class Hub:
    """Fans the NATS events out to every open stream of this gateway process."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[Event]] = set()

    @contextlib.contextmanager
    def listen(self) -> Iterator[asyncio.Queue[Event]]:
        queue: asyncio.Queue[Event] = asyncio.Queue(QUEUE_SIZE)
        self._queues.add(queue)
        try:
            yield queue
        finally:
            self._queues.discard(queue)

    @property
    def listeners(self) -> int:
        return len(self._queues)

    def dispatch(self, kind: str, ticket_id: int) -> None:
        for queue in self._queues:
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait((kind, ticket_id))

    async def subscribe(self, nc: NatsClient) -> None:
        async def on_ticket(msg: Msg) -> None:
            ticket_id = ticket_id_of(msg.data)
            if ticket_id:
                self.dispatch("ticket", ticket_id)

        async def on_presence(msg: Msg) -> None:
            tail = msg.subject.rsplit(".", 1)[-1]
            if tail.isdigit():
                self.dispatch("presence", int(tail))

        await nc.subscribe(TICKET_SUBJECTS, cb=on_ticket)
        await nc.subscribe(presence.CHANGED_SUBJECTS, cb=on_presence)


def ticket_id_of(data: bytes) -> int:
    """The ``ticket_id`` of a ticket event's JSON body (0 when it has none)."""
    try:
        body: Any = json.loads(data)
    except ValueError:
        return 0
    value = body.get("ticket_id") if isinstance(body, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def sse(kind: str, ticket_id: int) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'id': ticket_id})}\n\n".encode()


def routes(web: Web) -> APIRouter:
    link: NatsLink = link_of(web, Settings.from_env().nats_url)
    hub = Hub()
    link.on_connect(hub.subscribe)

    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        link.start()
        try:
            yield
        finally:
            await link.close()

    router = APIRouter(include_in_schema=False, lifespan=lifespan)

    @router.get("/agent/live")
    async def live(request: Request) -> StreamingResponse:
        await web.require_staff(request)
        session_id = request.cookies.get(SESSION_COOKIE, "")

        async def stream() -> AsyncIterator[bytes]:
            with hub.listen() as queue:
                yield f"retry: {RETRY_MS}\n: live\n\n".encode()
                while True:
                    try:
                        kind, ticket_id = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
                    except TimeoutError:
                        if await request.is_disconnected():
                            return
                        if await web.store.get(session_id) is None:
                            yield b"event: signed-out\ndata: {}\n\n"
                            return
                        yield b": keepalive\n\n"
                        continue
                    yield sse(kind, ticket_id)

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    router.include_router(presence.routes(web, link))
    return router
