"""``python -m services.dev_escalation``."""

import asyncio

from services.common import telemetry
from services.common.settings import Settings
from services.dev_escalation.app import serve

if __name__ == "__main__":
    telemetry.start("dev-escalation")
    asyncio.run(serve(Settings.from_env()))
