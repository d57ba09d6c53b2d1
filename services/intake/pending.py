"""The loop that turns what intake stored into tickets: a pass over the pending rows, then
a wait for the next arrival (or ``idle`` seconds) when nothing was left."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


async def drain_forever(
    process_pending: Callable[[], Awaitable[bool]], wake: asyncio.Event, idle: float, what: str
) -> None:
    """Run ``process_pending`` until cancelled; a failing pass is logged and retried."""
    while True:
        try:
            busy = await process_pending()
        except Exception:
            log.exception("%s processing pass failed", what)
            busy = False
        if not busy:
            wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=idle)
