"""The gateway's one NATS connection, for the console's live feed and presence.

Opened in the background at start-up and retried until NATS answers: the gateway serves
its pages without NATS (the live feed is then silent, presence empty). nats-py resubscribes
by itself after a reconnect. Closed (drained) at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Awaitable, Callable

import nats
from nats.aio.client import Client as NatsClient
from nats.js.api import StorageType
from nats.js.kv import KeyValue

from services.gateway.web import Web

log = logging.getLogger("helpdesk.gateway.live")

RETRY_SECONDS = 2.0
OnConnect = Callable[[NatsClient], Awaitable[None]]


class NatsLink:
    """A lazily kept NATS connection; ``on_connect`` callbacks subscribe once it is up."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.nc: NatsClient | None = None
        self._on_connect: list[OnConnect] = []
        self._task: asyncio.Task[None] | None = None
        self._buckets: dict[str, KeyValue] = {}

    def on_connect(self, callback: OnConnect) -> None:
        self._on_connect.append(callback)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._connect_until_up(), name="nats-link")

    async def _connect_until_up(self) -> None:
        async def quiet(err: Exception) -> None:
            log.debug("nats: %s", err)

        warned = False
        while True:
            try:
                nc = await nats.connect(
                    self.url,
                    name="gateway",
                    connect_timeout=2,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=1,
                    error_cb=quiet,
                )
            except Exception as err:  # NoServersError, timeouts, refused connections
                if not warned:
                    log.warning("NATS at %s does not answer (%s): live views wait", self.url, err)
                    warned = True
                await asyncio.sleep(RETRY_SECONDS)
                continue
            for callback in self._on_connect:
                await callback(nc)
            self.nc = nc
            log.info("live views connected to NATS at %s", self.url)
            return

    @property
    def up(self) -> bool:
        return self.nc is not None and self.nc.is_connected

    async def bucket(self, name: str, ttl_seconds: float) -> KeyValue | None:
        """The JetStream key-value bucket ``name``, created when missing; None while NATS
        is down."""
        if not self.up or self.nc is None:
            return None
        if name in self._buckets:
            return self._buckets[name]
        js = self.nc.jetstream()
        try:
            kv = await js.key_value(name)
        except nats.js.errors.BucketNotFoundError:
            try:
                kv = await js.create_key_value(
                    bucket=name, ttl=ttl_seconds, history=1, storage=StorageType.MEMORY
                )
            except nats.js.errors.BadRequestError:  # created meanwhile by another replica
                kv = await js.key_value(name)
        self._buckets[name] = kv
        return kv

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await self.nc.drain()
            self.nc = None
        self._buckets.clear()


_LINKS: weakref.WeakKeyDictionary[Web, NatsLink] = weakref.WeakKeyDictionary()


def link_of(web: Web, url: str) -> NatsLink:
    """The one link of this gateway (its ``Web``): live and presence share it."""
    link = _LINKS.get(web)
    if link is None:
        link = _LINKS[web] = NatsLink(url)
    return link
