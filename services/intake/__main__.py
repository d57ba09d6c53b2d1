"""``python -m services.intake``."""

import asyncio

from services.common import telemetry
from services.common.settings import Settings
from services.intake.app import serve

if __name__ == "__main__":
    telemetry.start("intake")
    asyncio.run(serve(Settings.from_env()))
