"""The portal's sales office (seeds 000/003/004): a signed-in customer asks for a quote,
training or optimisation days, or a customisation; follows their requests (status, owner,
the conversation); and downloads the current price list.

Every call carries the customer's token: the sales service shows each customer only the
requests they made (a referent: their organisation's); any other is NOT_FOUND."""

from __future__ import annotations

from typing import Any

import grpc
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from helpdesk.v1 import sales_pb2 as spb
from services.gateway import sales_views as sv
from services.gateway.backend import CALL_TIMEOUT, call_md
from services.gateway.downloads import file_response
from services.gateway.errors import UNAVAILABLE, failure
from services.gateway.forms import fields, new_request_id, read_form
from services.gateway.web import Web

PAGE_SIZE = 100
# The portal's three forms: the kind each one sends, its heading, and whether it asks
# for the preferred dates.
FORMS: dict[str, tuple[spb.SalesRequestKind.ValueType, str, bool]] = {
    "quote": (spb.SALES_REQUEST_KIND_DEVELOPMENT_QUOTE, "Request a quote", False),
    "training": (spb.SALES_REQUEST_KIND_TRAINING, "Request training", True),
    "customisation": (spb.SALES_REQUEST_KIND_CUSTOMISATION, "Request a customisation", True),
}
FORM_FIELDS = ("request_id", "subject", "message", "preferred_dates")
NOTICES = {"sent": "Thank you: your request has reached the sales office, who will contact you."}


def routes(web: Web) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def _(request: Request, words: str, **values: Any) -> str:
        return web._(request, words, **values)

    error_page = web.error_page

    @router.get("/sales")
    async def my_requests(request: Request) -> Response:
        """My requests to the sales office, newest first, with status and owner."""
        viewer = await web.require(request)
        listed: spb.ListSalesRequestsResponse = await web.backend.sales.ListSalesRequests(
            spb.ListSalesRequestsRequest(
                page_size=PAGE_SIZE, page_token=request.query_params.get("page", "")[:500]
            ),
            metadata=call_md(viewer.token),
            timeout=CALL_TIMEOUT,
        )
        key = request.query_params.get("n", "")
        locale = web.locale(request)
        return web.page(
            request,
            "sales_requests.html",
            _(request, "My requests to the sales office"),
            nav="sales",
            rows=[sv.row_view(r, locale) for r in listed.requests],
            next_page=listed.next_page_token,
            notice=_(request, NOTICES[key]) if key in NOTICES else "",
        )

    def form_page(
        request: Request, key: str, values: dict[str, Any], status_code: int = 200, **extra: Any
    ) -> HTMLResponse:
        _kind, heading, with_dates = FORMS[key]
        return web.page(
            request,
            "sales_form.html",
            _(request, heading),
            status_code=status_code,
            nav="sales",
            heading=_(request, heading),
            key=key,
            with_dates=with_dates,
            form=values,
            **extra,
        )

    @router.get("/sales/new/{key}")
    async def new_request_page(request: Request, key: str) -> Response:
        await web.require(request)
        if key not in FORMS:
            return error_page(
                request,
                404,
                "Not found",
                _(request, "There is no such page, or you may not see it."),
            )
        values: dict[str, Any] = {name: "" for name in FORM_FIELDS}
        values["request_id"] = new_request_id()
        return form_page(request, key, values)

    @router.post("/sales/new/{key}")
    async def new_request(request: Request, key: str) -> Response:
        """One request per form (its request_id): a double-clicked Send makes one."""
        viewer = await web.require(request)
        form = await read_form(request)
        web.check_csrf(request, form)
        if key not in FORMS:
            return error_page(
                request,
                404,
                "Not found",
                _(request, "There is no such page, or you may not see it."),
            )
        kind, _heading, with_dates = FORMS[key]
        values = fields(form, *FORM_FIELDS)
        try:
            created: spb.SalesRequest = await web.backend.sales.CreateSalesRequest(
                spb.CreateSalesRequestRequest(
                    request_id=values["request_id"][:150] or new_request_id(),
                    kind=kind,
                    subject=values["subject"],
                    message=values["message"],
                    preferred_dates=values["preferred_dates"] if with_dates else "",
                    locale=web.locale(request),
                ),
                metadata=call_md(viewer.token),
                timeout=CALL_TIMEOUT,
            )
        except grpc.aio.AioRpcError as err:
            if err.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
                raise
            f = failure(err)
            message = f.message
            if err.code() in UNAVAILABLE:
                message = _(
                    request,
                    "A service of the help desk is not answering right now. What you wrote is "
                    "kept below: try again in a moment.",
                )
            return form_page(
                request, key, values, f.http_status, error=message, error_field=f.field
            )
        return web.redirect(request, f"/sales/{created.id}?n=sent")

    @router.get("/sales/{request_id}")
    async def one_request(request: Request, request_id: str) -> Response:
        """One request and its conversation (what the requester wrote and was answered)."""
        viewer = await web.require(request)
        found: spb.SalesRequest = await web.backend.sales.GetSalesRequest(
            spb.GetSalesRequestRequest(id=request_id[:100]),
            metadata=call_md(viewer.token),
            timeout=CALL_TIMEOUT,
        )
        locale = web.locale(request)
        key = request.query_params.get("n", "")
        return web.page(
            request,
            "sales_request.html",
            f"{sv.number(found)} {found.subject}",
            nav="sales",
            item=sv.row_view(found, locale),
            messages=sv.conversation(found, locale, customer=True),
            notice=_(request, NOTICES[key]) if key in NOTICES else "",
        )

    @router.get("/price-list")
    async def price_list(request: Request) -> Response:
        """The current price list, or a plain "no price list yet"."""
        viewer = await web.require(request)
        current = None
        try:
            latest: spb.PriceList = await web.backend.sales.GetPriceList(
                spb.GetPriceListRequest(), metadata=call_md(viewer.token), timeout=CALL_TIMEOUT
            )
            current = sv.price_list_view(latest, web.locale(request))
        except grpc.aio.AioRpcError as err:
            if err.code() != grpc.StatusCode.NOT_FOUND:
                raise
        return web.page(
            request, "price_list.html", _(request, "Price list"), nav="sales", current=current
        )

    @router.get("/price-list/download")
    async def price_list_download(request: Request) -> Response:
        """The latest version (or ``?version=n``) as a PDF download."""
        viewer = await web.require(request)
        raw = request.query_params.get("version", "0")
        version = int(raw) if raw.isdigit() and len(raw) < 9 else 0
        found: spb.PriceList = await web.backend.sales.GetPriceList(
            spb.GetPriceListRequest(version=version, with_content=True),
            metadata=call_md(viewer.token),
            timeout=CALL_TIMEOUT,
        )
        return file_response(found.filename or "price-list.pdf", "application/pdf", found.content)

    return router
