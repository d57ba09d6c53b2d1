"""The bare activity that tells the bench it ran: ``bare_noop`` publishing one JetStream
message (``DONE_SUBJECT`` on stream ``DONE_STREAM``) with its workflow's ID and the wall
clock, as the help desk's recording activity publishes its event. The bench counts and
times the bare workflows by these messages, as it does the help desk's by their events."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

import nats
from nats.js.api import StreamConfig
from nats.js.errors import NotFoundError
from temporalio import activity

DONE_STREAM = "BAREDONE"
DONE_SUBJECT = "bench.bare.done"


class BarePublisher:
    def __init__(self, nc: Any) -> None:
        self.nc = nc
        self.js = nc.jetstream()

    @classmethod
    async def connect(cls, url: str) -> BarePublisher:
        publisher = cls(await nats.connect(url, max_reconnect_attempts=-1))
        try:
            await publisher.js.stream_info(DONE_STREAM)
        except NotFoundError:
            await publisher.js.add_stream(StreamConfig(name=DONE_STREAM, subjects=[DONE_SUBJECT]))
        return publisher

    @activity.defn(name="bare_noop")
    async def done(self, label: str) -> str:
        info = activity.info()
        body = {"workflow_id": info.workflow_id, "at": datetime.now(UTC).isoformat()}
        await self.js.publish(
            DONE_SUBJECT,
            json.dumps(body).encode(),
            headers={"Nats-Msg-Id": f"{info.workflow_id}:{info.activity_id}"},
            timeout=10,
        )
        return label

    async def close(self) -> None:
        await self.nc.drain()


class DoneWatch:
    """The bench's side: when each bare workflow's message first arrived (monotonic), and
    the activity's wall clock then."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.occurred: dict[str, datetime] = {}  # the activity's wall clock
        self._waiting: dict[str, asyncio.Future[float]] = {}
        self._nc: Any = None

    async def start(self, url: str) -> None:
        self._nc = await nats.connect(url)
        await self._nc.subscribe(DONE_SUBJECT, cb=self._on_done)

    async def _on_done(self, msg: Any) -> None:
        body = json.loads(msg.data)
        wid = str(body["workflow_id"])
        if wid not in self.at and body.get("at"):
            self.occurred[wid] = datetime.fromisoformat(str(body["at"]))
        at = self.at.setdefault(wid, time.monotonic())
        waiter = self._waiting.pop(wid, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(at)

    async def wait(self, wid: str, timeout: float = 120) -> float:
        """When workflow ``wid``'s message arrived (monotonic), waiting for it if need be."""
        if wid in self.at:
            return self.at[wid]
        waiter = self._waiting.setdefault(wid, asyncio.get_running_loop().create_future())
        return await asyncio.wait_for(asyncio.shield(waiter), timeout)

    def count(self, prefix: str) -> int:
        """How many workflows whose ID starts with ``prefix`` have said they ran."""
        return sum(1 for wid in self.at if wid.startswith(prefix))

    async def close(self) -> None:
        if self._nc is not None:
            await self._nc.close()
