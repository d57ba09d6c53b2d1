"""``python -m services.tickets.reindex``: rebuild the full-text index from the tables.

The index is written with every ticket, comment and article (``ticket_index``, the
knowledge service), so this is for an index made before a change of how text is indexed,
or restored from elsewhere. Tickets go in batches, one transaction each; on SQLite the
FTS5 table is rebuilt from ``search_entries`` as well. Safe to run while the services run:
each ticket's rows are rewritten whole, as a new comment would.
"""

from __future__ import annotations

import asyncio
import logging
import sys

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.common import db
from services.common.settings import Settings
from services.tickets import models as m
from services.tickets import search_index
from services.tickets.article_store import index_article
from services.tickets.ticket_index import index_ticket

log = logging.getLogger("helpdesk.reindex")
BATCH = 500


async def reindex(sessions: async_sessionmaker[AsyncSession], batch: int = BATCH) -> dict[str, int]:
    """Rewrite every ticket's and article's entries; how many of each."""
    done = {"tickets": 0, "articles": 0}
    last = 0
    while True:
        async with sessions() as session:
            rows = list(
                await session.scalars(
                    select(m.Ticket).where(m.Ticket.id > last).order_by(m.Ticket.id).limit(batch)
                )
            )
            if not rows:
                break
            for ticket in rows:
                await index_ticket(session, ticket)
            await session.commit()
        last = rows[-1].id
        done["tickets"] += len(rows)
    done["articles"] = await _reindex_articles(sessions)
    async with sessions() as session:
        if search_index.dialect_of(session) == "sqlite":
            await session.execute(text("INSERT INTO search_fts(search_fts) VALUES ('rebuild')"))
            await session.commit()
    return done


async def _reindex_articles(sessions: async_sessionmaker[AsyncSession]) -> int:
    count = 0
    async with sessions() as session:
        for article in list(await session.scalars(select(m.Article).order_by(m.Article.id))):
            await index_article(session, article)
            count += 1
        await session.commit()
    return count


async def _main() -> int:
    settings = Settings.from_env()
    engine = db.make_engine(settings.database_url_for("tickets"))
    try:
        done = await reindex(db.make_sessionmaker(engine))
    finally:
        await engine.dispose()
    print(f"reindexed {done['tickets']} tickets and {done['articles']} articles")
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    sys.exit(asyncio.run(_main()))
