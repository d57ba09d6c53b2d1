"""``python -m services.notify``: the notification service process."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from services.common import telemetry
from services.common.grpc_server import run_until_signal
from services.common.settings import Settings
from services.notify.app import NotifyApp

log = logging.getLogger("services.notify")


async def serve(settings: Settings) -> None:
    """Run notify until SIGINT/SIGTERM, then stop it cleanly."""
    app = NotifyApp(settings)

    async def run() -> None:
        await app.start()  # NOT_SERVING until the database and NATS answer
        tasks = app.consumer_tasks
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task.done():
                task.result()  # a consumer loop that ends is an error

    body = asyncio.create_task(run())
    try:
        await run_until_signal(body)
    finally:
        body.cancel()  # SIGTERM while still starting
        with contextlib.suppress(BaseException):
            await body
        await app.stop()


def main() -> None:
    """Entry point: settings from the ``HELPDESK_*`` environment."""
    telemetry.start("notify")
    asyncio.run(serve(Settings.from_env()))


if __name__ == "__main__":
    main()
