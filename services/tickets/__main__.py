"""``python -m services.tickets``."""

import asyncio

from services.common import telemetry
from services.common.settings import Settings
from services.tickets.app import serve

if __name__ == "__main__":
    telemetry.start("tickets")
    asyncio.run(serve(Settings.from_env()))
