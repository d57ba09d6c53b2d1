"""The ticket workspace: ``/agent/tickets/<id>`` with the whole conversation, the clocks,
the customer and their contract, the history, and every action on the ticket; the
conversation and the status panel refresh themselves when the live feed says the ticket
changed. Every action is one RPC with the agent's token (``ticket_actions``); a refusal
is shown with the RPC's own words and its HTTP status, and changes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

import grpc
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from starlette.datastructures import FormData

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import tickets_pb2 as tpb
from services.gateway.agent import ticket_view as tv
from services.gateway.agent.ticket_actions import (
    ACTIONS,
    NOTICES,
    WITH_FILES,
    BadInput,
    Call,
)
from services.gateway.backend import CALL_TIMEOUT, call_md
from services.gateway.downloads import download_response
from services.gateway.errors import UNAVAILABLE, failure
from services.gateway.forms import attachments, new_request_id, read_form, uploads
from services.gateway.texts import CRITICALITY, PRIORITY
from services.gateway.web import Viewer, Web

T = TypeVar("T")
# Errors the application's handlers turn into their pages (sign-in, 404).
PASSED_ON = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.NOT_FOUND)
OPEN_STATUSES = [
    pb.TICKET_STATUS_NEW,
    pb.TICKET_STATUS_OPEN,
    pb.TICKET_STATUS_PENDING,
    pb.TICKET_STATUS_ON_HOLD,
    pb.TICKET_STATUS_SOLVED,
]


async def _optional(call: Awaitable[T]) -> T | None:
    """What the page can do without (a developer may not read the organisation)."""
    try:
        return await call
    except grpc.aio.AioRpcError as err:
        if err.code() in (grpc.StatusCode.UNAUTHENTICATED, *UNAVAILABLE):
            raise
        return None


def routes(web: Web) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def _(request: Request, words: str, **values: Any) -> str:
        return web._(request, words, **values)

    async def load_ticket(viewer: Viewer, ticket_id: int) -> pb.Ticket:
        t: pb.Ticket = await web.backend.tickets.GetTicket(
            tpb.GetTicketRequest(id=ticket_id), metadata=call_md(viewer.token), timeout=CALL_TIMEOUT
        )
        return t

    async def load_comments(viewer: Viewer, ticket_id: int) -> list[pb.Comment]:
        reply: tpb.ListCommentsResponse = await web.backend.tickets.ListComments(
            tpb.ListCommentsRequest(ticket_id=ticket_id, include_internal=True),
            metadata=call_md(viewer.token),
            timeout=CALL_TIMEOUT,
        )
        return list(reply.comments)

    async def load_contract(viewer: Viewer, organization_id: int) -> dpb.Contract | None:
        return await _optional(
            web.backend.directory.GetContract(
                dpb.GetContractRequest(organization_id=organization_id),
                metadata=call_md(viewer.token),
                timeout=CALL_TIMEOUT,
            )
        )

    def clocks(request: Request, t: pb.Ticket, contract: dpb.Contract | None) -> list[tv.ClockView]:
        plan = contract.sla_plan if contract is not None else None
        return tv.clock_views(t, web.locale(request), tv.target_seconds(plan, t.priority))

    async def merge_found(viewer: Viewer, t: pb.Ticket, q: str) -> list[pb.Ticket]:
        """Tickets to merge into: by ID (``42`` or ``#42``) or by words of the subject."""
        q = q.strip()[:200]
        if not q:
            return []
        md = call_md(viewer.token)
        digits = q.removeprefix("#")
        if digits.isdigit():
            found = await _optional(
                web.backend.tickets.GetTicket(
                    tpb.GetTicketRequest(id=int(digits)), metadata=md, timeout=CALL_TIMEOUT
                )
            )
            return tv.merge_candidates(t, [found] if found is not None else [])
        listed: tpb.ListTicketsResponse = await web.backend.tickets.ListTickets(
            tpb.ListTicketsRequest(
                organization_id=t.organization_id,
                statuses=OPEN_STATUSES,
                subject_contains=q,
                page_size=20,
            ),
            metadata=md,
            timeout=CALL_TIMEOUT,
        )
        return tv.merge_candidates(t, listed.tickets)

    async def page(
        request: Request,
        ticket_id: int,
        status_code: int = 200,
        error: str = "",
        error_field: str = "",
        kept: dict[str, str] | None = None,
        takeover: int = 0,
    ) -> HTMLResponse:
        viewer = await web.require_staff(request)
        locale = web.locale(request)
        md = call_md(viewer.token)
        t = await load_ticket(viewer, ticket_id)
        comments, history, org, contract, agents, contacts = await asyncio.gather(
            load_comments(viewer, ticket_id),
            _optional(
                web.backend.tickets.GetTicketHistory(
                    tpb.GetTicketHistoryRequest(ticket_id=ticket_id),
                    metadata=md,
                    timeout=CALL_TIMEOUT,
                )
            ),
            _optional(
                web.backend.directory.GetOrganization(
                    dpb.GetOrganizationRequest(id=t.organization_id),
                    metadata=md,
                    timeout=CALL_TIMEOUT,
                )
            ),
            load_contract(viewer, t.organization_id),
            _optional(
                web.backend.directory.ListAgents(
                    dpb.ListAgentsRequest(page_size=500), metadata=md, timeout=CALL_TIMEOUT
                )
            ),
            _optional(
                web.backend.directory.ListContacts(
                    dpb.ListContactsRequest(organization_id=t.organization_id, page_size=500),
                    metadata=md,
                    timeout=CALL_TIMEOUT,
                )
            ),
        )
        people = list(contacts.contacts) if contacts is not None else []
        requester = next((c for c in people if c.id == t.requester_id), None)
        following = {f.contact_id for f in t.followers}
        merge_q = request.query_params.get("merge_q", "")[:200] if request.method == "GET" else ""
        public = [
            c
            for c in comments
            if c.visibility == pb.COMMENT_VISIBILITY_PUBLIC
            and c.author_kind == pb.AUTHOR_KIND_AGENT
        ]
        key = request.query_params.get("n", "") if request.method == "GET" else ""
        return web.page(
            request,
            "agent/ticket.html",
            f"{t.display_id or '#' + str(t.id)} {t.subject}",
            status_code=status_code,
            nav="queues",
            t=t,
            facts=tv.facts(t, locale),
            entries=tv.conversation(t, comments, locale),
            clocks=clocks(request, t, contract),
            milestones=tv.milestone_views(t, locale),
            history=tv.history_lines(list(history.events), locale) if history else [],
            org=org,
            contract=contract,
            calendar=tv.calendar_lines(contract.calendar, locale) if contract else [],
            policy=tv.label(tv.POLICIES, contract.closed_ticket_policy, locale)
            if contract and contract.closed_ticket_policy in tv.POLICIES
            else "",
            requester=requester,
            # Developers take programming tickets, not support tickets.
            agents=[a for a in agents.agents if a.role != pb.AGENT_ROLE_DEVELOPER]
            if agents is not None
            else [],
            contacts=people,
            candidates_to_follow=[c for c in people if c.id not in following],
            answers=public,
            merge_q=merge_q,
            merge_found=await merge_found(viewer, t, merge_q) if merge_q else [],
            choices={
                "priority": tv.choices(PRIORITY, locale),
                "criticality": tv.choices(CRITICALITY, locale),
                "kind": tv.choices(tv.KINDS, locale),
                "level": tv.choices(tv.LEVELS, locale),
                "urgency": tv.choices(tv.URGENCIES, locale),
                "interaction": tv.choices(tv.INTERACTIONS, locale),
                "direction": tv.choices(tv.DIRECTIONS, locale),
                "status": tv.choices(tv.STATUS_MOVES, locale),
            },
            closed=t.status == pb.TICKET_STATUS_CLOSED,
            mine=t.assignee_id == viewer.id,
            kept=kept or {},
            takeover=takeover,
            request_id=new_request_id(),
            notice=_(request, NOTICES[key]) if key in NOTICES else "",
            error=error,
            error_field=error_field,
            **web.limits(request),
        )

    @router.get("/agent/tickets/{ticket_id:int}")
    async def ticket(request: Request, ticket_id: int) -> Response:
        return await page(request, ticket_id)

    @router.get("/agent/tickets/{ticket_id:int}/conversation")
    async def conversation(request: Request, ticket_id: int) -> Response:
        """The conversation alone, swapped in when the ticket changes (never the reply)."""
        viewer = await web.require_staff(request)
        try:
            t = await load_ticket(viewer, ticket_id)
            comments = await load_comments(viewer, ticket_id)
        except grpc.aio.AioRpcError as err:
            if err.code() in UNAVAILABLE:  # the page keeps what it shows
                return Response(status_code=204)
            raise
        return web.page(
            request,
            "agent/_ticket_conversation.html",
            t.subject,
            t=t,
            entries=tv.conversation(t, comments, web.locale(request)),
        )

    @router.get("/agent/tickets/{ticket_id:int}/state")
    async def state(request: Request, ticket_id: int) -> Response:
        """The status, assignee and clocks panel alone, swapped in like the conversation."""
        viewer = await web.require_staff(request)
        try:
            t = await load_ticket(viewer, ticket_id)
            contract = await load_contract(viewer, t.organization_id)
        except grpc.aio.AioRpcError as err:
            if err.code() in UNAVAILABLE:
                return Response(status_code=204)
            raise
        locale = web.locale(request)
        return web.page(
            request,
            "agent/_ticket_state.html",
            t.subject,
            t=t,
            facts=tv.facts(t, locale),
            clocks=clocks(request, t, contract),
            milestones=tv.milestone_views(t, locale),
        )

    @router.get("/agent/tickets/{ticket_id:int}/merge-candidates")
    async def merge_candidates(request: Request, ticket_id: int) -> Response:
        viewer = await web.require_staff(request)
        t = await load_ticket(viewer, ticket_id)
        q = request.query_params.get("merge_q", "")[:200]
        return web.page(
            request,
            "agent/_ticket_merge_candidates.html",
            t.subject,
            t=t,
            merge_q=q,
            merge_found=await merge_found(viewer, t, q),
        )

    @router.get("/agent/tickets/{ticket_id:int}/attachments/{attachment_id}")
    async def download(request: Request, ticket_id: int, attachment_id: str) -> StreamingResponse:
        viewer = await web.require_staff(request)
        meta, chunks = await web.backend.download(viewer.token, ticket_id, attachment_id[:64])
        return download_response(meta, chunks, inline=request.query_params.get("inline") == "1")

    def kept_values(form: FormData, action: str) -> dict[str, str]:
        """What was written in the refused form, shown again in it."""
        kept = {k: v[:10_000] for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}
        kept["action"] = action
        return kept

    def retry_page(request: Request, ticket_id: int, action: str, kept: dict[str, str]) -> Response:
        """503: the services do not answer; what was written is kept, to send again."""
        return web.page(
            request,
            "agent/ticket_retry.html",
            _(request, "The help desk is not answering"),
            status_code=503,
            ticket_id=ticket_id,
            action=action,
            kept=kept,
            message=kept.get("message") or kept.get("summary") or "",
            **web.limits(request),
            error=_(
                request,
                "A service of the help desk is not answering right now. What you wrote is "
                "kept below: try again in a moment.",
            )
            + (
                " " + _(request, "Attached files must be chosen again.")
                if action in WITH_FILES
                else ""
            ),
        )

    async def act(request: Request, ticket_id: int, action: str) -> Response:
        viewer = await web.require_staff(request)
        form = await read_form(request)
        web.check_csrf(request, form)
        files = await attachments(uploads(form)) if action in WITH_FILES else []
        kept = kept_values(form, action)
        call = Call(web.backend, viewer.token, viewer.id, ticket_id, form, files)
        try:
            done = await ACTIONS[action](call)
        except BadInput as bad:
            return await refused_page(request, ticket_id, 400, bad.message, bad.field, kept)
        except grpc.aio.AioRpcError as err:
            if err.code() in PASSED_ON:
                raise
            if err.code() in UNAVAILABLE:
                return retry_page(request, ticket_id, action, kept)
            f = failure(err)
            takeover = 0
            if action in ("take", "assign") and err.code() == grpc.StatusCode.FAILED_PRECONDITION:
                takeover = viewer.id if action == "take" else call.number("assignee", False)
            return await refused_page(
                request, ticket_id, f.http_status, f.message, f.field, kept, takeover
            )
        anchor = "#conversation" if action == "comment" else ""
        return web.redirect(request, f"/agent/tickets/{done.ticket_id}?n={done.notice}{anchor}")

    async def refused_page(
        request: Request,
        ticket_id: int,
        status: int,
        message: str,
        field: str,
        kept: dict[str, str],
        takeover: int = 0,
    ) -> Response:
        try:
            return await page(request, ticket_id, status, message, field, kept, takeover)
        except grpc.aio.AioRpcError as err:
            if err.code() in UNAVAILABLE:
                return retry_page(request, ticket_id, kept.get("action", ""), kept)
            raise

    def action_route(action: str) -> None:
        async def handler(request: Request, ticket_id: int) -> Response:
            return await act(request, ticket_id, action)

        router.add_api_route(
            f"/agent/tickets/{{ticket_id:int}}/{action}", handler, methods=["POST"], name=action
        )

    for action in ACTIONS:  # one route each: the others' routes under the ticket stay theirs
        action_route(action)
    return router
