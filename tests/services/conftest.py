"""Fixtures of the notify tests: an SMTP relay on loopback, notify started in-process with
private durable consumers, a publisher of ticket events (helpers: ``notify_fixtures``)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from nats.js.api import DeliverPolicy
from temporalio.client import Client

from services.common.events import EventPublisher
from services.common.settings import Settings
from services.notify.app import NotifyApp
from tests.services.notify_fixtures import (
    DEADLINE,
    FAST_RETRY,
    Relay,
    delete_consumer,
    make_settings,
    smtp_relay,
)
from tests.services.ticket_api import Api, serve_api


@pytest.fixture
def relay() -> Iterator[Relay]:
    """A real SMTP server on a free loopback port that collects what it receives."""
    with smtp_relay() as running:
        yield running


@pytest.fixture
async def start_notify(nats_url: str) -> AsyncIterator[Callable[..., Any]]:
    """Starts NotifyApp in-process with private durable consumers (new messages only, fast
    retries, unless the call says otherwise); stops each app afterwards (before the
    nats-server it depends on goes away) and deletes its durable consumer."""
    started: list[NotifyApp] = []

    async def start(settings: Settings, **kwargs: Any) -> NotifyApp:
        kwargs.setdefault("durable", f"notify-test-{uuid.uuid4().hex[:10]}")
        kwargs.setdefault("secrets_durable", f"notify-secrets-test-{uuid.uuid4().hex[:10]}")
        kwargs.setdefault("deliver_policy", DeliverPolicy.NEW)
        kwargs.setdefault("retry", FAST_RETRY)
        app = NotifyApp(settings, **kwargs)
        started.append(app)
        await asyncio.wait_for(app.start(), DEADLINE)
        return app

    yield start
    for app in started:
        await asyncio.wait_for(app.stop(), DEADLINE)
    # A restarted app reuses its durable: each one is deleted once.
    for durable in dict.fromkeys(app._durable for app in started):
        await delete_consumer(nats_url, durable)


@pytest.fixture
async def notify(
    start_notify: Callable[..., Any],
    tmp_path: Path,
    database_url: str,
    nats_url: str,
    relay: Relay,
) -> NotifyApp:
    """Notify sending through the test relay."""
    app: NotifyApp = await start_notify(
        make_settings(tmp_path, database_url, nats_url, relay.address)
    )
    return app


@pytest.fixture
async def publisher(nats_url: str) -> AsyncIterator[EventPublisher]:
    pub = EventPublisher(nats_url, "test-tickets")
    yield pub
    await pub.close()


@pytest.fixture
async def api(temporal_client: Client, database_url: str, nats_url: str) -> AsyncIterator[Api]:
    """TicketService and DirectoryService over gRPC on the tickets stack."""
    async with serve_api(temporal_client, database_url, nats_url) as served:
        yield served
