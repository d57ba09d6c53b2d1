"""The live feed's pieces without a server: what a NATS event becomes, the fan-out to
open streams, the presence entries, and a NATS that does not answer."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest

from services.gateway.agent.live import Hub, sse, ticket_id_of
from services.gateway.agent.nats_link import NatsLink
from services.gateway.agent.presence import Presence, key_of

pytestmark = pytest.mark.unit


def test_a_ticket_event_becomes_its_id_only() -> None:
    body = {"event_id": "e1", "type": "assigned", "ticket_id": 42, "ticket": {"subject": "x"}}
    assert ticket_id_of(json.dumps(body).encode()) == 42
    for bad in (b"not json", b"[]", b'{"ticket_id": "42"}', b'{"ticket_id": true}', b"{}"):
        assert ticket_id_of(bad) == 0
    assert sse("ticket", 42) == b'event: ticket\ndata: {"id": 42}\n\n'


async def test_the_hub_fans_out_and_forgets_closed_streams() -> None:
    hub = Hub()
    with hub.listen() as first, hub.listen() as second:
        hub.dispatch("ticket", 7)
        hub.dispatch("presence", 8)
        assert [first.get_nowait(), first.get_nowait()] == [("ticket", 7), ("presence", 8)]
        assert second.get_nowait() == ("ticket", 7)
    assert hub.listeners == 0
    hub.dispatch("ticket", 9)  # nobody listening: nothing happens


async def test_a_slow_stream_drops_its_oldest_events() -> None:
    hub = Hub()
    with hub.listen() as queue:
        for n in range(1, queue.maxsize + 6):
            hub.dispatch("ticket", n)
        assert queue.qsize() == queue.maxsize
        assert queue.get_nowait() == ("ticket", 6)


def test_presence_entries() -> None:
    entry = Presence(5, "Giulia Verdi", "replying")
    assert Presence.decode(entry.encode()) == entry
    assert key_of(42, 5) == "42.5"
    for bad in (b"", b"[]", b'{"agent_id": 5, "name": "x", "state": "dancing"}', None):
        assert Presence.decode(bad) is None


async def test_the_gateway_does_not_wait_for_nats() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    link = NatsLink(f"nats://127.0.0.1:{port}")
    link.start()
    await asyncio.sleep(0.3)
    assert not link.up
    assert await link.bucket("helpdesk-presence", 30) is None
    await asyncio.wait_for(link.close(), 5)
