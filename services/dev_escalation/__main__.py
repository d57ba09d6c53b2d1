"""``python -m services.dev_escalation``."""

import asyncio
import logging

from services.common.settings import Settings
from services.dev_escalation.app import serve

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(serve(Settings.from_env()))
