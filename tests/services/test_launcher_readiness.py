"""The launcher's HTTP readiness wait (the gateway's ``/readyz``) against a real HTTP server
in the test: 503 until ready, then 200; a child that dies or never gets ready fails with
where to look."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import web

from services.common.embedded import free_port
from services.launcher.children import Child
from services.launcher.readiness import ChildDied, StartupError, http_status, wait_http

pytestmark = pytest.mark.timeout(60)


class Readyz:
    """``GET /readyz``: 503 for the first ``not_ready`` requests, then 200."""

    def __init__(self, not_ready: int) -> None:
        self.not_ready = not_ready
        self.calls = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.calls += 1
        if self.calls <= self.not_ready:
            return web.Response(status=503, text="not ready\n")
        return web.Response(text="ready\n")


@contextlib.asynccontextmanager
async def serving(readyz: Readyz) -> AsyncIterator[str]:
    """The URL of ``readyz`` on a free port, while the block runs."""
    app = web.Application()
    app.router.add_get("/readyz", readyz.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/readyz"
    finally:
        await runner.cleanup()


NEVER = 10**9


def child(tmp_path: Path, code: str) -> Child:
    log = tmp_path / "gateway.log"
    log.write_text("the gateway's last words\n")
    proc = subprocess.Popen([sys.executable, "-c", code])
    return Child("gateway", proc, log)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Child]:
    c = child(tmp_path, "import time; time.sleep(60)")
    yield c
    c.proc.kill()
    c.proc.wait()


async def test_ready_once_it_answers_200(running: Child) -> None:
    readyz = Readyz(not_ready=3)
    async with serving(readyz) as url:
        await wait_http(running, url, within=20)
        assert readyz.calls == 4
        assert await http_status(url) == "200"


async def test_nothing_listening_is_not_an_answer() -> None:
    status = await http_status(f"http://127.0.0.1:{free_port()}/readyz", deadline=1)
    assert status != "200" and not status.isdigit()


async def test_never_ready_fails_naming_the_url_and_the_log(running: Child) -> None:
    async with serving(Readyz(not_ready=NEVER)) as url:
        with pytest.raises(StartupError) as caught:
            await wait_http(running, url, within=1)
    message = str(caught.value)
    assert url in message and "503" in message and "gateway.log" in message
    assert caught.value.log_path == running.log_path


async def test_a_child_that_dies_is_reported(tmp_path: Path) -> None:
    dead = child(tmp_path, "raise SystemExit(3)")
    dead.proc.wait()
    async with serving(Readyz(not_ready=NEVER)) as url:
        with pytest.raises(ChildDied) as caught:
            await wait_http(dead, url, within=20)
    assert caught.value.child is dead
