"""The queues: ``GET /agent/`` and ``/agent/queues/<view>``, the views with their counts,
the filters, and the table sorted by the next service-level due instant.

- ``/agent/queues/<view>/table``: the table alone (htmx refreshes it on every live
  ``hd-ticket-changed`` event, throttled, and every 60 s);
- ``/agent/queues/counts``: the views' links with their counts (one ``CountTickets`` for
  every view).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import grpc
from fastapi import APIRouter, Request
from fastapi.responses import Response

from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import tickets_pb2 as tpb
from services.gateway.agent.queue_views import (
    DEFAULT_VIEW,
    KIND,
    LEVEL,
    ORDERS,
    VIEW_BY_KEY,
    VIEWS,
    BadFilter,
    Filters,
    View,
    count_request,
    keep,
    list_request,
    parse_filters,
    row_of,
)
from services.gateway.backend import CALL_TIMEOUT, call_md
from services.gateway.errors import UNAVAILABLE
from services.gateway.texts import CRITICALITY, PRIORITY, STATUS, translate
from services.gateway.web import Viewer, Web, here

# A contract's SLA plan is read again after this long (the amber threshold needs it).
PLAN_TTL_SECONDS = 300.0
# Options of the organisation and assignee filters: at most this many.
OPTIONS_PAGE_SIZE = 200


def routes(web: Web) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    plans: dict[int, tuple[float, dpb.SlaPlan]] = {}

    def words_of(request: Request) -> Callable[[str], str]:
        locale = web.locale(request)
        return lambda words: translate(locale, words)

    async def plans_for(viewer: Viewer, org_ids: set[int]) -> dict[int, dpb.SlaPlan]:
        """The SLA plans of these organisations' contracts, cached a few minutes."""
        now = time.monotonic()
        missing = [o for o in org_ids if o and (o not in plans or plans[o][0] < now)]

        async def one(org_id: int) -> None:
            try:
                contract = await web.backend.directory.GetContract(
                    dpb.GetContractRequest(organization_id=org_id),
                    metadata=call_md(viewer.token),
                    timeout=CALL_TIMEOUT,
                )
            except grpc.aio.AioRpcError:
                return  # no amber for its tickets, nothing else changes
            plans[org_id] = (now + PLAN_TTL_SECONDS, contract.sla_plan)

        await asyncio.gather(*(one(o) for o in missing))
        return {o: plans[o][1] for o in org_ids if o in plans}

    async def list_tickets(
        viewer: Viewer, request: tpb.ListTicketsRequest
    ) -> tpb.ListTicketsResponse:
        reply: tpb.ListTicketsResponse = await web.backend.tickets.ListTickets(
            request, metadata=call_md(viewer.token), timeout=CALL_TIMEOUT
        )
        return reply

    async def counts(viewer: Viewer) -> dict[str, str]:
        """Every view's count in one call; "?" each when it cannot be had now."""
        try:
            reply: tpb.CountTicketsResponse = await web.backend.tickets.CountTickets(
                tpb.CountTicketsRequest(queries=[count_request(v, viewer.id) for v in VIEWS]),
                metadata=call_md(viewer.token),
                timeout=CALL_TIMEOUT,
            )
        except grpc.aio.AioRpcError:
            return {v.key: "?" for v in VIEWS}
        return {v.key: str(n) for v, n in zip(VIEWS, reply.counts, strict=True)}

    async def options(viewer: Viewer) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
        """The organisations and agents to filter by (empty when the caller may not list)."""

        async def orgs() -> list[tuple[int, str]]:
            try:
                reply = await web.backend.directory.ListOrganizations(
                    dpb.ListOrganizationsRequest(page_size=OPTIONS_PAGE_SIZE),
                    metadata=call_md(viewer.token),
                    timeout=CALL_TIMEOUT,
                )
            except grpc.aio.AioRpcError:
                return []
            return sorted(
                ((o.id, o.name) for o in reply.organizations), key=lambda p: p[1].casefold()
            )

        async def agents() -> list[tuple[int, str]]:
            try:
                reply = await web.backend.directory.ListAgents(
                    dpb.ListAgentsRequest(page_size=OPTIONS_PAGE_SIZE),
                    metadata=call_md(viewer.token),
                    timeout=CALL_TIMEOUT,
                )
            except grpc.aio.AioRpcError:
                return []
            return sorted(((a.id, a.name) for a in reply.agents), key=lambda p: p[1].casefold())

        found_orgs, found_agents = await asyncio.gather(orgs(), agents())
        return found_orgs, found_agents

    async def table(
        request: Request, viewer: Viewer, view: View, filters: Filters
    ) -> dict[str, Any]:
        """The rows of the view's page, and the link to the next page."""
        words = words_of(request)
        listed = list_request(view, viewer.id, filters)
        if listed is None:
            return {"rows": [], "next_query": ""}
        reply = await list_tickets(viewer, listed)
        tickets = [t for t in reply.tickets if keep(t, filters)]
        found = await plans_for(viewer, {t.organization_id for t in tickets})
        now = datetime.now(UTC)
        return {
            "rows": [row_of(t, found, now, words) for t in tickets],
            "next_query": filters.query(page=reply.next_page_token)
            if reply.next_page_token
            else "",
        }

    def view_of(key: str) -> View | None:
        return VIEW_BY_KEY.get(key)

    def bad_filter(request: Request, err: BadFilter) -> Response:
        return web.page(
            request,
            "error.html",
            web._(request, "Please check the form"),
            status_code=400,
            heading=web._(request, "Please check the form"),
            message=web._(
                request,
                "This filter has a value the queue does not know: {field}.",
                field=err.field,
            ),
            retry="",
        )

    def unavailable(request: Request) -> Response:
        return web.page(
            request,
            "error.html",
            web._(request, "The help desk is not answering"),
            status_code=503,
            heading=web._(request, "The help desk is not answering"),
            message=web._(
                request,
                "A service of the help desk is not answering right now: try again in a moment.",
            ),
            retry=here(request),
        )

    def choices(request: Request, labels: dict[Any, str]) -> list[tuple[int, str]]:
        return [(int(k), web._(request, v)) for k, v in labels.items()]

    async def queue_page(request: Request, key: str) -> Response:
        viewer = await web.require_staff(request)
        view = view_of(key)
        if view is None:
            return web.page(
                request,
                "error.html",
                web._(request, "Not found"),
                status_code=404,
                heading=web._(request, "Not found"),
                message=web._(request, "There is no such page, or you may not see it."),
                retry="",
            )
        try:
            filters = parse_filters(request.query_params)
        except BadFilter as err:
            return bad_filter(request, err)
        try:
            found_counts, body, (orgs, agents) = await asyncio.gather(
                counts(viewer), table(request, viewer, view, filters), options(viewer)
            )
        except grpc.aio.AioRpcError as err:
            if err.code() in UNAVAILABLE:
                return unavailable(request)
            if err.code() == grpc.StatusCode.PERMISSION_DENIED:
                return web.page(
                    request,
                    "agent/queues_not_yours.html",
                    web._(request, "Queues"),
                    status_code=403,
                    nav="queues",
                )
            raise
        return web.page(
            request,
            "agent/queues.html",
            web._(request, view.label),
            nav="queues",
            view=view,
            views=VIEWS,
            counts=found_counts,
            filters=filters,
            filter_query=filters.query(page=""),
            organizations=orgs,
            agents=agents,
            priorities=choices(request, PRIORITY),
            criticalities=choices(request, CRITICALITY),
            statuses=choices(request, STATUS),
            kinds=choices(request, KIND),
            levels=choices(request, LEVEL),
            orders=[(k, web._(request, label)) for k, (_v, label) in ORDERS.items()],
            **body,
        )

    @router.get("/agent/")
    async def start(request: Request) -> Response:
        viewer = await web.require_staff(request)
        if viewer.role == "SALES":  # no ticket queues: the sales office's own list
            return web.redirect(request, "/agent/sales")
        return await queue_page(request, DEFAULT_VIEW)

    @router.get("/agent")
    async def start_no_slash(request: Request) -> Response:
        return web.redirect(request, "/agent/")

    @router.get("/agent/queues/counts")
    async def counts_fragment(request: Request) -> Response:
        viewer = await web.require_staff(request)
        current = request.query_params.get("view", DEFAULT_VIEW)
        try:
            filters = parse_filters(request.query_params)
        except BadFilter:
            filters = Filters()
        return web.page(
            request,
            "agent/_queue_views.html",
            "",
            views=VIEWS,
            view=view_of(current) or VIEW_BY_KEY[DEFAULT_VIEW],
            counts=await counts(viewer),
            filter_query=filters.query(page=""),
        )

    @router.get("/agent/queues/{key}")
    async def queue(request: Request, key: str) -> Response:
        return await queue_page(request, key)

    @router.get("/agent/queues/{key}/table")
    async def table_fragment(request: Request, key: str) -> Response:
        viewer = await web.require_staff(request)
        view = view_of(key)
        if view is None:
            return Response(status_code=404)
        try:
            filters = parse_filters(request.query_params)
        except BadFilter as err:
            return bad_filter(request, err)
        return web.page(
            request,
            "agent/_queue_table.html",
            "",
            view=view,
            filters=filters,
            **await table(request, viewer, view, filters),
        )

    return router
