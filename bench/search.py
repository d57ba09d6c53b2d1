"""The ``search`` scenario's corpus and its bare query: the tickets of ``list_tickets``
(subjects drawn from a desk's usual problems) indexed as the tickets service indexes them,
plus articles, searched over gRPC (``TicketService.SearchTickets``) and with the engine's
own query through the same driver (FTS5 ``MATCH`` ranked by ``bm25`` with ``snippet``;
PostgreSQL ``@@`` ranked by ``ts_rank_cd`` with ``ts_headline``)."""

from __future__ import annotations

import random
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import insert, select, text

from services.common import db
from services.common.settings import async_database_url
from services.tickets import models as m
from services.tickets.search_index import fts5_query, words

PROBLEMS = (
    "la stampante non stampa",
    "la stampa della fattura non parte",
    "il gestionale si blocca all'avvio",
    "licenza scaduta del programma",
    "backup notturno non completato",
    "la posta elettronica non arriva",
    "password dimenticata del portale",
    "il server di rete è lento",
    "errore di connessione al database",
    "aggiornamento del software fallito",
    "il lettore di codici a barre non legge",
    "la fattura elettronica è stata scartata",
    "il registratore di cassa non si accende",
    "il monitor resta nero",
    "la VPN non si collega da casa",
    "il magazzino non scarica le giacenze",
    "report mensile con importi sbagliati",
    "il certificato del sito è scaduto",
    "la scansione dei documenti non funziona",
    "il telefono VoIP non squilla",
)
PLACES = (
    "in ufficio",
    "in amministrazione",
    "in magazzino",
    "al punto vendita",
    "in reparto produzione",
    "nella sede di Milano",
    "nella sede di Roma",
    "sul portatile del direttore",
    "dopo l'aggiornamento",
    "da questa mattina",
)
QUERIES = (
    "stampanti",
    "fattura scartata",
    "licenza scaduta",
    "backup",
    "vpn casa",
    "monitor nero",
    "giacenze magazzino",
    "certificato scaduto",
)
PAGE = 20


def subject_for(k: int) -> str:
    """A ticket's subject: one of the usual problems, somewhere."""
    return f"{PROBLEMS[k % len(PROBLEMS)].capitalize()} {PLACES[(k // 7) % len(PLACES)]}"


async def index_corpus(url: str, articles: int) -> int:
    """Index every ticket's public part as the tickets service does, and add ``articles``
    published articles (with their entries); returns the number of entries written."""
    engine = db.make_engine(async_database_url(url))
    now = datetime.now(UTC)
    rng = random.Random(7)
    written = 0
    try:
        last = 0
        while True:
            async with engine.begin() as conn:
                rows = (
                    await conn.execute(
                        select(m.Ticket.id, m.Ticket.subject, m.Ticket.description)
                        .where(m.Ticket.id > last)
                        .order_by(m.Ticket.id)
                        .limit(5_000)
                    )
                ).all()
                if not rows:
                    break
                await conn.execute(
                    insert(m.SearchEntry),
                    [
                        {
                            "kind": "ticket",
                            "ref_id": r.id,
                            "part": "public",
                            "title": r.subject,
                            "body": r.description,
                            "locale": "it",
                            "updated_at": now,
                        }
                        for r in rows
                    ],
                )
            last = rows[-1].id
            written += len(rows)
        tag = uuid.uuid4().hex[:6]
        async with engine.begin() as conn:
            for i in range(articles):
                problem = rng.choice(PROBLEMS)
                article_id = (
                    await conn.execute(
                        insert(m.Article).returning(m.Article.id),
                        {
                            "request_key": f"bench:{tag}:{i}",
                            "title": f"Come risolvere: {problem}",
                            "body": f"Se {problem}, controllare i collegamenti e riavviare. ({i})",
                            "product": "",
                            "tags": [],
                            "locale": "it",
                            "visibility": "PUBLIC",
                            "status": "PUBLISHED",
                            "version": 1,
                            "author_id": 1,
                            "created_at": now,
                            "updated_at": now,
                            "published_at": now,
                            "deflections": 0,
                        },
                    )
                ).scalar_one()
                await conn.execute(
                    insert(m.SearchEntry),
                    {
                        "kind": "article",
                        "ref_id": int(article_id),
                        "part": "public",
                        "title": f"Come risolvere: {problem}",
                        "body": f"Se {problem}, controllare i collegamenti e riavviare.",
                        "locale": "it",
                        "updated_at": now,
                    },
                )
                written += 1
        if engine.dialect.name == "postgresql":
            # The planner's statistics, as autovacuum would have them on a live database
            # (without, it ignores the GIN index): for both the bare query and ours.
            async with engine.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(text("ANALYZE"))
    finally:
        await engine.dispose()
    return written


async def bare_search(url: str) -> Callable[[str], Awaitable[int]]:
    """The engine's own ranked query with snippets, first page, through the same driver."""
    if url.startswith("sqlite"):
        import aiosqlite

        conn = await aiosqlite.connect(url.split("///", 1)[1])
        sql = (
            "SELECT e.ref_id, -bm25(search_fts, 4.0, 1.0) AS score, "
            "snippet(search_fts, -1, char(1), char(2), '…', 24) "
            "FROM search_fts JOIN search_entries e ON e.id = search_fts.rowid "
            "WHERE search_fts MATCH ? AND e.kind = 'ticket' "
            f"ORDER BY score DESC LIMIT {PAGE}"
        )

        async def sqlite_query(query: str) -> int:
            async with conn.execute(sql, (fts5_query(words(query)),)) as cur:
                return len(list(await cur.fetchall()))

        sqlite_query.close = conn.close  # type: ignore[attr-defined]
        return sqlite_query
    pg = await asyncpg.connect(url)
    pg_sql = (
        "SELECT e.ref_id, ts_rank_cd(e.tsv, q) AS score, "
        "ts_headline('italian'::regconfig, e.title || ' — ' || e.body, q) "
        "FROM search_entries e, plainto_tsquery('italian', $1) q "
        f"WHERE e.tsv @@ q AND e.kind = 'ticket' ORDER BY score DESC LIMIT {PAGE}"
    )

    async def pg_query(query: str) -> int:
        return len(await pg.fetch(pg_sql, query))

    pg_query.close = pg.close  # type: ignore[attr-defined]
    return pg_query
