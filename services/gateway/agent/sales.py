"""The sales office in the console (seeds 003/004): ``/agent/sales`` lists the requests
(filters: status, kind, mine, unassigned); a request's page shows its conversation and
lets the sales office take it, assign it (team leads, admins), change its status with a
note and answer the requester by email. ``/agent/admin/price-list`` uploads a new price
list (ADMIN) and lists the older versions.

Every call carries the signed-in person's token: the sales service's access table decides
(SALES, TEAM_LEAD and ADMIN change requests; FRONT_DESK and AGENT read them); the buttons
are shown by the same table, never by a second copy."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import grpc
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import sales_pb2 as spb
from services.gateway import sales_views as sv
from services.gateway.agent.tool_pages import Tools, bounded_int, may
from services.gateway.errors import UNAVAILABLE
from services.gateway.forms import new_request_id, read_form, text, uploads
from services.gateway.web import Viewer, Web

if TYPE_CHECKING:
    from helpdesk.v1.sales_pb2_grpc import SalesServiceAsyncStub

PAGE_SIZE = 100
# The largest price list the sales service takes (sales.proto: at most 20 MiB).
MAX_PRICE_LIST_BYTES = 20 * 1024 * 1024
# Who may own a request: the sales office, and the team leads and admins who stand in.
OWNER_ROLES = (pb.AGENT_ROLE_SALES, pb.AGENT_ROLE_TEAM_LEAD, pb.AGENT_ROLE_ADMIN)
NOTICES = {
    "taken": "The request is yours.",
    "assigned": "The request is assigned.",
    "updated": "The status is changed.",
    "replied": "The answer is sent to the requester by email.",
    "uploaded": "The new price list is the one customers download now.",
}
# Errors the application's handlers turn into their pages (sign-in, 404, 503).
PASSED_ON = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.NOT_FOUND, *UNAVAILABLE)


def routes(web: Web) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    tools = Tools(web)
    _ = tools._

    def sales() -> SalesServiceAsyncStub:
        """The sales service's stub, looked up at each call."""
        return web.backend.sales

    def notice(request: Request) -> str:
        key = request.query_params.get("n", "") if request.method == "GET" else ""
        return _(request, NOTICES[key]) if key in NOTICES else ""

    def options(request: Request, table: dict[Any, str], keys: dict[Any, str]) -> list[Any]:
        return [("", _(request, "All"))] + [(keys[k], _(request, v)) for k, v in table.items()]

    @router.get("/agent/sales")
    async def sales_list(request: Request) -> Response:
        viewer = await web.require_staff(request)
        q = request.query_params
        status, kind, owner = q.get("status", ""), q.get("kind", ""), q.get("owner", "")
        try:
            listed: spb.ListSalesRequestsResponse = await sales().ListSalesRequests(
                spb.ListSalesRequestsRequest(
                    page_size=PAGE_SIZE,
                    page_token=q.get("page", "")[:500],
                    status=sv.STATUS_BY_KEY.get(status, spb.SALES_REQUEST_STATUS_UNSPECIFIED),
                    kind=sv.KIND_BY_KEY.get(kind, spb.SALES_REQUEST_KIND_UNSPECIFIED),
                    owner_id=viewer.id if owner == "mine" else 0,
                    unassigned=owner == "unassigned",
                ),
                **tools.call(viewer),
            )
        except grpc.aio.AioRpcError as err:
            return tools.refusal(request, err)
        locale = web.locale(request)
        return web.page(
            request,
            "agent/sales.html",
            _(request, "Sales"),
            nav="sales",
            notice=notice(request),
            rows=[sv.row_view(r, locale) for r in listed.requests],
            next_page=listed.next_page_token,
            status=status,
            kind=kind,
            owner=owner,
            status_options=options(request, sv.STATUSES, sv.STATUS_KEYS),
            kind_options=options(request, sv.KINDS, sv.KIND_KEYS),
            owner_options=[
                ("", _(request, "All")),
                ("mine", _(request, "Mine")),
                ("unassigned", _(request, "Unassigned")),
            ],
        )

    async def owners(viewer: Viewer) -> list[tuple[int, str]]:
        """Who a team lead may assign a request to; none when the directory is away."""
        try:
            reply: dpb.ListAgentsResponse = await web.backend.directory.ListAgents(
                dpb.ListAgentsRequest(page_size=500), **tools.call(viewer)
            )
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.UNAUTHENTICATED:
                raise
            return []
        found = [(a.id, a.name) for a in reply.agents if a.role in OWNER_ROLES]
        return sorted(found, key=lambda p: p[1].casefold())

    async def request_page(
        request: Request,
        viewer: Viewer,
        request_id: str,
        status_code: int = 200,
        **extra: Any,
    ) -> HTMLResponse:
        found: spb.SalesRequest = await sales().GetSalesRequest(
            spb.GetSalesRequestRequest(id=request_id[:100]), **tools.call(viewer)
        )
        locale = web.locale(request)
        can_change = may(viewer, "sales", "AssignSalesRequest")
        can_assign = can_change and viewer.role in ("TEAM_LEAD", "ADMIN")
        context: dict[str, Any] = {
            "nav": "sales",
            "notice": notice(request),
            "r": found,
            "item": sv.row_view(found, locale),
            "messages": sv.conversation(found, locale),
            "contact": {"email": found.sender, "phone": found.phone},
            "can_change": can_change,
            "can_take": can_change and found.owner_id != viewer.id,
            "owners": await owners(viewer) if can_assign else [],
            "status_choices": [(sv.STATUS_KEYS[k], _(request, v)) for k, v in sv.STATUSES.items()],
            "status_key": sv.STATUS_KEYS.get(found.status, ""),
            "reply_request_id": new_request_id(),
            "draft": "",
            "note": "",
        }
        context.update(extra)
        return web.page(
            request,
            "agent/sales_request.html",
            f"{sv.number(found)} {found.subject}",
            status_code=status_code,
            **context,
        )

    @router.get("/agent/sales/{request_id}")
    async def one_request(request: Request, request_id: str) -> Response:
        viewer = await web.require_staff(request)
        return await request_page(request, viewer, request_id)

    async def act(request: Request, request_id: str, done: str, call: Any, **kept: str) -> Response:
        """Run one change; on a refusal the page again, with the service's words and what
        was written kept."""
        viewer = await web.require_staff(request)
        try:
            await call(tools.call(viewer))
        except grpc.aio.AioRpcError as err:
            if err.code() in PASSED_ON:
                raise
            status, message, field = tools.form_error(request, err)
            return await request_page(
                request, viewer, request_id, status, error=message, error_field=field, **kept
            )
        return web.redirect(request, f"/agent/sales/{request_id}?n={done}")

    @router.post("/agent/sales/{request_id}/take")
    async def take(request: Request, request_id: str) -> Response:
        viewer = await web.require_staff(request)
        form = await read_form(request)
        web.check_csrf(request, form)
        return await act(
            request,
            request_id,
            "taken",
            lambda kw: sales().AssignSalesRequest(
                spb.AssignSalesRequestRequest(id=request_id, owner_id=viewer.id), **kw
            ),
        )

    @router.post("/agent/sales/{request_id}/assign")
    async def assign(request: Request, request_id: str) -> Response:
        await web.require_staff(request)
        form = await read_form(request)
        web.check_csrf(request, form)
        owner_id = bounded_int(text(form, "owner_id"))
        return await act(
            request,
            request_id,
            "assigned",
            lambda kw: sales().AssignSalesRequest(
                spb.AssignSalesRequestRequest(
                    id=request_id, owner_id=owner_id, unassign=owner_id == 0
                ),
                **kw,
            ),
        )

    @router.post("/agent/sales/{request_id}/status")
    async def update_status(request: Request, request_id: str) -> Response:
        await web.require_staff(request)
        form = await read_form(request)
        web.check_csrf(request, form)
        note = text(form, "note")
        status = sv.STATUS_BY_KEY.get(text(form, "status"), spb.SALES_REQUEST_STATUS_UNSPECIFIED)
        return await act(
            request,
            request_id,
            "updated",
            lambda kw: sales().UpdateSalesRequest(
                spb.UpdateSalesRequestRequest(id=request_id, status=status, note=note), **kw
            ),
            note=note,
        )

    @router.post("/agent/sales/{request_id}/reply")
    async def reply(request: Request, request_id: str) -> Response:
        """One email per form (its request_id): a retried Send answers once."""
        await web.require_staff(request)
        form = await read_form(request)
        web.check_csrf(request, form)
        body = text(form, "body")
        key = text(form, "request_id")[:150] or new_request_id()
        return await act(
            request,
            request_id,
            "replied",
            lambda kw: sales().ReplyToSalesRequest(
                spb.ReplyToSalesRequestRequest(id=request_id, body=body, request_id=key), **kw
            ),
            draft=body,
        )

    # -- administration: the price list ---------------------------------------------------

    async def price_list_page(
        request: Request, viewer: Viewer, status_code: int = 200, **extra: Any
    ) -> HTMLResponse:
        try:
            listed: spb.ListPriceListsResponse = await sales().ListPriceLists(
                spb.ListPriceListsRequest(), **tools.call(viewer)
            )
        except grpc.aio.AioRpcError as err:
            return tools.refusal(request, err)
        locale = web.locale(request)
        context: dict[str, Any] = {
            "nav": "admin",
            "section": "price_list",
            "notice": notice(request),
            "is_admin": viewer.role == "ADMIN",
            "can_upload": may(viewer, "sales", "UploadPriceList"),
            "versions": [sv.price_list_view(p, locale) for p in listed.price_lists],
            "request_id": new_request_id(),
            "title_value": "",
        }
        context.update(extra)
        return web.page(
            request,
            "agent/admin_price_list.html",
            _(request, "Price list"),
            status_code=status_code,
            **context,
        )

    @router.get("/agent/admin/price-list")
    async def price_lists(request: Request) -> Response:
        viewer = await web.require_staff(request)
        return await price_list_page(request, viewer)

    @router.post("/agent/admin/price-list")
    async def upload_price_list(request: Request) -> Response:
        """A new version; a retried form (its request_id) is the same version."""
        viewer = await web.require_staff(request)
        form = await read_form(request)
        web.check_csrf(request, form)
        title = text(form, "title")
        files = uploads(form, "file")
        if not files:
            return await price_list_page(
                request,
                viewer,
                400,
                error=_(request, "Choose the price list's PDF file."),
                error_field="file",
                title_value=title,
            )
        upload = files[0]
        if (upload.size or 0) > MAX_PRICE_LIST_BYTES:
            return await price_list_page(
                request,
                viewer,
                413,
                error=_(request, "A price list may be at most 20 MiB."),
                error_field="file",
                title_value=title,
            )
        content = await upload.read()
        await upload.close()
        try:
            await sales().UploadPriceList(
                spb.UploadPriceListRequest(
                    title=title,
                    filename=(upload.filename or "price-list.pdf")[-200:],
                    content_type="application/pdf",
                    content=content,
                    request_id=text(form, "request_id")[:150] or new_request_id(),
                ),
                **tools.call(viewer),
            )
        except grpc.aio.AioRpcError as err:
            if err.code() in PASSED_ON:
                raise
            status, message, field = tools.form_error(request, err)
            return await price_list_page(
                request, viewer, status, error=message, error_field=field, title_value=title
            )
        return web.redirect(request, "/agent/admin/price-list?n=uploaded")

    return router
