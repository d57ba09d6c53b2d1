"""``python -m services.gateway``: the web gateway process."""

from __future__ import annotations

import asyncio
import logging
import os

from services.common.settings import Settings
from services.gateway.server import serve


def main() -> None:
    """Entry point: settings from the ``HELPDESK_*`` environment."""
    logging.basicConfig(
        level=os.environ.get("HELPDESK_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    asyncio.run(serve(Settings.from_env()))


if __name__ == "__main__":
    main()
