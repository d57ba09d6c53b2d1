"""What the mail scenarios check: each marked mail became exactly one ticket or comment,
and intake left no stored mail unprocessed."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from helpdesk.v1 import tickets_pb2 as tpb
from services.common.settings import async_database_url
from services.intake.models import InboundMessage
from tests.support import eventually
from tests.system.harness import System

MARK = re.compile(r"\bREL-(\d+)\b")


async def marks_found(sut: System, organization_id: int = 0) -> Counter[int]:
    """How many tickets and comments carry each ``REL-<n>`` mark."""
    tickets = sut.tickets()
    found: Counter[int] = Counter()
    page = ""
    while True:
        listed = await tickets.ListTickets(
            tpb.ListTicketsRequest(organization_id=organization_id, page_size=500, page_token=page),
            metadata=sut.metadata,
        )
        for t in listed.tickets:
            found.update(int(m) for m in MARK.findall(t.description))
            comments = await tickets.ListComments(
                tpb.ListCommentsRequest(ticket_id=t.id, include_internal=True),
                metadata=sut.metadata,
            )
            for c in comments.comments:
                found.update(int(m) for m in MARK.findall(c.body))
        page = listed.next_page_token
        if not page:
            return found


def _intake_url(data_dir: Path, database_url: str) -> str:
    if database_url.startswith("postgres"):
        return async_database_url(database_url)
    return f"sqlite+aiosqlite:///{data_dir / 'intake.db'}"


async def intake_statuses(data_dir: Path, database_url: str) -> Counter[str]:
    """The stored mails by status, read from intake's own table."""
    engine = create_async_engine(_intake_url(data_dir, database_url))
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(InboundMessage.status, func.count()).group_by(InboundMessage.status)
            )
            return Counter({str(status): int(n) for status, n in rows})
    finally:
        await engine.dispose()


async def settled_statuses(data_dir: Path, database_url: str, timeout: float) -> Counter[str]:
    """The stored mails by status once none is left ``RECEIVED`` (a mail's ticket can be
    visible a moment before intake records the outcome); fails after ``timeout`` seconds."""

    async def settled() -> Counter[str] | None:
        statuses = await intake_statuses(data_dir, database_url)
        return statuses if statuses.get("RECEIVED", 0) == 0 else None

    found: Counter[str] = await eventually(settled, timeout=timeout, every=1)
    return found


async def statuses_of(data_dir: Path, database_url: str, message_ids: list[str]) -> dict[str, str]:
    """The status of each stored mail, by its Message-ID."""
    keys = {f"mid:{m}": m for m in message_ids}
    engine = create_async_engine(_intake_url(data_dir, database_url))
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(InboundMessage.dedup_key, InboundMessage.status).where(
                    InboundMessage.dedup_key.in_(list(keys))
                )
            )
            return {keys[str(k)]: str(s) for k, s in rows}
    finally:
        await engine.dispose()
