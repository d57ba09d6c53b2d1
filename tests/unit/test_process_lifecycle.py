"""``Lifecycle``: what a process opened closes in reverse order when SIGTERM arrives,
a failing close never keeps the next from running, and a body may be given time to end."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from services.common.lifecycle import Lifecycle


async def _sigterm_soon(delay: float = 0.05) -> None:
    await asyncio.sleep(delay)
    os.kill(os.getpid(), signal.SIGTERM)


async def test_sigterm_runs_first_then_the_closes_in_reverse_order() -> None:
    order: list[str] = []

    async def close(what: str) -> None:
        order.append(what)

    async def background() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            order.append("task cancelled")

    async def body() -> None:
        await asyncio.Event().wait()

    async with Lifecycle("test") as life:
        life.on_close(lambda: close("engine"))
        life.on_close(lambda: close("server"))
        life.task(background(), "background")
        asyncio.get_running_loop().create_task(_sigterm_soon())
        await life.run(body(), first=lambda: close("not serving"))
        assert order == ["not serving"]
    assert order == ["not serving", "task cancelled", "server", "engine"]


async def test_a_failing_close_is_logged_and_the_next_still_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    closed: list[str] = []

    async def ok() -> None:
        closed.append("engine")

    async def broken() -> None:
        raise RuntimeError("relay gone")

    async with Lifecycle("test") as life:
        life.on_close(ok)
        life.on_close(broken, what="mailer")
    assert closed == ["engine"]
    assert "closing mailer failed" in caplog.text


async def test_a_close_that_hangs_is_given_up_after_its_timeout() -> None:
    closed: list[str] = []

    async def hangs() -> None:
        await asyncio.Event().wait()

    async def ok() -> None:
        closed.append("engine")

    async with Lifecycle("test") as life:
        life.on_close(ok)
        life.on_close(hangs, timeout=0.05)
    assert closed == ["engine"]


async def test_a_body_that_fails_is_raised_after_the_closes() -> None:
    closed: list[str] = []

    async def close() -> None:
        closed.append("engine")

    async def body() -> None:
        raise ValueError("no database")

    with pytest.raises(ValueError, match="no database"):
        async with Lifecycle("test") as life:
            life.on_close(close)
            await life.run(body())
    assert closed == ["engine"]


async def test_drain_lets_the_body_finish_by_itself() -> None:
    finished: list[str] = []
    stop = asyncio.Event()

    async def body() -> None:
        await stop.wait()
        await asyncio.sleep(0.05)  # the requests in flight
        finished.append("requests done")

    async def finish() -> None:
        stop.set()

    async with Lifecycle("test") as life:
        asyncio.get_running_loop().create_task(_sigterm_soon())
        await life.run(body(), first=finish, drain=5)
    assert finished == ["requests done"]


async def test_without_drain_the_body_is_cancelled() -> None:
    finished: list[str] = []

    async def body() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            finished.append("cancelled")
            raise

    async with Lifecycle("test") as life:
        asyncio.get_running_loop().create_task(_sigterm_soon())
        await life.run(body())
    assert finished == ["cancelled"]
