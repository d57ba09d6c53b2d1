"""The developers' pages (seed 002, second level): the programming-ticket queue (HIGH
first, as DevEscalationService orders it) and one programming ticket with its moves:
start, schedule, fix, ship (with an optional remote-update window) and cancel."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import grpc
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import dev_escalation_pb2 as epb
from helpdesk.v1 import directory_pb2 as dpb
from services.gateway.agent.tool_pages import (
    Tools,
    bounded_int,
    local_day_start,
    may,
    parse_day,
    parse_local_moment,
    timestamp,
)
from services.gateway.forms import read_form, text
from services.gateway.texts import moment, translate
from services.gateway.views import when
from services.gateway.web import Viewer

URGENCY = {
    epb.PROG_URGENCY_HIGH: "High",
    epb.PROG_URGENCY_AVERAGE: "Average",
    epb.PROG_URGENCY_LOW: "Low",
    epb.PROG_URGENCY_SECONDARY: "Secondary",
}
PROG_STATUS = {
    epb.PROG_STATUS_OPEN: "Open",
    epb.PROG_STATUS_SCHEDULED: "Scheduled",
    epb.PROG_STATUS_IN_PROGRESS: "In progress",
    epb.PROG_STATUS_FIXED: "Fixed",
    epb.PROG_STATUS_RELEASED: "Released",
    epb.PROG_STATUS_CANCELLED: "Cancelled",
}
ACTIVE = [
    epb.PROG_STATUS_OPEN,
    epb.PROG_STATUS_SCHEDULED,
    epb.PROG_STATUS_IN_PROGRESS,
    epb.PROG_STATUS_FIXED,
]
# Which moves each status allows (the workflow decides; this only hides the impossible).
MOVES = {
    epb.PROG_STATUS_OPEN: ("start", "schedule", "cancel"),
    epb.PROG_STATUS_SCHEDULED: ("start", "fix", "cancel"),
    epb.PROG_STATUS_IN_PROGRESS: ("fix", "cancel"),
    epb.PROG_STATUS_FIXED: ("ship", "cancel"),
}
NOTICES = {
    "start": "Work is started.",
    "schedule": "It is scheduled.",
    "fix": "It is marked fixed.",
    "ship": "The update is shipped: the support ticket comes back to the help desk to verify.",
    "cancel": "It is cancelled: the support ticket comes back to the help desk.",
}


def labels(p: epb.ProgrammingTicket, locale: str) -> dict[str, str]:
    def at(ts: Any) -> str:
        moment_at = when(ts)
        return moment(moment_at, locale) if moment_at else ""

    return {
        "urgency": translate(locale, URGENCY.get(p.urgency, "")),
        "urgency_key": epb.ProgUrgency.Name(p.urgency).removeprefix("PROG_URGENCY_").lower(),
        "status": translate(locale, PROG_STATUS.get(p.status, "")),
        "status_key": epb.ProgStatus.Name(p.status).removeprefix("PROG_STATUS_").lower(),
        "created": at(p.created_at),
        "planned": at(p.planned_date),
        "start_due": at(p.start_work_due),
        "window_start": at(p.remote_update.starts_at),
        "window_end": at(p.remote_update.ends_at),
    }


def routes(tools: Tools) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    web, backend = tools.web, tools.backend
    _ = tools._

    async def developers(viewer: Viewer) -> list[dpb.Agent]:
        """For an administrator, who must name the developer of each move."""
        if viewer.role != "ADMIN":
            return []
        reply = await backend.directory.ListAgents(
            dpb.ListAgentsRequest(page_size=500), **tools.call(viewer)
        )
        return [
            a for a in reply.agents if a.role in (pb.AGENT_ROLE_DEVELOPER, pb.AGENT_ROLE_TEAM_LEAD)
        ]

    @router.get("/agent/development")
    async def queue(request: Request) -> Response:
        viewer = await web.require_staff(request)
        if not may(viewer, "dev", "ListProgrammingTickets"):
            return tools.forbidden(request)
        show = request.query_params.get("show", "")
        statuses = [] if show == "all" else ACTIVE
        locale = web.locale(request)
        try:
            reply = await backend.dev.ListProgrammingTickets(
                epb.ListProgrammingTicketsRequest(statuses=statuses, page_size=500),
                **tools.call(viewer),
            )
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.UNAUTHENTICATED:
                raise
            return tools.refusal(request, err)
        rows = [(p, labels(p, locale)) for p in reply.tickets]
        return web.page(
            request,
            "agent/dev_queue.html",
            _(request, "Development"),
            nav="development",
            rows=rows,
            show=show,
        )

    async def ticket_page(
        request: Request,
        viewer: Viewer,
        prog_id: int,
        status_code: int = 200,
        error: str = "",
        error_field: str = "",
        values: dict[str, str] | None = None,
        tried: str = "",
    ) -> Response:
        # 503: the service may not answer a read either; the move's form comes back with
        # what was written, without the ticket's details.
        down = status_code == 503
        p = (
            epb.ProgrammingTicket(id=prog_id)
            if down
            else await backend.dev.GetProgrammingTicket(
                epb.GetProgrammingTicketRequest(id=prog_id), **tools.call(viewer)
            )
        )
        key = request.query_params.get("n", "")
        return web.page(
            request,
            "agent/dev_ticket.html",
            f"{_(request, 'Programming ticket')} {p.id}",
            status_code=status_code,
            nav="development",
            p=p,
            view=labels(p, web.locale(request)),
            moves=(tried,) if down else MOVES.get(p.status, ()),
            developers=[] if down else await developers(viewer),
            form=values or {},
            notice=_(request, NOTICES[key]) if key in NOTICES and not error else "",
            error=error,
            error_field=error_field,
        )

    @router.get("/agent/development/{prog_id:int}")
    async def one(request: Request, prog_id: int) -> Response:
        viewer = await web.require_staff(request)
        if not may(viewer, "dev", "GetProgrammingTicket"):
            return tools.forbidden(request)
        try:
            return await ticket_page(request, viewer, prog_id)
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.UNAUTHENTICATED:
                raise
            return tools.refusal(request, err)

    Move = Callable[[Any, int, FormData, int], Awaitable[object]]

    async def start(viewer: Viewer, prog_id: int, form: FormData, dev: int) -> object:
        return await backend.dev.StartWork(
            epb.StartWorkRequest(id=prog_id, developer_id=dev), **tools.call(viewer)
        )

    async def schedule(viewer: Viewer, prog_id: int, form: FormData, dev: int) -> object:
        planned = parse_day(text(form, "planned_date"))
        return await backend.dev.Schedule(
            epb.ScheduleRequest(
                id=prog_id,
                target_release=text(form, "target_release")[:200],
                planned_date=timestamp(local_day_start(planned) if planned else None),
                developer_id=dev,
            ),
            **tools.call(viewer),
        )

    async def fix(viewer: Viewer, prog_id: int, form: FormData, dev: int) -> object:
        return await backend.dev.MarkFixed(
            epb.MarkFixedRequest(
                id=prog_id,
                fix_version=text(form, "fix_version")[:200],
                notes=text(form, "notes")[:10000],
                developer_id=dev,
            ),
            **tools.call(viewer),
        )

    async def ship(viewer: Viewer, prog_id: int, form: FormData, dev: int) -> object:
        starts = parse_local_moment(text(form, "window_start"))
        ends = parse_local_moment(text(form, "window_end"))
        if starts and not ends:
            ends = starts + timedelta(hours=1)
        window = (
            epb.RemoteUpdateWindow(starts_at=timestamp(starts), ends_at=timestamp(ends))
            if starts
            else None
        )
        return await backend.dev.ShipUpdate(
            epb.ShipUpdateRequest(
                id=prog_id,
                release_notes=text(form, "release_notes")[:10000],
                remote_update=window,
                developer_id=dev,
            ),
            **tools.call(viewer),
        )

    async def cancel(viewer: Viewer, prog_id: int, form: FormData, dev: int) -> object:
        return await backend.dev.Cancel(
            epb.CancelProgrammingTicketRequest(
                id=prog_id, reason=text(form, "reason")[:2000], developer_id=dev
            ),
            **tools.call(viewer),
        )

    actions: dict[str, Move] = {
        "start": start,
        "schedule": schedule,
        "fix": fix,
        "ship": ship,
        "cancel": cancel,
    }
    FIELDS = (
        "target_release",
        "planned_date",
        "fix_version",
        "notes",
        "release_notes",
        "window_start",
        "window_end",
        "reason",
    )

    @router.post("/agent/development/{prog_id:int}/{action}")
    async def act(request: Request, prog_id: int, action: str) -> Response:
        viewer = await web.require_staff(request)
        form = await read_form(request)
        web.check_csrf(request, form)
        move = actions.get(action)
        if move is None:
            return tools.message_page(
                request,
                404,
                _(request, "Not found"),
                _(request, "There is no such page, or you may not see it."),
            )
        values = {name: text(form, name) for name in FIELDS}
        bad_window = (
            values["window_start"] and not parse_local_moment(values["window_start"])
        ) or (values["window_end"] and not parse_local_moment(values["window_end"]))
        try:
            if bad_window:
                return await ticket_page(
                    request,
                    viewer,
                    prog_id,
                    400,
                    _(request, "The remote-update window is not a valid date and time."),
                    "remote_update",
                    values,
                )
            await move(viewer, prog_id, form, bounded_int(text(form, "developer_id")))
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.UNAUTHENTICATED:
                raise
            status, message, field = tools.form_error(request, err)
            try:
                return await ticket_page(
                    request, viewer, prog_id, status, message, field, values, action
                )
            except grpc.aio.AioRpcError as again:
                return tools.refusal(request, again)
        return web.redirect(request, f"/agent/development/{prog_id}?n={action}")

    return router
