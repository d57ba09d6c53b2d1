"""Who else is on a ticket ("Giulia Verdi is replying"), kept in NATS so that every
gateway replica sees the same: a JetStream key-value bucket whose entries expire after
``TTL_SECONDS`` unless the page's heartbeat writes them again.

- ``POST /agent/tickets/<id>/presence`` (csrf_token, state=viewing|replying|left) records
  the signed-in staff member on the ticket; a change (someone new, another state, gone)
  is announced on ``helpdesk.presence.<id>`` (core NATS, nothing kept), which the live
  feed passes on as the SSE event ``presence``.
- ``GET /agent/tickets/<id>/presence`` is the fragment naming the *others* on it
  (``templates/agent/_presence_list.html``); ``templates/agent/_presence.html`` is the
  snippet the ticket page includes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from nats.errors import Error as NatsError
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from helpdesk.v1 import tickets_pb2 as tpb
from services.gateway.agent.nats_link import NatsLink
from services.gateway.backend import CALL_TIMEOUT, call_md
from services.gateway.forms import read_form, text
from services.gateway.web import Web

BUCKET = "helpdesk-presence"
# An entry lives this long after its last heartbeat (the page beats every 10 s).
TTL_SECONDS = 30.0
CHANGED_SUBJECTS = "helpdesk.presence.*"
STATES = ("viewing", "replying")
LEFT = "left"


def changed_subject(ticket_id: int) -> str:
    return f"helpdesk.presence.{ticket_id}"


def key_of(ticket_id: int, agent_id: int) -> str:
    return f"{ticket_id}.{agent_id}"


@dataclass(frozen=True)
class Presence:
    agent_id: int
    name: str
    state: str  # "viewing" | "replying"

    def encode(self) -> bytes:
        return json.dumps(
            {"agent_id": self.agent_id, "name": self.name, "state": self.state}
        ).encode()

    @classmethod
    def decode(cls, data: bytes | None) -> Presence | None:
        try:
            body: Any = json.loads(data or b"")
        except ValueError:
            return None
        if not isinstance(body, dict):
            return None
        agent_id, name, state = body.get("agent_id"), body.get("name"), body.get("state")
        if not isinstance(agent_id, int) or not isinstance(name, str) or state not in STATES:
            return None
        return cls(agent_id, name, str(state))


async def current(kv: KeyValue, key: str) -> Presence | None:
    try:
        entry = await kv.get(key)
    except KeyNotFoundError:
        return None
    return Presence.decode(entry.value)


async def on_ticket(kv: KeyValue, ticket_id: int) -> list[Presence]:
    """Everyone recorded on the ticket now (expired entries are gone from the bucket)."""
    watcher = await kv.watch(f"{ticket_id}.*", ignore_deletes=True)
    found: list[Presence] = []
    try:
        while True:
            entry = await watcher.updates(timeout=2.0)  # type: ignore[no-untyped-call]
            if entry is None:
                break
            presence = Presence.decode(entry.value)
            if presence is not None:
                found.append(presence)
    finally:
        await watcher.stop()  # type: ignore[no-untyped-call]
    return sorted(found, key=lambda p: (p.state != "replying", p.name.casefold()))


def routes(web: Web, link: NatsLink) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    async def bucket() -> KeyValue | None:
        try:
            return await link.bucket(BUCKET, TTL_SECONDS)
        except (NatsError, OSError, TimeoutError):
            return None

    def unavailable() -> Response:
        return Response(status_code=503, headers={"Retry-After": "10"})

    @router.post("/agent/tickets/{ticket_id:int}/presence")
    async def record(request: Request, ticket_id: int) -> Response:
        viewer = await web.require_staff(request)
        form = await read_form(request)
        web.check_csrf(request, form)
        state = text(form, "state")
        if state not in (*STATES, LEFT):
            return HTMLResponse(
                web._(request, "state: must be viewing, replying or left"), status_code=400
            )
        kv = await bucket()
        if kv is None or link.nc is None:
            return unavailable()
        key = key_of(ticket_id, viewer.id)
        try:
            before = await current(kv, key)
            if state == LEFT:
                if before is None:
                    return Response(status_code=204)
                await kv.delete(key)
            else:
                if before is None:
                    # First beat on this ticket: the services say whether it may be seen.
                    await web.backend.tickets.GetTicket(
                        tpb.GetTicketRequest(id=ticket_id),
                        metadata=call_md(viewer.token),
                        timeout=CALL_TIMEOUT,
                    )
                await kv.put(key, Presence(viewer.id, viewer.name, state).encode())
            if before is None or before.state != state:
                await link.nc.publish(changed_subject(ticket_id), b"")
        except (NatsError, OSError, TimeoutError):
            return unavailable()
        return Response(status_code=204)

    @router.get("/agent/tickets/{ticket_id:int}/presence")
    async def others(request: Request, ticket_id: int) -> Response:
        viewer = await web.require_staff(request)
        kv = await bucket()
        people: list[Presence] = []
        if kv is not None:
            try:
                people = [p for p in await on_ticket(kv, ticket_id) if p.agent_id != viewer.id]
            except (NatsError, OSError, TimeoutError):
                people = []
        lines = [
            web._(
                request,
                "{name} is replying" if p.state == "replying" else "{name} is viewing",
                name=p.name,
            )
            for p in people
        ]
        return web.page(request, "agent/_presence_list.html", "", lines=lines, live=kv is not None)

    return router
