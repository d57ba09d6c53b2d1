"""``KnowledgeService``: the knowledge base's articles, written by the desk and read by
customers once published (``article_store`` says who reads what).

Every change (create, edit, publish, unpublish) is a new version in the same transaction
as the article and its full-text entry, so the history, the index and the article never
disagree. An edit names the version it was made from: if someone else changed the article
meanwhile the edit is ``ABORTED`` and changes nothing (the version's primary key makes
that hold for two edits at once as well).
"""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from helpdesk.v1 import knowledge_pb2 as kpb
from helpdesk.v1 import knowledge_pb2_grpc as kgrpc
from services.common.access import Principal, principal, scoped_key
from services.common.rpc_errors import (
    Context,
    RpcError,
    invalid,
    not_found,
    optional_text,
    precondition,
    require_id,
    require_text,
    rpc_method,
)
from services.tickets import article_search as search
from services.tickets import models as m
from services.tickets import search_index
from services.tickets.article_store import (
    DRAFT,
    MAX_NOTE,
    ORGANIZATIONS,
    PUBLISHED,
    Content,
    add_version,
    agent_names,
    article_pb,
    articles_pb,
    body_of,
    index_article,
    locale_of,
    organizations_by_article,
    organizations_of,
    product_of,
    readable,
    readable_row,
    set_organizations,
    tags_of,
    title_of,
    versions_pb,
    visibility_of,
)
from services.tickets.convert import optional_name
from services.tickets.paging import SortKey, bounded, fetch_ordered_page

MAX_KEY = 200
# Two publishes (or a publish and an edit) of one version at once: the loser reads again.
PUBLISH_ATTEMPTS = 3


def _stale(article_id: int, current: int, expected: int) -> RpcError:
    return RpcError(
        grpc.StatusCode.ABORTED,
        f"article {article_id} is at version {current}, not {expected}: "
        "someone else changed it meanwhile; reload it and edit again",
    )


async def _save(
    session: AsyncSession,
    row: m.Article,
    who: Principal,
    note: str,
    organization_ids: list[int] | None = None,
) -> bool:
    """Write the article as its version ``row.version`` (with its organisations when given,
    and its index entry) and commit. False, rolled back, when a concurrent call wrote that
    version (or the same request_id) first."""
    try:
        await session.flush()
        if organization_ids is not None:
            await set_organizations(session, row.id, organization_ids)
        add_version(session, row, who, row.updated_at, note)
        await session.flush()  # the version's key: where a concurrent change meets this one
        await index_article(session, row)
        await session.commit()
    except IntegrityError:
        await session.rollback()
        return False
    return True


def _filter_locale(value: str) -> str:
    """A locale to filter by: "" for any."""
    return locale_of(value) if value.strip() else ""


