"""What the knowledge pages show, portal and console alike: articles in plain words,
search hits with their highlighted snippets, and the article form as posted. Pure
functions of the messages: the pages call the services, these only say what to show.

A snippet is a list of ``Part``; the templates put the matched ones inside ``<mark>``
and Jinja escapes every part, so a snippet can never carry markup of its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from helpdesk.v1 import knowledge_pb2 as kpb
from helpdesk.v1 import tickets_pb2 as tpb
from services.gateway.texts import STATUS, day, translate
from services.gateway.views import STATUS_KEYS, when

# A snippet longer than this is cut (the engines write about two dozen words).
MAX_SNIPPET_CHARS = 400
MAX_TAGS = 20
VISIBILITY = {
    kpb.ARTICLE_VISIBILITY_PUBLIC: "Every customer",
    kpb.ARTICLE_VISIBILITY_ORGANIZATIONS: "Customers of some organisations",
    kpb.ARTICLE_VISIBILITY_INTERNAL: "The desk only",
}
VISIBILITY_KEYS = {
    kpb.ARTICLE_VISIBILITY_PUBLIC: "public",
    kpb.ARTICLE_VISIBILITY_ORGANIZATIONS: "organizations",
    kpb.ARTICLE_VISIBILITY_INTERNAL: "internal",
}
ARTICLE_STATUS = {kpb.ARTICLE_STATUS_DRAFT: "Draft", kpb.ARTICLE_STATUS_PUBLISHED: "Published"}
ARTICLE_STATUS_KEYS = {kpb.ARTICLE_STATUS_DRAFT: "draft", kpb.ARTICLE_STATUS_PUBLISHED: "published"}
LANGUAGES = {"it": "Italiano", "en": "English"}
GENERAL = "General"


@dataclass(frozen=True)
class Part:
    """A piece of a snippet; ``match``: one of the words searched for."""

    text: str
    match: bool


def snippet(parts: Iterable[kpb.SnippetPart], limit: int = MAX_SNIPPET_CHARS) -> list[Part]:
    """The snippet to show: empty pieces dropped, neighbours of the same kind joined, at
    most ``limit`` characters (a cut piece ends with an ellipsis)."""
    out: list[Part] = []
    left = limit
    for p in parts:
        if left <= 0:
            break
        text = p.text
        if not text:
            continue
        if len(text) > left:
            text = text[:left].rstrip() + "…"
        left -= len(p.text)
        if out and out[-1].match == p.match:
            out[-1] = Part(out[-1].text + text, p.match)
        else:
            out.append(Part(text, p.match))
    return out


@dataclass
class ArticleView:
    id: int
    title: str
    product: str
    locale: str
    language: str
    status: str
    status_key: str
    visibility: str
    visibility_key: str
    version: int
    updated: str
    updated_iso: str
    author: str
    deflections: int
    tags: list[str] = field(default_factory=list)


def article_view(a: kpb.Article, locale: str) -> ArticleView:
    changed = when(a.updated_at) or when(a.created_at)
    return ArticleView(
        id=a.id,
        title=a.title,
        product=a.product,
        locale=a.locale,
        language=LANGUAGES.get(a.locale, a.locale),
        status=translate(locale, ARTICLE_STATUS.get(a.status, "")),
        status_key=ARTICLE_STATUS_KEYS.get(a.status, ""),
        visibility=translate(locale, VISIBILITY.get(a.visibility, "")),
        visibility_key=VISIBILITY_KEYS.get(a.visibility, ""),
        version=a.version,
        updated=day(changed, locale) if changed else "",
        updated_iso=changed.isoformat() if changed else "",
        author=a.author_name,
        deflections=a.deflections,
        tags=list(a.tags),
    )


@dataclass
class ProductGroup:
    """The articles about one product; ``name`` is "General" for those about none."""

    name: str
    articles: list[ArticleView]


def by_product(articles: Iterable[kpb.Article], locale: str) -> list[ProductGroup]:
    """The articles grouped by product, products A to Z, the general ones last; within
    a product, in the order given (the service's: newest change first)."""
    groups: dict[str, list[ArticleView]] = {}
    for a in articles:
        groups.setdefault(a.product.strip(), []).append(article_view(a, locale))
    named = sorted((p for p in groups if p), key=str.casefold)
    out = [ProductGroup(p, groups[p]) for p in named]
    if "" in groups:
        out.append(ProductGroup(translate(locale, GENERAL), groups[""]))
    return out


@dataclass
class ArticleHitView:
    article: ArticleView
    snippet: list[Part]


def article_hits(hits: Iterable[kpb.ArticleHit], locale: str) -> list[ArticleHitView]:
    return [ArticleHitView(article_view(h.article, locale), snippet(h.snippet)) for h in hits]


@dataclass
class TicketHitView:
    id: int
    display_id: str
    subject: str
    status: str
    status_key: str
    organization: str
    snippet: list[Part]
    # Found in an internal note (agents only): the page says so.
    in_note: bool


def ticket_hits(hits: Iterable[tpb.TicketHit], locale: str) -> list[TicketHitView]:
    out = []
    for h in hits:
        t = h.ticket
        out.append(
            TicketHitView(
                id=t.id,
                display_id=t.display_id or f"#{t.id}",
                subject=t.subject,
                status=translate(locale, STATUS.get(t.status, "")),
                status_key=STATUS_KEYS.get(t.status, ""),
                organization=t.organization_name,
                snippet=snippet(h.snippet),
                in_note=h.found_in == "note",
            )
        )
    return out


# -- the article form (agent console) ---------------------------------------------------


class BadInput(Exception):
    """A field the gateway cannot read (400): nothing was sent."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass
class ArticleForm:
    """The article form's fields as written, to send or to show again."""

    title: str = ""
    body: str = ""
    product: str = ""
    tags: str = ""
    locale: str = "it"
    visibility: str = str(kpb.ARTICLE_VISIBILITY_PUBLIC)
    organization_ids: list[str] = field(default_factory=list)
    note: str = ""
    request_id: str = ""
    expected_version: str = ""
    source_ticket_id: str = ""
    source_comment_id: str = ""

    @property
    def organizations(self) -> set[int]:
        """The organisations chosen, for the form's selected options."""
        return {int(v) for v in self.organization_ids if v.isdigit()}


FORM_FIELDS = (
    "title",
    "body",
    "product",
    "tags",
    "locale",
    "visibility",
    "note",
    "request_id",
    "expected_version",
    "source_ticket_id",
    "source_comment_id",
)


def read_article_form(values: Mapping[str, str], organization_ids: Sequence[str]) -> ArticleForm:
    """The posted fields, trimmed (the body keeps its own line breaks and indentation)."""
    got = {name: values.get(name, "") for name in FORM_FIELDS}
    return ArticleForm(
        title=got["title"].strip()[:300],
        body=got["body"].strip("\n\r")[:100_000],
        product=got["product"].strip()[:200],
        tags=got["tags"].strip()[:1000],
        locale=got["locale"].strip()[:10],
        visibility=got["visibility"].strip()[:4],
        organization_ids=[v.strip() for v in organization_ids if v.strip()][:500],
        note=got["note"].strip()[:500],
        request_id=got["request_id"].strip()[:100],
        expected_version=got["expected_version"].strip()[:12],
        source_ticket_id=got["source_ticket_id"].strip()[:20],
        source_comment_id=got["source_comment_id"].strip()[:64],
    )


def tags_of(text: str) -> list[str]:
    """``stampa, fatture, Stampa`` -> ``["stampa", "fatture"]``: by commas, no repeats."""
    out: list[str] = []
    for raw in text.split(","):
        tag = " ".join(raw.split())
        if tag and tag.casefold() not in {t.casefold() for t in out}:
            out.append(tag)
    if len(out) > MAX_TAGS:
        raise BadInput("tags", f"at most {MAX_TAGS} tags")
    return out


def _number(name: str, value: str, required: bool = False) -> int:
    if not value:
        if required:
            raise BadInput(name, "is required")
        return 0
    if not value.isdigit():
        raise BadInput(name, "must be a whole number")
    return int(value)


def _visibility(value: str) -> kpb.ArticleVisibility.ValueType:
    number = int(value) if value.isdigit() else -1
    for known in VISIBILITY:
        if known == number:
            return known
    raise BadInput("visibility", "choose one of the options")


def _organizations(form: ArticleForm, visibility: int) -> list[int]:
    if visibility != kpb.ARTICLE_VISIBILITY_ORGANIZATIONS:
        return []
    return [_number("organization_ids", v) for v in form.organization_ids]


def create_request(form: ArticleForm) -> kpb.CreateArticleRequest:
    """CreateArticle from the form; ``BadInput`` for what cannot be read."""
    visibility = _visibility(form.visibility)
    return kpb.CreateArticleRequest(
        request_id=form.request_id,
        title=form.title,
        body=form.body,
        product=form.product,
        tags=tags_of(form.tags),
        locale=form.locale,
        visibility=visibility,
        organization_ids=_organizations(form, visibility),
        source_ticket_id=_number("source_ticket_id", form.source_ticket_id),
        source_comment_id=form.source_comment_id,
    )


def update_request(article_id: int, form: ArticleForm) -> kpb.UpdateArticleRequest:
    """UpdateArticle from the form: every field replaced, from the version it was read at."""
    visibility = _visibility(form.visibility)
    return kpb.UpdateArticleRequest(
        id=article_id,
        expected_version=_number("expected_version", form.expected_version, required=True),
        title=form.title,
        body=form.body,
        product=form.product,
        locale=form.locale,
        visibility=visibility,
        replace_lists=True,
        tags=tags_of(form.tags),
        organization_ids=_organizations(form, visibility),
        note=form.note,
    )


def form_of(a: kpb.Article) -> ArticleForm:
    """The form of a stored article, to edit it from its current version."""
    return ArticleForm(
        title=a.title,
        body=a.body,
        product=a.product,
        tags=", ".join(a.tags),
        locale=a.locale or "it",
        visibility=str(a.visibility or kpb.ARTICLE_VISIBILITY_PUBLIC),
        organization_ids=[str(o) for o in a.organization_ids],
        expected_version=str(a.version),
    )
