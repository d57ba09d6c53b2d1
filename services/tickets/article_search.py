"""``KnowledgeService.SearchArticles`` / ``SuggestArticles``: full-text search of the
articles the caller may read.

The words are matched in the article's entry of ``search_index`` (its title above its
body, tags and product) and the hits joined, in the same query, to the articles the
caller may read (``article_store.readable``), so ranking and paging never see one they
may not. The caller's text is cut into words by ``search_index.words``: quotes, ``*``,
``NEAR(`` or SQL in it are never syntax to the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from helpdesk.v1 import knowledge_pb2 as kpb
from services.common.access import Principal
from services.tickets import models as m
from services.tickets import search_index
from services.tickets.article_markdown import plain_text
from services.tickets.article_store import PUBLISHED, articles_pb, readable

DEFAULT_PAGE = 20
MAX_PAGE = 50
DEFAULT_SUGGESTIONS = 3
MAX_SUGGESTIONS = 10
MAX_QUERY_CHARS = 500
# A ticket's text runs long: only so much of it is read for suggestions.
MAX_TICKET_TEXT = 5_000
# Suggestions ignore the shortest words ("la", "di", "a") when longer ones remain: on
# SQLite, which has no stop words, they would match nearly every article.
MIN_SUGGEST_WORD = 3


@dataclass(frozen=True)
class Filters:
    """What narrows a search besides what the caller may read."""

    product: str = ""
    locale: str = ""
    published_only: bool = False

    def apply(self, query: Select[Any]) -> Select[Any]:
        if self.product:
            query = query.where(m.Article.product == self.product)
        if self.locale:
            query = query.where(m.Article.locale == self.locale)
        if self.published_only:
            query = query.where(m.Article.status == PUBLISHED)
        return query


def suggestion_words(subject: str, description: str) -> list[str]:
    """The words a ticket being written is searched by: its subject's first."""
    found = search_index.words(f"{subject[:MAX_TICKET_TEXT]} {description[:MAX_TICKET_TEXT]}")
    longer = [w for w in found if len(w) >= MIN_SUGGEST_WORD]
    return longer or found


async def matching(
    session: AsyncSession,
    who: Principal,
    words: list[str],
    filters: Filters,
    size: int,
    *,
    any_word: bool,
) -> list[kpb.ArticleHit]:
    """The best ``size`` articles ``who`` may read matching ``words``, best first."""
    if not words:
        return []
    found = search_index.matches(
        search_index.dialect_of(session),
        words,
        search_index.ARTICLE,
        [search_index.PUBLIC],
        any_word,
    )
    query = select(m.Article, found.c.entry_id, found.c.score).join(
        found, found.c.ref_id == m.Article.id
    )
    query = filters.apply(readable(query, who)).order_by(
        found.c.score.desc(), m.Article.updated_at.desc(), m.Article.id.desc()
    )
    rows = (await session.execute(query.limit(size))).all()
    snippets = await search_index.snippets(session, [int(r[1]) for r in rows], words, any_word)
    articles = await articles_pb(session, [r[0] for r in rows], who)
    return [
        kpb.ArticleHit(
            article=article,
            snippet=search_index.snippet_pb(snippets.get(int(entry_id), [])),
            score=float(score),
        )
        for article, (_row, entry_id, score) in zip(articles, rows, strict=True)
    ]


async def recent(
    session: AsyncSession, who: Principal, filters: Filters, size: int
) -> list[kpb.ArticleHit]:
    """The most recently changed articles ``who`` may read (a search without words)."""
    query = filters.apply(readable(select(m.Article), who))
    rows = list(
        await session.scalars(
            query.order_by(m.Article.updated_at.desc(), m.Article.id.desc()).limit(size)
        )
    )
    articles = await articles_pb(session, rows, who)
    return [
        kpb.ArticleHit(
            article=article,
            snippet=search_index.snippet_pb(search_index.plain_snippet(plain_text(row.body))),
        )
        for article, row in zip(articles, rows, strict=True)
    ]