class KnowledgeServicer(kgrpc.KnowledgeServiceServicer):
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def _article(
        self, session: AsyncSession, article_id: int, who: Principal, versions: bool = False
    ) -> kpb.Article:
        """The article as stored now (never a copy this session read earlier)."""
        row = await session.scalar(
            select(m.Article)
            .where(m.Article.id == article_id)
            .execution_options(populate_existing=True)
        )
        if row is None:
            not_found(f"article {article_id}")
        orgs = await organizations_by_article(session, [row.id])
        out = article_pb(row, orgs[row.id], await agent_names(session, [row.author_id]), who)
        if versions:
            out.versions.extend(await versions_pb(session, row.id))
        return out

    async def _content(self, session: AsyncSession, request: kpb.CreateArticleRequest) -> Content:
        visibility = visibility_of(request.visibility, required=True)
        return Content(
            title=title_of(request.title),
            body=body_of(request.body),
            product=product_of(request.product),
            tags=tags_of(request.tags),
            locale=locale_of(request.locale),
            visibility=visibility,
            organization_ids=await organizations_of(session, request.organization_ids, visibility),
        )

    @staticmethod
    async def _source(
        session: AsyncSession, ticket_id: int, comment_id: str
    ) -> tuple[int | None, str | None]:
        """The ticket and public answer an article is made from, checked."""
        if ticket_id < 0:
            invalid("source_ticket_id", "must be a positive ID")
        comment_id = optional_text("source_comment_id", comment_id, 64)
        if not ticket_id:
            if comment_id:
                invalid("source_comment_id", "needs the source_ticket_id it belongs to")
            return None, None
        if await session.get(m.Ticket, ticket_id) is None:
            not_found(f"ticket {ticket_id}")
        if comment_id:
            comment = await session.get(m.Comment, comment_id)
            if comment is None or comment.ticket_id != ticket_id:
                not_found(f"comment {comment_id} of ticket {ticket_id}")
            if comment.visibility != "PUBLIC":
                invalid("source_comment_id", "must be a public answer, not an internal note")
        return ticket_id, comment_id or None

    @staticmethod
    async def _by_key(session: AsyncSession, key: str) -> int | None:
        if not key:
            return None
        found = await session.scalar(select(m.Article.id).where(m.Article.request_key == key))
        return None if found is None else int(found)

    @rpc_method
    async def CreateArticle(
        self, request: kpb.CreateArticleRequest, context: Context
    ) -> kpb.Article:
        """A DRAFT at version 1; the same ``request_id`` again: the article it made."""
        who = principal()
        key = scoped_key(
            "request_id", optional_text("request_id", request.request_id, MAX_KEY), who
        )
        async with self.sessions() as session:
            earlier = await self._by_key(session, key)
            if earlier is not None:
                return await self._article(session, earlier, who)
            content = await self._content(session, request)
            source_ticket, source_comment = await self._source(
                session, request.source_ticket_id, request.source_comment_id
            )
            now = datetime.now(UTC)
            row = m.Article(
                request_key=key or None,
                title=content.title,
                body=content.body,
                product=content.product,
                tags=content.tags,
                locale=content.locale,
                visibility=content.visibility,
                status=DRAFT,
                version=1,
                author_id=who.id if who.kind == "AGENT" else 0,
                created_at=now,
                updated_at=now,
                source_ticket_id=source_ticket,
                source_comment_id=source_comment,
                deflections=0,
            )
            session.add(row)
            if not await _save(session, row, who, "created", content.organization_ids):
                # A concurrent twin with the same request_id made it first: that one.
                earlier = await self._by_key(session, key)
                if earlier is None:
                    raise RpcError(grpc.StatusCode.ABORTED, "the article was not saved: retry")
                return await self._article(session, earlier, who)
            return await self._article(session, row.id, who)

    @rpc_method
    async def UpdateArticle(
        self, request: kpb.UpdateArticleRequest, context: Context
    ) -> kpb.Article:
        """The fields set replace the article's, from ``expected_version`` only."""
        who = principal()
        article_id = require_id("id", request.id)
        if request.expected_version <= 0:
            invalid("expected_version", "is required: the version the edit was made from")
        if not request.replace_lists and (request.tags or request.organization_ids):
            invalid("replace_lists", "set it to replace the tags and organization_ids")
        note = optional_text("note", request.note, MAX_NOTE)
        async with self.sessions() as session:
            row = await session.get(m.Article, article_id)
            if row is None:
                not_found(f"article {article_id}")
            if row.version != request.expected_version:
                raise _stale(article_id, row.version, request.expected_version)
            current_orgs = (await organizations_by_article(session, [row.id]))[row.id]
            visibility = visibility_of(request.visibility, required=False) or row.visibility
            wanted_orgs = list(request.organization_ids) if request.replace_lists else []
            if not request.replace_lists and visibility == ORGANIZATIONS:
                wanted_orgs = current_orgs
            content = Content(
                title=title_of(request.title) if request.HasField("title") else row.title,
                body=body_of(request.body) if request.HasField("body") else row.body,
                product=(
                    product_of(request.product) if request.HasField("product") else row.product
                ),
                tags=tags_of(request.tags) if request.replace_lists else list(row.tags),
                locale=(locale_of(request.locale) if request.HasField("locale") else row.locale),
                visibility=visibility,
                organization_ids=await organizations_of(session, wanted_orgs, visibility),
            )
            before = Content(
                row.title,
                row.body,
                row.product,
                list(row.tags),
                row.locale,
                row.visibility,
                current_orgs,
            )
            if content == before:  # nothing to change: no new version
                return await self._article(session, row.id, who)
            now = datetime.now(UTC)
            row.title, row.body, row.product = content.title, content.body, content.product
            row.tags, row.locale, row.visibility = content.tags, content.locale, visibility
            row.version += 1
            row.updated_at = now
            orgs = content.organization_ids if content.organization_ids != current_orgs else None
            if not await _save(session, row, who, note or "edited", orgs):
                # A concurrent edit of the same version won.
                raise _stale(article_id, request.expected_version + 1, request.expected_version)
            return await self._article(session, row.id, who)

    @rpc_method
    async def PublishArticle(
        self, request: kpb.PublishArticleRequest, context: Context
    ) -> kpb.Article:
        """DRAFT -> PUBLISHED, or back with ``unpublish``; already so: no change."""
        who = principal()
        article_id = require_id("id", request.id)
        target = DRAFT if request.unpublish else PUBLISHED
        for _attempt in range(PUBLISH_ATTEMPTS):
            async with self.sessions() as session:
                row = await session.get(m.Article, article_id)
                if row is None:
                    not_found(f"article {article_id}")
                if row.status == target:
                    return await self._article(session, row.id, who)
                now = datetime.now(UTC)
                row.status, row.version, row.updated_at = target, row.version + 1, now
                row.published_at = now if target == PUBLISHED else None
                note = "unpublished" if request.unpublish else "published"
                if await _save(session, row, who, note):
                    return await self._article(session, row.id, who)
                # Changed meanwhile: look again.
        raise RpcError(grpc.StatusCode.ABORTED, f"article {article_id} keeps changing: retry")

    @rpc_method
    async def GetArticle(self, request: kpb.GetArticleRequest, context: Context) -> kpb.Article:
        """Versions only for the desk: a customer's request for them gets the article."""
        who = principal()
        article_id = require_id("id", request.id)
        async with self.sessions() as session:
            row = await readable_row(session, article_id, who)
            return await self._article(
                session, row.id, who, versions=request.include_versions and not who.is_customer
            )

    @rpc_method
    async def ListArticles(
        self, request: kpb.ListArticlesRequest, context: Context
    ) -> kpb.ListArticlesResponse:
        """Newest change first, without bodies; customers: what they may read."""
        who = principal()
        product = product_of(request.product)
        locale = _filter_locale(request.locale)
        status = (
            "" if who.is_customer else optional_name(kpb.ArticleStatus, request.status, "status")
        )
        query = readable(select(m.Article), who)
        query = search.Filters(product, locale).apply(query)
        if status:
            query = query.where(m.Article.status == status)
        # The token belongs to this caller's filters: another's is INVALID_ARGUMENT.
        scope = f"kb|{who.is_customer}|{who.organization_id}|{product}|{locale}|{status}"
        keys = [
            SortKey(m.Article.updated_at, descending=True),
            SortKey(m.Article.id, descending=True),
        ]
        async with self.sessions() as session:
            rows, token = await fetch_ordered_page(
                session, query, keys, request.page_size, request.page_token, scope
            )
            articles = await articles_pb(session, rows, who)
        return kpb.ListArticlesResponse(articles=articles, next_page_token=token)

    @rpc_method
    async def SearchArticles(
        self, request: kpb.SearchArticlesRequest, context: Context
    ) -> kpb.SearchArticlesResponse:
        """Best first with snippets; no words: the most recently changed."""
        who = principal()
        text = optional_text("query", request.query, search.MAX_QUERY_CHARS)
        size = bounded(request.page_size, search.DEFAULT_PAGE, search.MAX_PAGE, "page_size")
        filters = search.Filters(product_of(request.product), _filter_locale(request.locale))
        words = search_index.words(text)
        async with self.sessions() as session:
            if not words:
                hits = await search.recent(session, who, filters, size)
            else:
                hits = await search.matching(session, who, words, filters, size, any_word=False)
        return kpb.SearchArticlesResponse(hits=hits)

    @rpc_method
    async def SuggestArticles(
        self, request: kpb.SuggestArticlesRequest, context: Context
    ) -> kpb.SearchArticlesResponse:
        """Published articles sharing words with the ticket being written, best first."""
        who = principal()
        size = bounded(request.limit, search.DEFAULT_SUGGESTIONS, search.MAX_SUGGESTIONS, "limit")
        filters = search.Filters(locale=_filter_locale(request.locale), published_only=True)
        words = search.suggestion_words(request.subject, request.description)
        async with self.sessions() as session:
            hits = await search.matching(session, who, words, filters, size, any_word=True)
        return kpb.SearchArticlesResponse(hits=hits)

    @rpc_method
    async def RecordDeflection(
        self, request: kpb.RecordDeflectionRequest, context: Context
    ) -> kpb.Article:
        """One more customer answered by the article; the same request_id counts once."""
        who = principal()
        article_id = require_id("article_id", request.article_id)
        key = scoped_key("request_id", require_text("request_id", request.request_id, MAX_KEY), who)
        async with self.sessions() as session:
            row = await readable_row(session, article_id, who)
            if row.status != PUBLISHED:
                precondition(f"article {article_id} is not published")
            if await session.get(m.ArticleDeflection, key) is None:
                session.add(
                    m.ArticleDeflection(
                        request_key=key,
                        article_id=row.id,
                        contact_id=who.id if who.kind == "CONTACT" else 0,
                        created_at=datetime.now(UTC),
                    )
                )
                await session.execute(
                    update(m.Article)
                    .where(m.Article.id == row.id)
                    .values(deflections=m.Article.deflections + 1)
                )
                try:
                    await session.commit()
                except IntegrityError:
                    await session.rollback()  # a concurrent twin counted it
            return await self._article(session, row.id, who)
