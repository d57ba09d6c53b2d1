"""Async SQLAlchemy engines and Alembic migrations, one store per service."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any, cast

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import AdaptedConnection, Connection, ExecutionContext
from sqlalchemy.engine.interfaces import DBAPIConnection, DBAPICursor
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.ext.asyncio import AsyncSession as AsyncSession
from sqlalchemy.pool import ConnectionPoolEntry

# How long a SQLite writer waits before "database is locked": for a writer of another
# process in SQLite's busy handler, for one of this process in SqliteWriteQueue.
SQLITE_BUSY_TIMEOUT_S = 30.0
# The statements before which pysqlite opens its transaction (reads before the first of
# them run outside one), so a connection writes from the first of them to the commit.
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


class SqliteWriteQueue:
    """Writers through one engine take turns in the process instead of inside SQLite.

    SQLite lets one connection write at a time; the others retry in its busy handler,
    sleeping up to 100 ms between tries, so under load the lock sits free while they
    sleep and an unlucky writer starves until the busy timeout fails it. Here a
    connection takes an asyncio lock before its transaction's first write and gives it
    back at commit or rollback, so this process's writers go in order of arrival and a
    queued one starts as soon as the previous one ends. The lock only orders work:
    SQLite's own locking still keeps the data safe, and writers of other processes
    (tools, benches) still meet this one in the busy handler.
    """

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._lock = asyncio.Lock()
        self._holder: object | None = None  # the DBAPI connection between write and end

    async def _acquire(self) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                await self._lock.acquire()
        except TimeoutError:
            # What SQLite raises when its busy timeout runs out: one error for callers.
            raise sqlite3.OperationalError("database is locked") from None

    def before_statement(self, conn: Connection, statement: str) -> None:
        """Wait for this process's other writers before ``conn``'s first write."""
        if not statement.lstrip()[:7].upper().startswith(_WRITES):
            return
        dbapi = conn.connection.dbapi_connection
        if dbapi is None or dbapi is self._holder:
            return
        if conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
            return  # each statement commits by itself: no transaction to hold through
        # Events are synchronous; run_async awaits on the loop from SQLAlchemy's greenlet.
        cast(AdaptedConnection, dbapi).run_async(lambda _driver: self._acquire())
        self._holder = dbapi

    def release(self, dbapi: object | None) -> None:
        """The transaction on ``dbapi`` has ended, or the connection is gone."""
        if dbapi is not None and dbapi is self._holder:
            self._holder = None
            self._lock.release()

    def install(self, engine: AsyncEngine) -> None:
        sync = engine.sync_engine

        @event.listens_for(sync, "before_cursor_execute")
        def _statement(
            conn: Connection,
            _cursor: DBAPICursor,
            statement: str,
            _parameters: Any,
            _context: ExecutionContext | None,
            _executemany: bool,
        ) -> None:
            self.before_statement(conn, statement)

        @event.listens_for(sync, "commit")
        @event.listens_for(sync, "rollback")
        def _end(conn: Connection) -> None:
            # Fired just before the DBAPI commit or rollback. The next writer's statement
            # leaves a loop turn later, nearly always after it; if not, SQLite's busy
            # handler covers the overlap. An invalidated connection was released below.
            if not conn.invalidated:
                self.release(conn.connection.dbapi_connection)

        @event.listens_for(sync.pool, "checkin")
        @event.listens_for(sync.pool, "invalidate")
        def _gone(dbapi: DBAPIConnection | None, _entry: ConnectionPoolEntry, *_: Any) -> None:
            # Back in the pool (rolled back on return) or closed: no transaction is left.
            self.release(dbapi)


def make_engine(url: str) -> AsyncEngine:
    """An engine tuned for the backend: SQLite in WAL mode with writers queued in-process."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        SqliteWriteQueue(SQLITE_BUSY_TIMEOUT_S).install(engine)
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(migrations_dir: Path, url: str, version_table: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.set_main_option("version_table", version_table)
    return cfg


async def upgrade(migrations_dir: Path, url: str, version_table: str) -> None:
    """Bring one service's tables to the latest revision (idempotent)."""
    cfg = alembic_config(migrations_dir, url, version_table)
    await asyncio.to_thread(command.upgrade, cfg, "head")
