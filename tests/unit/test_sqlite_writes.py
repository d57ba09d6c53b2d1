"""SQLite writers of one process take turns in SqliteWriteQueue (services.common.db)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import ForeignKey, Integer, String, event, select, text, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common import db

pytestmark = pytest.mark.unit

# Short enough for a test to see "database is locked", long enough for a loaded machine.
QUICK_TIMEOUT_S = 0.5


class Base(DeclarativeBase):
    pass


class Org(Base):
    __tablename__ = "org"
    id: Mapped[int] = mapped_column(primary_key=True)
    tickets: Mapped[int] = mapped_column(Integer, default=0)


class Ticket(Base):
    __tablename__ = "ticket"
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("org.id"))
    subject: Mapped[str] = mapped_column(String(200))


async def _create(engine: AsyncEngine) -> async_sessionmaker[db.AsyncSession]:
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
        await conn.execute(Org.__table__.insert(), [{"id": 1, "tickets": 0}])
    return db.make_sessionmaker(engine)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """What every service gets: make_engine on a file database."""
    made = db.make_engine(f"sqlite+aiosqlite:///{tmp_path / 'writes.db'}")
    yield made
    await made.dispose()


@pytest.fixture
async def quick(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """make_engine's SQLite set-up with a queue that gives up within a test's patience."""
    made = create_async_engine(
        f"sqlite+aiosqlite:///{tmp_path / 'quick.db'}", connect_args={"timeout": 0.1}
    )

    @event.listens_for(made.sync_engine, "connect")
    def _wal(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        dbapi_conn.cursor().execute("PRAGMA journal_mode=WAL")

    db.SqliteWriteQueue(QUICK_TIMEOUT_S).install(made)
    yield made
    await made.dispose()


async def _new_ticket(sessions: async_sessionmaker[db.AsyncSession], subject: str) -> None:
    """Ticket creation's shape: read, insert, then update another row, in one transaction."""
    async with sessions() as session, session.begin():
        org = await session.get(Org, 1)
        assert org is not None
        session.add(Ticket(org_id=org.id, subject=subject))
        await session.flush()
        await session.execute(update(Org).where(Org.id == 1).values(tickets=Org.tickets + 1))


async def _count(sessions: async_sessionmaker[db.AsyncSession]) -> tuple[int, int]:
    async with sessions() as session:
        tickets = await session.scalar(text("SELECT count(*) FROM ticket"))
        counter = await session.scalar(select(Org.tickets).where(Org.id == 1))
    return int(tickets or 0), int(counter or 0)


async def test_many_concurrent_writers_all_commit(engine: AsyncEngine) -> None:
    sessions = await _create(engine)
    await asyncio.gather(*(_new_ticket(sessions, f"t{i}") for i in range(200)))
    assert await _count(sessions) == (200, 200)


async def test_a_savepoint_rolls_back_alone_and_the_transaction_commits(
    engine: AsyncEngine,
) -> None:
    sessions = await _create(engine)
    async with sessions() as session, session.begin():
        session.add(Ticket(org_id=1, subject="kept"))
        await session.flush()
        nested = await session.begin_nested()
        session.add(Ticket(org_id=1, subject="undone"))
        await session.flush()
        await nested.rollback()
        async with session.begin_nested():  # a savepoint as the first write works too
            session.add(Ticket(org_id=1, subject="kept too"))
    async with sessions() as session:
        subjects = (await session.scalars(select(Ticket.subject).order_by(Ticket.id))).all()
    assert subjects == ["kept", "kept too"]
    await _new_ticket(sessions, "after")  # the lock was given back


async def test_a_second_writer_waits_in_the_queue_for_the_first_to_commit(
    quick: AsyncEngine,
) -> None:
    sessions = await _create(quick)
    async with sessions() as first:
        first.add(Ticket(org_id=1, subject="first"))
        await first.flush()
        second = asyncio.create_task(_new_ticket(sessions, "second"))
        # Past SQLite's busy timeout (0.1 s): only the queue can have kept it waiting.
        await asyncio.sleep(0.3)
        assert not second.done()
        async with sessions() as reader:  # readers never queue behind a writer
            assert await reader.scalar(select(Org.tickets)) == 0
        await first.commit()
        await second
    assert await _count(sessions) == (2, 1)


async def test_a_writer_queued_past_the_timeout_gets_database_is_locked(
    quick: AsyncEngine,
) -> None:
    sessions = await _create(quick)
    async with sessions() as first:
        first.add(Ticket(org_id=1, subject="held"))
        await first.flush()
        started = time.monotonic()
        with pytest.raises(OperationalError, match="database is locked"):
            await _new_ticket(sessions, "too late")
        assert time.monotonic() - started < 10 * QUICK_TIMEOUT_S
        await first.rollback()
    await _new_ticket(sessions, "after the rollback")
    assert await _count(sessions) == (1, 1)


async def test_a_cancelled_waiter_does_not_keep_the_lock(quick: AsyncEngine) -> None:
    sessions = await _create(quick)
    async with sessions() as first:
        first.add(Ticket(org_id=1, subject="first"))
        await first.flush()
        waiter = asyncio.create_task(_new_ticket(sessions, "cancelled"))
        await asyncio.sleep(0.1)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        await first.commit()
    await _new_ticket(sessions, "next")
    assert await _count(sessions) == (2, 1)


async def test_a_failed_write_gives_the_lock_back(quick: AsyncEngine) -> None:
    sessions = await _create(quick)
    with pytest.raises(OperationalError):
        async with sessions() as session, session.begin():
            session.add(Ticket(org_id=1, subject="ok"))
            await session.flush()
            await session.execute(text("INSERT INTO missing VALUES (1)"))
    await _new_ticket(sessions, "next")
    assert await _count(sessions) == (1, 1)


async def test_autocommit_writes_hold_nothing(quick: AsyncEngine) -> None:
    sessions = await _create(quick)
    async with quick.connect() as conn:
        auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await auto.execute(text("INSERT INTO ticket (org_id, subject) VALUES (1, 'auto')"))
        await _new_ticket(sessions, "meanwhile")  # would time out if the lock were held
    assert await _count(sessions) == (2, 1)
