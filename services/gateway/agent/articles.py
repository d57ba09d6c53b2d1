"""The knowledge base in the console: ``/agent/articles`` lists every article (drafts and
internal ones too, newest change first); ``/agent/articles/new`` writes one, from scratch
or from a ticket's public answer (``?ticket=&comment=``: the answer's text and the
ticket's subject, with a reminder to take the customer's details out); an article's page
edits it from the version it shows and publishes or unpublishes it.

An edit names the version it was read at: when someone else changed the article
meanwhile the service says ABORTED, and the page shows the agent's text again with the
current one beside it, to save again on purpose. Every other refusal keeps what was
written and shows the service's words with its HTTP status."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

import grpc
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.exceptions import HTTPException

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import knowledge_pb2 as kpb
from helpdesk.v1 import tickets_pb2 as tpb
from services.gateway import knowledge_views as kv
from services.gateway.backend import CALL_TIMEOUT, call_md
from services.gateway.errors import UNAVAILABLE, failure
from services.gateway.forms import new_request_id, read_form, text
from services.gateway.texts import moment
from services.gateway.views import when
from services.gateway.web import Viewer, Web

T = TypeVar("T")
PAGE_SIZE = 50
ORGANIZATIONS_PAGE = 500
# Errors the application's handlers turn into their pages (sign-in, 404).
PASSED_ON = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.NOT_FOUND)
STATUS_FILTERS = {
    "draft": kpb.ARTICLE_STATUS_DRAFT,
    "published": kpb.ARTICLE_STATUS_PUBLISHED,
}
NOTICES = {
    "created": "The article is saved as a draft.",
    "saved": "The article is saved.",
    "published": "The article is published: customers can read it.",
    "unpublished": "The article is back to draft: customers no longer see it.",
}


async def _optional(call: Awaitable[T]) -> T | None:
    """What the form can do without (the organisations to choose from)."""
    try:
        return await call
    except grpc.aio.AioRpcError as err:
        if err.code() == grpc.StatusCode.UNAUTHENTICATED:
            raise
        return None


def routes(web: Web) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def _(request: Request, words: str, **values: Any) -> str:
        return web._(request, words, **values)

    async def get_article(viewer: Viewer, article_id: int) -> kpb.Article:
        found: kpb.Article = await web.backend.knowledge.GetArticle(
            kpb.GetArticleRequest(id=article_id, include_versions=True),
            metadata=call_md(viewer.token),
            timeout=CALL_TIMEOUT,
        )
        return found

    async def organizations(viewer: Viewer) -> list[tuple[int, str]]:
        reply = await _optional(
            web.backend.directory.ListOrganizations(
                dpb.ListOrganizationsRequest(page_size=ORGANIZATIONS_PAGE),
                metadata=call_md(viewer.token),
                timeout=CALL_TIMEOUT,
            )
        )
        if reply is None:
            return []
        return sorted(((o.id, o.name) for o in reply.organizations), key=lambda p: p[1].casefold())

    async def form_page(
        request: Request,
        viewer: Viewer,
        form: kv.ArticleForm,
        article: kpb.Article | None = None,
        status_code: int = 200,
        **extra: Any,
    ) -> HTMLResponse:
        locale = web.locale(request)
        if not form.request_id and article is None:
            form.request_id = new_request_id()
        key = request.query_params.get("n", "") if request.method == "GET" else ""
        title = article.title if article is not None and article.id else _(request, "New article")
        return web.page(
            request,
            "agent/article_form.html",
            title,
            status_code=status_code,
            nav="articles",
            form=form,
            article=article,
            view=kv.article_view(article, locale) if article is not None else None,
            versions=[
                {
                    "version": v.version,
                    "who": v.changed_by_name,
                    "note": v.note,
                    "when": moment(at, locale) if (at := when(v.changed_at)) else "",
                }
                for v in reversed(article.versions)
            ]
            if article is not None
            else [],
            organizations=await organizations(viewer),
            visibilities=[(str(k), _(request, v)) for k, v in kv.VISIBILITY.items()],
            languages=list(kv.LANGUAGES.items()),
            notice=_(request, NOTICES[key]) if key in NOTICES else "",
            **extra,
        )

    def kept_message(request: Request, err: grpc.aio.AioRpcError) -> tuple[int, str, str]:
        """Status, message and field of a refused form (what was written is kept)."""
        if err.code() in UNAVAILABLE:
            return (
                503,
                _(
                    request,
                    "A service of the help desk is not answering right now. What you wrote "
                    "is kept below: try again in a moment.",
                ),
                "",
            )
        f = failure(err)
        return f.http_status, f.message, f.field

    # -- the list -------------------------------------------------------------------

    @router.get("/agent/articles")
    async def articles(request: Request) -> Response:
        viewer = await web.require_staff(request)
        locale = web.locale(request)
        status = request.query_params.get("status", "")
        listed: kpb.ListArticlesResponse = await web.backend.knowledge.ListArticles(
            kpb.ListArticlesRequest(
                status=STATUS_FILTERS.get(status, kpb.ARTICLE_STATUS_UNSPECIFIED),
                page_size=PAGE_SIZE,
                page_token=request.query_params.get("page", "")[:500],
            ),
            metadata=call_md(viewer.token),
            timeout=CALL_TIMEOUT,
        )
        key = request.query_params.get("n", "")
        return web.page(
            request,
            "agent/articles.html",
            _(request, "Articles"),
            nav="articles",
            rows=[kv.article_view(a, locale) for a in listed.articles],
            status=status if status in STATUS_FILTERS else "",
            status_options=[
                ("", _(request, "All")),
                ("draft", _(request, "Draft")),
                ("published", _(request, "Published")),
            ],
            next_page=listed.next_page_token,
            notice=_(request, NOTICES[key]) if key in NOTICES else "",
        )

    # -- a new article ----------------------------------------------------------------

    async def from_answer(viewer: Viewer, ticket_id: int, comment_id: str) -> kv.ArticleForm:
        """The form pre-filled from a ticket's public answer (404 when there is none)."""
        md = call_md(viewer.token)
        t, comments = await asyncio.gather(
            web.backend.tickets.GetTicket(
                tpb.GetTicketRequest(id=ticket_id), metadata=md, timeout=CALL_TIMEOUT
            ),
            web.backend.tickets.ListComments(
                tpb.ListCommentsRequest(ticket_id=ticket_id), metadata=md, timeout=CALL_TIMEOUT
            ),
        )
        answer = next(
            (
                c
                for c in comments.comments
                if c.id == comment_id and c.visibility == pb.COMMENT_VISIBILITY_PUBLIC
            ),
            None,
        )
        if answer is None:
            raise HTTPException(404)
        return kv.ArticleForm(
            title=t.subject,
            body=answer.body,
            product=t.product,
            source_ticket_id=str(t.id),
            source_comment_id=answer.id,
        )

    @router.get("/agent/articles/new")
    async def new_article(request: Request) -> Response:
        viewer = await web.require_staff(request)
        ticket = request.query_params.get("ticket", "")
        comment = request.query_params.get("comment", "")[:64]
        form = kv.ArticleForm()  # in Italian unless the agent chooses English
        if ticket.isdigit() and comment:
            form = await from_answer(viewer, int(ticket), comment)
        return await form_page(request, viewer, form)

    @router.post("/agent/articles/new")
    async def create(request: Request) -> Response:
        viewer = await web.require_staff(request)
        posted = await read_form(request)
        web.check_csrf(request, posted)
        values = {k: v for k, v in posted.items() if isinstance(v, str)}
        form = kv.read_article_form(
            values, [v for v in posted.getlist("organization_ids") if isinstance(v, str)]
        )
        try:
            made: kpb.Article = await web.backend.knowledge.CreateArticle(
                kv.create_request(form), metadata=call_md(viewer.token), timeout=CALL_TIMEOUT
            )
        except kv.BadInput as bad:
            return await form_page(
                request,
                viewer,
                form,
                status_code=400,
                error=_(request, bad.message),
                error_field=bad.field,
            )
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.UNAUTHENTICATED:
                raise
            status, message, field = kept_message(request, err)
            return await form_page(
                request, viewer, form, status_code=status, error=message, error_field=field
            )
        return web.redirect(request, f"/agent/articles/{made.id}?n=created")

    # -- one article ------------------------------------------------------------------

    @router.get("/agent/articles/{article_id:int}")
    async def edit_page(request: Request, article_id: int) -> Response:
        viewer = await web.require_staff(request)
        article = await get_article(viewer, article_id)
        return await form_page(request, viewer, kv.form_of(article), article)

    @router.post("/agent/articles/{article_id:int}")
    async def save(request: Request, article_id: int) -> Response:
        viewer = await web.require_staff(request)
        posted = await read_form(request)
        web.check_csrf(request, posted)
        values = {k: v for k, v in posted.items() if isinstance(v, str)}
        form = kv.read_article_form(
            values, [v for v in posted.getlist("organization_ids") if isinstance(v, str)]
        )
        try:
            await web.backend.knowledge.UpdateArticle(
                kv.update_request(article_id, form),
                metadata=call_md(viewer.token),
                timeout=CALL_TIMEOUT,
            )
        except kv.BadInput as bad:
            return await refused(request, viewer, article_id, form, 400, _(request, bad.message))
        except grpc.aio.AioRpcError as err:
            if err.code() in PASSED_ON:
                raise
            if err.code() == grpc.StatusCode.ABORTED:
                return await stale(request, viewer, article_id, form)
            status, message, field = kept_message(request, err)
            return await refused(request, viewer, article_id, form, status, message, field)
        return web.redirect(request, f"/agent/articles/{article_id}?n=saved")

    async def refused(
        request: Request,
        viewer: Viewer,
        article_id: int,
        form: kv.ArticleForm,
        status: int,
        message: str,
        field: str = "",
    ) -> HTMLResponse:
        """The form again with the agent's text; the article as stored when it answers."""
        try:
            article: kpb.Article | None = await get_article(viewer, article_id)
        except grpc.aio.AioRpcError as err:
            if err.code() in PASSED_ON:
                raise
            article = kpb.Article(id=article_id, title=form.title)
        return await form_page(
            request, viewer, form, article, status, error=message, error_field=field
        )

    async def stale(
        request: Request, viewer: Viewer, article_id: int, form: kv.ArticleForm
    ) -> HTMLResponse:
        """Someone else saved first: the agent's text kept, the current one shown, and
        the form now made from the current version (saving again is a choice)."""
        try:
            current = await get_article(viewer, article_id)
        except grpc.aio.AioRpcError as err:
            if err.code() in PASSED_ON:
                raise
            status, message, _field = kept_message(request, err)
            return await refused(request, viewer, article_id, form, status, message)
        read_at = form.expected_version
        form.expected_version = str(current.version)
        return await form_page(
            request,
            viewer,
            form,
            current,
            409,
            error=_(
                request,
                "Someone else changed this article while you were editing it (you started "
                "from version {old}, it is now at version {new}). Your text is kept below and "
                "the current text is under it: compare them, then save again to replace it "
                "with yours.",
                old=read_at or "?",
                new=str(current.version),
            ),
            current_body=current.body,
        )

    @router.post("/agent/articles/{article_id:int}/publish")
    async def publish(request: Request, article_id: int) -> Response:
        viewer = await web.require_staff(request)
        posted = await read_form(request)
        web.check_csrf(request, posted)
        back = text(posted, "unpublish") == "1"
        try:
            await web.backend.knowledge.PublishArticle(
                kpb.PublishArticleRequest(id=article_id, unpublish=back),
                metadata=call_md(viewer.token),
                timeout=CALL_TIMEOUT,
            )
        except grpc.aio.AioRpcError as err:
            if err.code() in PASSED_ON or err.code() in UNAVAILABLE:
                raise  # nothing was written: the application's page (503: try again)
            f = failure(err)
            article = await get_article(viewer, article_id)
            return await form_page(
                request,
                viewer,
                kv.form_of(article),
                article,
                f.http_status,
                error=f.message,
                error_field=f.field,
            )
        return web.redirect(
            request, f"/agent/articles/{article_id}?n={'unpublished' if back else 'published'}"
        )

    return router
