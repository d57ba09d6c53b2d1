"""Search in the console: ``/agent/search?q=`` finds tickets (``SearchTickets``: every
ticket the agent may see, internal notes included and marked) and articles
(``SearchArticles``: drafts and internal ones too), each hit with its highlighted snippet.

``/agent/tickets/<id>/related`` is the ticket workspace's "Similar tickets" (solved and
closed first, as ``SimilarTickets`` orders them) and "Articles" (``SuggestArticles`` with
the ticket's subject and description): the page loads it with htmx after it is shown, so
the workspace never waits on search; each part that cannot be read says so in place."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
from fastapi import APIRouter, Request
from fastapi.responses import Response

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import knowledge_pb2 as kpb
from helpdesk.v1 import tickets_pb2 as tpb
from services.gateway import knowledge_views as kv
from services.gateway.backend import CALL_TIMEOUT, call_md
from services.gateway.errors import UNAVAILABLE, failure
from services.gateway.web import Web

TICKET_HITS = 25
ARTICLE_HITS = 10
SIMILAR = 5
SUGGESTED = 3
MAX_QUERY = 500


def routes(web: Web) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def _(request: Request, words: str, **values: Any) -> str:
        return web._(request, words, **values)

    def part_failed(request: Request, err: BaseException) -> str:
        """What a part of the page says when its search was refused or did not answer."""
        if not isinstance(err, grpc.aio.AioRpcError):
            raise err
        if err.code() == grpc.StatusCode.UNAUTHENTICATED:
            raise err
        if err.code() in UNAVAILABLE:
            return _(request, "The search is not answering right now: try again in a moment.")
        if err.code() == grpc.StatusCode.PERMISSION_DENIED:
            return _(request, "Your role may not search these.")
        return failure(err).message

    @router.get("/agent/search")
    async def search(request: Request) -> Response:
        viewer = await web.require_staff(request)
        locale = web.locale(request)
        md = call_md(viewer.token)
        q = request.query_params.get("q", "").strip()[:MAX_QUERY]
        context: dict[str, Any] = {
            "q": q,
            "tickets": [],
            "articles": [],
            "tickets_error": "",
            "articles_error": "",
        }
        status = 200
        if q:
            tickets, articles = await asyncio.gather(
                web.backend.tickets.SearchTickets(
                    tpb.SearchTicketsRequest(query=q, page_size=TICKET_HITS),
                    metadata=md,
                    timeout=CALL_TIMEOUT,
                ),
                web.backend.knowledge.SearchArticles(
                    kpb.SearchArticlesRequest(query=q, page_size=ARTICLE_HITS),
                    metadata=md,
                    timeout=CALL_TIMEOUT,
                ),
                return_exceptions=True,
            )
            if isinstance(tickets, tpb.SearchTicketsResponse):
                context["tickets"] = kv.ticket_hits(tickets.hits, locale)
            else:
                context["tickets_error"] = part_failed(request, tickets)
            if isinstance(articles, kpb.SearchArticlesResponse):
                context["articles"] = kv.article_hits(articles.hits, locale)
            else:
                context["articles_error"] = part_failed(request, articles)
            errors = [e for e in (tickets, articles) if isinstance(e, grpc.aio.AioRpcError)]
            if len(errors) == 2:  # nothing to show: the status of the first refusal
                status = failure(errors[0]).http_status
        return web.page(
            request,
            "agent/search.html",
            _(request, "Search"),
            status_code=status,
            nav="search",
            search_q=q,
            **context,
        )

    @router.get("/agent/tickets/{ticket_id:int}/related")
    async def related(request: Request, ticket_id: int) -> Response:
        """Similar tickets and articles for the workspace; without htmx, a page of its own."""
        viewer = await web.require_staff(request)
        locale = web.locale(request)
        md = call_md(viewer.token)
        fragment = request.headers.get("HX-Request") == "true"
        try:
            t: pb.Ticket = await web.backend.tickets.GetTicket(
                tpb.GetTicketRequest(id=ticket_id), metadata=md, timeout=CALL_TIMEOUT
            )
        except grpc.aio.AioRpcError as err:
            if not fragment or err.code() == grpc.StatusCode.UNAUTHENTICATED:
                raise
            said = part_failed(request, err)  # in place: the workspace itself is shown
            return web.page(
                request,
                "agent/_ticket_related.html",
                "",
                t=pb.Ticket(id=ticket_id),
                similar=[],
                suggested=[],
                similar_error=said,
                suggested_error=said,
            )
        similar, suggested = await asyncio.gather(
            web.backend.tickets.SimilarTickets(
                tpb.SimilarTicketsRequest(ticket_id=ticket_id, limit=SIMILAR),
                metadata=md,
                timeout=CALL_TIMEOUT,
            ),
            web.backend.knowledge.SuggestArticles(
                kpb.SuggestArticlesRequest(
                    subject=t.subject, description=t.description[:5000], limit=SUGGESTED
                ),
                metadata=md,
                timeout=CALL_TIMEOUT,
            ),
            return_exceptions=True,
        )
        context: dict[str, Any] = {
            "t": t,
            "similar": kv.ticket_hits(similar.hits, locale)
            if isinstance(similar, tpb.SearchTicketsResponse)
            else [],
            "similar_error": ""
            if isinstance(similar, tpb.SearchTicketsResponse)
            else part_failed(request, similar),
            "suggested": kv.article_hits(suggested.hits, locale)
            if isinstance(suggested, kpb.SearchArticlesResponse)
            else [],
            "suggested_error": ""
            if isinstance(suggested, kpb.SearchArticlesResponse)
            else part_failed(request, suggested),
        }
        return web.page(
            request,
            "agent/_ticket_related.html" if fragment else "agent/ticket_related.html",
            f"{t.display_id or '#' + str(t.id)} {t.subject}",
            nav="queues",
            **context,
        )

    return router
