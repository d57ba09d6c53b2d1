"""``python -m bench.bare_smtp PORT``: the mail baseline, an SMTP server that only accepts and
parses each message (with intake's own parser) before answering ``250``."""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any

from aiosmtpd.smtp import SMTP

from services.intake import mailparse
from services.intake.smtp import MAX_MESSAGE_BYTES


class ParseOnly:
    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        if not isinstance(raw, bytes):
            raw = str(raw).encode("utf-8", "surrogateescape")
        mailparse.parse(raw)
        self.count += 1
        return "250 2.0.0 OK"


async def serve(port: int) -> None:
    handler = ParseOnly()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(
            handler, data_size_limit=MAX_MESSAGE_BYTES, hostname="bare", enable_SMTPUTF8=True
        ),
        host="127.0.0.1",
        port=port,
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
