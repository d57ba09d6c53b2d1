"""``python -m services.notify``: the notification service process."""

from __future__ import annotations

import asyncio
import logging
import os

from services.common.grpc_server import run_until_signal
from services.common.settings import Settings
from services.notify.app import NotifyApp

log = logging.getLogger("services.notify")


async def serve(settings: Settings) -> None:
    """Run notify until SIGINT/SIGTERM, then stop it cleanly."""
    app = NotifyApp(settings)
    try:
        await app.start()
        await run_until_signal(app.consumer_task)
    finally:
        await app.stop()


def main() -> None:
    """Entry point: settings from the ``HELPDESK_*`` environment."""
    logging.basicConfig(
        level=os.environ.get("HELPDESK_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    asyncio.run(serve(Settings.from_env()))


if __name__ == "__main__":
    main()
