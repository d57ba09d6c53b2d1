"""What ``KnowledgeService`` keeps of an article and how it shows it: the checks of what a
request may write, who may read which article (in the query itself), the versions, the
full-text entry written in the same transaction, and the protobuf message.

A customer reads only PUBLISHED articles that are PUBLIC, or ORGANIZATIONS naming the
customer's organisation; anything else does not exist for them (``NOT_FOUND``). The desk
(and the trusted admin and services) read every article.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, delete, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from helpdesk.v1 import knowledge_pb2 as kpb
from services.common.access import Principal
from services.common.rpc_errors import invalid, not_found, optional_text, require_text
from services.tickets import models as m
from services.tickets import search_index
from services.tickets.article_markdown import plain_text, render_html
from services.tickets.convert import optional_name, ts, value_of

MAX_TITLE = 300
MAX_BODY = 100_000
MAX_PRODUCT = 200
MAX_TAG = 50
MAX_TAGS = 20
MAX_ORGANIZATIONS = 200
MAX_NOTE = 500
LOCALES = ("it", "en")
DRAFT, PUBLISHED = "DRAFT", "PUBLISHED"
PUBLIC, ORGANIZATIONS, INTERNAL = "PUBLIC", "ORGANIZATIONS", "INTERNAL"
# The author or editor of a change made by the admin or a service (no agent ID).
DESK_NAME = "help desk"


@dataclass(frozen=True)
class Content:
    """What an article says and who it is for, checked."""

    title: str
    body: str
    product: str
    tags: list[str]
    locale: str
    visibility: str
    organization_ids: list[int]


def title_of(value: str) -> str:
    return require_text("title", value, MAX_TITLE)


def body_of(value: str) -> str:
    """Markdown as written (leading spaces are syntax), without trailing blank lines."""
    if len(value) > MAX_BODY:
        invalid("body", f"is longer than {MAX_BODY} characters")
    return value.rstrip()


def product_of(value: str) -> str:
    return optional_text("product", value, MAX_PRODUCT)


def locale_of(value: str, default: str = "it") -> str:
    """``it`` or ``en`` (any case); "" is ``default``."""
    locale = value.strip().lower() or default
    if locale not in LOCALES:
        invalid("locale", f"must be one of {', '.join(LOCALES)}, not {value!r}")
    return locale


def tags_of(values: Iterable[str]) -> list[str]:
    """Trimmed, without empty ones or repeats (case-insensitively), in the order given."""
    tags: list[str] = []
    for value in values:
        tag = optional_text("tags", value, MAX_TAG)
        if tag and tag.lower() not in (t.lower() for t in tags):
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        invalid("tags", f"at most {MAX_TAGS}")
    return tags


def visibility_of(value: int, required: bool) -> str:
    """The plain name of the visibility; "" when not set and not ``required``."""
    name = optional_name(kpb.ArticleVisibility, value, "visibility")
    if required and not name:
        invalid("visibility", "is required (PUBLIC, ORGANIZATIONS or INTERNAL)")
    return name


async def organizations_of(
    session: AsyncSession, values: Sequence[int], visibility: str
) -> list[int]:
    """The organisations an article is shown to: some for ORGANIZATIONS, none otherwise;
    an unknown one is ``NOT_FOUND``."""
    ids = sorted(set(values))
    if visibility != ORGANIZATIONS:
        if ids:
            invalid("organization_ids", "only for ORGANIZATIONS visibility")
        return []
    if not ids:
        invalid("organization_ids", "name at least one organization for ORGANIZATIONS")
    if len(ids) > MAX_ORGANIZATIONS or ids[0] <= 0:
        invalid("organization_ids", f"up to {MAX_ORGANIZATIONS} positive IDs")
    known = set(await session.scalars(select(m.Organization.id).where(m.Organization.id.in_(ids))))
    for org_id in ids:
        if org_id not in known:
            not_found(f"organization {org_id}")
    return ids


def readable(query: Select[Any], who: Principal) -> Select[Any]:
    """``query`` over articles narrowed to those ``who`` may read, in the query itself."""
    if not who.is_customer:
        return query
    a = m.Article
    shown_to_mine = exists().where(
        m.ArticleOrganization.article_id == a.id,
        m.ArticleOrganization.organization_id == who.organization_id,
    )
    return query.where(
        a.status == PUBLISHED,
        or_(a.visibility == PUBLIC, and_(a.visibility == ORGANIZATIONS, shown_to_mine)),
    )


async def readable_row(session: AsyncSession, article_id: int, who: Principal) -> m.Article:
    """The article if ``who`` may read it; ``NOT_FOUND`` otherwise (also when it exists)."""
    query: Select[m.Article] = readable(select(m.Article).where(m.Article.id == article_id), who)
    row = await session.scalar(query)
    if row is None:
        not_found(f"article {article_id}")
    return row


async def set_organizations(session: AsyncSession, article_id: int, ids: Sequence[int]) -> None:
    await session.execute(
        delete(m.ArticleOrganization).where(m.ArticleOrganization.article_id == article_id)
    )
    session.add_all(m.ArticleOrganization(article_id=article_id, organization_id=o) for o in ids)


def add_version(
    session: AsyncSession, row: m.Article, who: Principal, at: datetime, note: str
) -> None:
    """Record the article as it now is as version ``row.version``. Its primary key is
    (article, version): of two concurrent changes from one version, one fails to commit."""
    session.add(
        m.ArticleVersion(
            article_id=row.id,
            version=row.version,
            title=row.title,
            body=row.body,
            changed_by_id=who.id if who.kind == "AGENT" else 0,
            changed_at=at,
            note=note[:MAX_NOTE],
        )
    )


async def index_article(session: AsyncSession, row: m.Article) -> None:
    """Write the article's full-text entry (title; the body's words, tags and product)."""
    words = " ".join(part for part in (plain_text(row.body), *row.tags, row.product) if part)
    await search_index.put(
        session, search_index.ARTICLE, row.id, search_index.PUBLIC, row.title, words, row.locale
    )


async def organizations_by_article(
    session: AsyncSession, article_ids: Sequence[int]
) -> dict[int, list[int]]:
    found: dict[int, list[int]] = {i: [] for i in article_ids}
    if article_ids:
        rows = await session.execute(
            select(m.ArticleOrganization.article_id, m.ArticleOrganization.organization_id)
            .where(m.ArticleOrganization.article_id.in_(list(article_ids)))
            .order_by(m.ArticleOrganization.organization_id)
        )
        for article_id, org_id in rows:
            found[int(article_id)].append(int(org_id))
    return found


async def agent_names(session: AsyncSession, ids: Iterable[int]) -> dict[int, str]:
    """Agents' names by ID; 0 (the admin or a service) is the help desk."""
    wanted = sorted({i for i in ids if i})
    names = {0: DESK_NAME}
    if wanted:
        rows = await session.execute(select(m.Agent.id, m.Agent.name).where(m.Agent.id.in_(wanted)))
        names.update({int(i): str(n) for i, n in rows})
    return names


