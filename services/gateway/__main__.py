"""``python -m services.gateway``: the web gateway process."""

from __future__ import annotations

import asyncio

from services.common import telemetry
from services.common.settings import Settings
from services.gateway.server import serve


def main() -> None:
    """Entry point: settings from the ``HELPDESK_*`` environment."""
    telemetry.start("gateway")
    asyncio.run(serve(Settings.from_env()))


if __name__ == "__main__":
    main()
