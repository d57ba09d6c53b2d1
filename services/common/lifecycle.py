"""One life cycle for every process: what is opened registers its close right there, and
the closes run in reverse order when the process stops.

    async with Lifecycle("tickets") as life:
        engine = life.closing(db.make_engine(url), engine.dispose)  # closed last
        server = ...; await server.start(); life.on_close(lambda: server.stop(5))
        life.task(watch.run(), "dependency watch")                   # cancelled first
        await life.run(body(), first=server.begin_shutdown)

``run`` waits for SIGINT/SIGTERM (or for ``body`` to fail), calls ``first`` at once (a
server turns NOT_SERVING before anything else stops), cancels ``body``, and leaves the
``async with`` to close the rest. A close that fails is logged and never keeps the next one
from running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from types import TracebackType
from typing import Any, TypeVar

from services.common.grpc_server import run_until_signal
from services.common.health import HealthPort, WorkerRunner

log = logging.getLogger(__name__)

T = TypeVar("T")
Close = Callable[[], Awaitable[object]]


class Lifecycle:
    """The resources of one process, closed in reverse order of opening."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> Lifecycle:
        await self._stack.__aenter__()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        err: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        return await self._stack.__aexit__(kind, err, tb)

    def on_close(self, close: Close, *, timeout: float | None = None, what: str = "") -> None:
        """Await ``close()`` when the process stops (at most ``timeout`` seconds)."""
        label = what or getattr(close, "__qualname__", repr(close))

        async def run() -> None:
            try:
                if timeout is None:
                    await close()
                else:
                    await asyncio.wait_for(close(), timeout)
            except Exception as err:  # the next close still runs
                log.warning("%s: closing %s failed: %r", self.name, label, err)

        self._stack.push_async_callback(run)

    def closing(self, resource: T, close: Close, *, timeout: float | None = None) -> T:
        """``resource``, with ``close`` registered: ``engine = life.closing(make(), ...)``."""
        self.on_close(close, timeout=timeout, what=type(resource).__name__)
        return resource

    def task(self, work: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]:
        """A background task, cancelled and awaited when the process stops."""
        return self.cancelling(asyncio.create_task(work, name=name))

    def cancelling(self, task: asyncio.Task[T]) -> asyncio.Task[T]:
        """``task`` (started elsewhere), cancelled and awaited when the process stops."""

        async def stop() -> None:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task

        self._stack.push_async_callback(stop)
        return task

    async def health_port(self, port: HealthPort | None) -> None:
        """Listen on a worker's health port (NOT_SERVING until it polls) until the end."""
        if port is not None:
            await port.start()
            self.on_close(port.stop)

    def worker(self, runner: WorkerRunner) -> asyncio.Task[None]:
        """Start a Temporal worker polling; when the process stops: NOT_SERVING on its
        health port, in-flight tasks finish (its graceful timeout), the worker stops."""
        self._stack.push_async_callback(runner.shutdown)
        return runner.start()

    async def run(
        self,
        body: Coroutine[Any, Any, object],
        *,
        first: Close | None = None,
        drain: float = 0.0,
    ) -> None:
        """Run ``body`` until SIGINT/SIGTERM or until it fails (which is raised), then
        ``first`` (NOT_SERVING, or a server told to finish), then give ``body`` ``drain``
        seconds to end by itself before cancelling it; the rest closes on leaving."""
        task = asyncio.create_task(body, name=f"{self.name} body")
        try:
            await run_until_signal(task)
        finally:
            if first is not None:
                with contextlib.suppress(Exception):
                    await first()
            if drain > 0 and not task.done():
                await asyncio.wait([task], timeout=drain)
            task.cancel()  # still starting, or waiting on what the closes stop
            with contextlib.suppress(BaseException):
                await task