def article_pb(
    row: m.Article,
    organization_ids: Sequence[int],
    names: dict[int, str],
    who: Principal,
    with_body: bool = True,
) -> kpb.Article:
    """The message for ``who``: customers never learn which other organisations an
    article is shown to, nor the ticket it was made from."""
    staff = not who.is_customer
    return kpb.Article(
        id=row.id,
        title=row.title,
        body=row.body if with_body else "",
        body_html=render_html(row.body) if with_body else "",
        product=row.product,
        tags=list(row.tags),
        locale=row.locale,
        visibility=value_of(kpb.ArticleVisibility, row.visibility),
        organization_ids=list(organization_ids) if staff else [],
        status=value_of(kpb.ArticleStatus, row.status),
        version=row.version,
        author_id=row.author_id,
        author_name=names.get(row.author_id, ""),
        created_at=ts(row.created_at),
        updated_at=ts(row.updated_at),
        published_at=ts(row.published_at),
        source_ticket_id=(row.source_ticket_id or 0) if staff else 0,
        source_comment_id=(row.source_comment_id or "") if staff else "",
        deflections=row.deflections,
    )


async def articles_pb(
    session: AsyncSession, rows: Sequence[m.Article], who: Principal, with_body: bool = False
) -> list[kpb.Article]:
    """Several articles, with two queries for their organisations and authors."""
    orgs = await organizations_by_article(session, [r.id for r in rows])
    names = await agent_names(session, (r.author_id for r in rows))
    return [article_pb(r, orgs[r.id], names, who, with_body) for r in rows]


async def versions_pb(session: AsyncSession, article_id: int) -> list[kpb.ArticleVersion]:
    """Every version of the article, oldest first, with who made it."""
    rows = list(
        await session.scalars(
            select(m.ArticleVersion)
            .where(m.ArticleVersion.article_id == article_id)
            .order_by(m.ArticleVersion.version)
        )
    )
    names = await agent_names(session, (v.changed_by_id for v in rows))
    return [
        kpb.ArticleVersion(
            version=v.version,
            title=v.title,
            body=v.body,
            changed_by_id=v.changed_by_id,
            changed_by_name=names.get(v.changed_by_id, ""),
            changed_at=ts(v.changed_at),
            note=v.note,
        )
        for v in rows
    ]
