"""``python -m bench.bare_smtp PORT DB_PATH``: the mail-accept baseline, an aiosmtpd server
that writes each raw message as a row of a SQLite table through the help desk's own driver
(SQLAlchemy async over aiosqlite, ``services.common.db.make_engine``: WAL, ``synchronous=
NORMAL``, writers queued in-process) and commits before answering ``250``.

It parses nothing: the help desk's listener parses no body either before ``250``; what it does
beyond this (its header-block read for the dedup key in a worker thread, the lookup of that
key, the span) is its own cost, measured against this."""

from __future__ import annotations

import asyncio
import signal
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP
from sqlalchemy import JSON, DateTime, LargeBinary, String
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common import db
from services.intake.smtp import MAX_MESSAGE_BYTES


class Base(DeclarativeBase):
    pass


class BareMessage(Base):
    __tablename__ = "bare_messages"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    mail_from: Mapped[str] = mapped_column(String(320))
    rcpt_to: Mapped[list[str]] = mapped_column(JSON)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class StoreOnly:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        if not isinstance(raw, bytes):
            raw = str(raw).encode("utf-8", "surrogateescape")
        async with self.sessions() as db_session:
            db_session.add(
                BareMessage(
                    id=uuid.uuid4().hex,
                    mail_from=str(envelope.mail_from or "")[:320],
                    rcpt_to=list(envelope.rcpt_tos),
                    raw=raw,
                    received_at=datetime.now(UTC),
                )
            )
            await db_session.commit()
        self.count += 1
        return "250 2.0.0 OK"


async def serve(port: int, path: Path) -> None:
    engine = db.make_engine(f"sqlite+aiosqlite:///{path}")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    handler = StoreOnly(db.make_sessionmaker(engine))
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
    await engine.dispose()
    print(f"bare-smtp: stored {handler.count} messages", flush=True)


if __name__ == "__main__":
    db_path = Path(sys.argv[2])
    for stale in (db_path, Path(f"{db_path}-wal"), Path(f"{db_path}-shm")):
        stale.unlink(missing_ok=True)
    asyncio.run(serve(int(sys.argv[1]), db_path))
