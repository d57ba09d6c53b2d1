"""The portal's documentation (seed 004's "Documentazione"): the published articles a
customer may read, by product; a search with highlighted snippets; an article's page;
the articles suggested while a new ticket is written, and "This answered my question"
(``RecordDeflection``, counted once per form).

Every call carries the customer's token: the knowledge service shows each customer only
what they may read, and an article they may not read is NOT_FOUND (the 404 page)."""

from __future__ import annotations

from typing import Any

import grpc
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from helpdesk.v1 import knowledge_pb2 as kpb
from services.gateway import knowledge_views as kv
from services.gateway.backend import CALL_TIMEOUT, call_md
from services.gateway.errors import UNAVAILABLE, failure
from services.gateway.forms import new_request_id, read_form, text
from services.gateway.web import Web

# Published articles on the documentation page, and search hits, at most.
PAGE_SIZE = 100
SEARCH_SIZE = 20
SUGGESTIONS = 3
MAX_QUERY = 500
NOTICES = {
    "answered": "Thank you: we are glad the article answered your question.",
}


def routes(web: Web) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def _(request: Request, words: str, **values: Any) -> str:
        return web._(request, words, **values)

    error_page = web.error_page

    @router.get("/docs")
    async def documentation(request: Request) -> Response:
        """Every article the customer may read, by product; with ``q``, the search."""
        viewer = await web.require(request)
        locale = web.locale(request)
        md = call_md(viewer.token)
        q = request.query_params.get("q", "").strip()[:MAX_QUERY]
        context: dict[str, Any] = {"q": q, "hits": [], "groups": [], "next_page": ""}
        try:
            if q:
                found: kpb.SearchArticlesResponse = await web.backend.knowledge.SearchArticles(
                    kpb.SearchArticlesRequest(query=q, page_size=SEARCH_SIZE),
                    metadata=md,
                    timeout=CALL_TIMEOUT,
                )
                context["hits"] = kv.article_hits(found.hits, locale)
            else:
                listed: kpb.ListArticlesResponse = await web.backend.knowledge.ListArticles(
                    kpb.ListArticlesRequest(
                        page_size=PAGE_SIZE,
                        page_token=request.query_params.get("page", "")[:500],
                    ),
                    metadata=md,
                    timeout=CALL_TIMEOUT,
                )
                context["groups"] = kv.by_product(listed.articles, locale)
                context["next_page"] = listed.next_page_token
        except grpc.aio.AioRpcError as err:
            if err.code() != grpc.StatusCode.INVALID_ARGUMENT:
                raise  # the application's pages: sign-in, 403, 503...
            f = failure(err)
            return web.page(
                request,
                "docs.html",
                _(request, "Documentation"),
                status_code=400,
                nav="docs",
                error=f.message,
                error_field=f.field,
                **context,
            )
        return web.page(
            request,
            "docs.html",
            _(request, "Documentation"),
            nav="docs",
            **context,
        )

    async def article_page(request: Request, article_id: int) -> HTMLResponse:
        viewer = await web.require(request)
        article: kpb.Article = await web.backend.knowledge.GetArticle(
            kpb.GetArticleRequest(id=article_id),
            metadata=call_md(viewer.token),
            timeout=CALL_TIMEOUT,
        )
        key = request.query_params.get("n", "")
        return web.page(
            request,
            "doc.html",
            article.title,
            nav="docs",
            article=article,
            view=kv.article_view(article, web.locale(request)),
            # Opened from a suggestion on the new-ticket page: did it answer them?
            answered_form=viewer.is_contact
            and request.query_params.get("suggested") == "1"
            and article.status == kpb.ARTICLE_STATUS_PUBLISHED,
            request_id=new_request_id(),
            notice=_(request, NOTICES[key]) if key in NOTICES else "",
        )

    @router.get("/docs/{article_id:int}")
    async def article(request: Request, article_id: int) -> Response:
        return await article_page(request, article_id)

    @router.post("/docs/{article_id:int}/answered")
    async def answered(request: Request, article_id: int) -> Response:
        """The customer needs no ticket: one deflection per form (its request_id)."""
        viewer = await web.require(request)
        form = await read_form(request)
        web.check_csrf(request, form)
        try:
            await web.backend.knowledge.RecordDeflection(
                kpb.RecordDeflectionRequest(
                    article_id=article_id,
                    request_id=text(form, "request_id")[:100] or new_request_id(),
                ),
                metadata=call_md(viewer.token),
                timeout=CALL_TIMEOUT,
            )
        except grpc.aio.AioRpcError as err:
            if err.code() in UNAVAILABLE or err.code() in (
                grpc.StatusCode.UNAUTHENTICATED,
                grpc.StatusCode.NOT_FOUND,
                grpc.StatusCode.PERMISSION_DENIED,
            ):
                raise
            f = failure(err)
            return error_page(request, f.http_status, "This cannot be done now", f.message)
        return web.redirect(request, f"/docs/{article_id}?n=answered")

    @router.get("/tickets/new/suggestions")
    async def suggestions(request: Request) -> Response:
        """The best articles for the ticket being written (the new-ticket page swaps this
        in while the subject is typed); nothing when the service cannot say."""
        viewer = await web.require(request)
        subject = request.query_params.get("subject", "").strip()[:300]
        description = request.query_params.get("description", "").strip()[:5000]
        found: list[kv.ArticleView] = []
        if subject or description:
            try:
                reply: kpb.SearchArticlesResponse = await web.backend.knowledge.SuggestArticles(
                    kpb.SuggestArticlesRequest(
                        subject=subject,
                        description=description,
                        limit=SUGGESTIONS,
                    ),
                    metadata=call_md(viewer.token),
                    timeout=CALL_TIMEOUT,
                )
                found = [h.article for h in kv.article_hits(reply.hits, web.locale(request))]
            except grpc.aio.AioRpcError as err:
                if err.code() == grpc.StatusCode.UNAUTHENTICATED:
                    raise
                # The ticket can be written without suggestions: never an error here.
        return web.page(request, "_suggestions.html", "", suggestions=found[:SUGGESTIONS])

    return router
