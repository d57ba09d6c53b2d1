"""Quotes on the web (seed 003): in the console the agent writes a quote on a ticket and
sends it; in the portal the customer reads it, downloads its PDF and accepts or declines.

Both ticket pages load their quotes after the page (htmx), so a slow sales service never
holds the ticket up; without JavaScript the same region is a page of its own. Every call
carries the signed-in person's token: the sales service shows a quote only to the
ticket's organisation and the desk (anyone else: NOT_FOUND, a 404 page)."""

from __future__ import annotations

from typing import Any

import grpc
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import sales_pb2 as spb
from helpdesk.v1 import tickets_pb2 as tpb
from services.gateway import quote_views as qv
from services.gateway.backend import CALL_TIMEOUT, call_md
from services.gateway.downloads import file_response
from services.gateway.errors import UNAVAILABLE, failure
from services.gateway.forms import new_request_id, read_form, text
from services.gateway.web import Viewer, Web

# The console roles that write quotes (the sales service decides each call all the same).
QUOTE_ROLES = frozenset({"AGENT", "TEAM_LEAD", "SALES", "ADMIN"})
MAX_QUOTES = 50
MAX_REASON = 2000
# After an answer the ticket page says what happened (``?quote=accepted``).
ANSWERED = {
    "accepted": "Thank you: you accepted the quote. We will confirm the dates with you.",
    "declined": "You declined the quote: the ticket is solved with your reason.",
}


def routes(web: Web) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def _(request: Request, words: str, **values: Any) -> str:
        return web._(request, words, **values)

    def answered(request: Request) -> str:
        key = request.query_params.get("quote", "")
        return _(request, ANSWERED[key]) if key in ANSWERED else ""

    def fragment(request: Request) -> bool:
        return request.headers.get("HX-Request") == "true"

    async def quotes_of(viewer: Viewer, ticket_id: int) -> list[spb.Quote]:
        listed: spb.ListQuotesResponse = await web.backend.sales.ListQuotes(
            spb.ListQuotesRequest(ticket_id=ticket_id, page_size=MAX_QUOTES),
            metadata=call_md(viewer.token),
            timeout=CALL_TIMEOUT,
        )
        return list(listed.quotes)

    async def ticket_of(viewer: Viewer, ticket_id: int) -> pb.Ticket:
        found: pb.Ticket = await web.backend.tickets.GetTicket(
            tpb.GetTicketRequest(id=ticket_id), metadata=call_md(viewer.token), timeout=CALL_TIMEOUT
        )
        return found

    def said(request: Request, err: grpc.aio.AioRpcError) -> str:
        if err.code() in UNAVAILABLE:
            return _(request, "The quotes are not answering right now: try again in a moment.")
        return failure(err).message

    async def loaded(
        request: Request, viewer: Viewer, ticket_id: int, whole: bool, locale: str
    ) -> tuple[pb.Ticket, list[Any], str]:
        """The ticket (for a whole page), its quotes as shown, and why they could not be
        read: in place on the ticket page a failure is said there, a whole page fails."""
        t = await ticket_of(viewer, ticket_id) if whole else pb.Ticket(id=ticket_id)
        try:
            quotes = [qv.quote_view(q, locale) for q in await quotes_of(viewer, ticket_id)]
        except grpc.aio.AioRpcError as err:
            if whole or err.code() == grpc.StatusCode.UNAUTHENTICATED:
                raise
            return t, [], said(request, err)
        return t, quotes, ""

    # -- portal ---------------------------------------------------------------------

    async def portal_region(
        request: Request,
        ticket_id: int,
        status_code: int = 200,
        error: str = "",
        error_field: str = "",
        reasons: dict[int, str] | None = None,
    ) -> HTMLResponse:
        """The ticket's quotes: in place on the ticket page, or a page of their own."""
        viewer = await web.require(request)
        locale = web.locale(request)
        whole = not fragment(request) or status_code != 200
        t, quotes, load_error = await loaded(request, viewer, ticket_id, whole, locale)
        return web.page(
            request,
            "quotes.html" if whole else "_quotes_region.html",
            f"{_(request, 'Quotes')} {t.display_id or '#' + str(ticket_id)}",
            status_code=status_code,
            nav="tickets",
            t=t,
            quotes=quotes,
            load_error=load_error,
            form_error=error,
            error_field=error_field,
            reasons=reasons or {},
            answered=answered(request),
        )

    @router.get("/tickets/{ticket_id:int}/quotes")
    async def portal_quotes(request: Request, ticket_id: int) -> Response:
        return await portal_region(request, ticket_id)

    @router.get("/tickets/{ticket_id:int}/quotes/{quote_id:int}/pdf")
    async def quote_pdf(request: Request, ticket_id: int, quote_id: int) -> Response:
        """The quote's PDF, always a download; another ticket's number is not found."""
        viewer = await web.require(request)
        q: spb.Quote = await web.backend.sales.GetQuote(
            spb.GetQuoteRequest(id=quote_id, with_pdf=True),
            metadata=call_md(viewer.token),
            timeout=CALL_TIMEOUT,
        )
        if q.ticket_id != ticket_id or not q.pdf:
            return web.page(
                request,
                "error.html",
                _(request, "Not found"),
                status_code=404,
                heading=_(request, "Not found"),
                message=_(request, "There is no such page, or you may not see it."),
                retry="",
            )
        return file_response(f"{q.number or 'quote'}.pdf", "application/pdf", q.pdf)

    @router.post("/tickets/{ticket_id:int}/quotes/{quote_id:int}/accept")
    async def accept(request: Request, ticket_id: int, quote_id: int) -> Response:
        viewer = await web.require(request)
        web.check_csrf(request, await read_form(request))
        answer: spb.Quote = await web.backend.sales.AcceptQuote(
            spb.AcceptQuoteRequest(id=quote_id),
            metadata=call_md(viewer.token),
            timeout=CALL_TIMEOUT,
        )
        return web.redirect(
            request, f"/tickets/{answer.ticket_id or ticket_id}?quote=accepted#quotes"
        )

    @router.post("/tickets/{ticket_id:int}/quotes/{quote_id:int}/decline")
    async def decline(request: Request, ticket_id: int, quote_id: int) -> Response:
        """A reason is required: without one, the quotes again with a 400 and the field."""
        viewer = await web.require(request)
        form = await read_form(request)
        web.check_csrf(request, form)
        reason = text(form, "reason")[:MAX_REASON]
        if not reason:
            return await portal_region(
                request,
                ticket_id,
                400,
                _(request, "Please write why you decline the quote."),
                "reason",
            )
        try:
            answer: spb.Quote = await web.backend.sales.DeclineQuote(
                spb.DeclineQuoteRequest(id=quote_id, reason=reason),
                metadata=call_md(viewer.token),
                timeout=CALL_TIMEOUT,
            )
        except grpc.aio.AioRpcError as err:
            if err.code() != grpc.StatusCode.INVALID_ARGUMENT:
                raise
            f = failure(err)
            return await portal_region(
                request, ticket_id, 400, f.message, f.field, reasons={quote_id: reason}
            )
        return web.redirect(
            request, f"/tickets/{answer.ticket_id or ticket_id}?quote=declined#quotes"
        )

    # -- console --------------------------------------------------------------------

    async def console_region(
        request: Request,
        ticket_id: int,
        status_code: int = 200,
        form: dict[str, Any] | None = None,
        error: str = "",
        error_field: str = "",
    ) -> HTMLResponse:
        """The ticket's quotes and the form of a new one, in the workspace or on their own."""
        viewer = await web.require_staff(request)
        locale = web.locale(request)
        whole = not fragment(request) or status_code != 200
        t, quotes, load_error = await loaded(request, viewer, ticket_id, whole, locale)
        return web.page(
            request,
            "agent/ticket_quotes.html" if whole else "agent/_ticket_quotes_region.html",
            f"{_(request, 'Quotes')} #{ticket_id}",
            status_code=status_code,
            nav="queues",
            t=t,
            quotes=quotes,
            load_error=load_error,
            may_write=viewer.role in QUOTE_ROLES,
            quote_form=form or qv.blank_form(new_request_id()),
            units=[(k, _(request, v)) for k, v in qv.UNITS.items()],
            form_error=error,
            error_field=error_field,
        )

    @router.get("/agent/tickets/{ticket_id:int}/quotes")
    async def console_quotes(request: Request, ticket_id: int) -> Response:
        return await console_region(request, ticket_id)

    def typed(form: FormData) -> dict[str, Any]:
        """What the agent wrote, to send on or to show again."""
        values: dict[str, Any] = {
            name: text(form, name)
            for name in ("request_id", "title", "valid_until", "proposed_dates", "notes")
        }
        values["lines"] = [
            {name: text(form, f"lines[{i}].{name}") for name in qv.LINE_FIELDS}
            for i in range(qv.FORM_LINES)
        ]
        return values

    @router.post("/agent/tickets/{ticket_id:int}/quotes")
    async def make_quote(request: Request, ticket_id: int) -> Response:
        """One quote per form (its request_id): a double click makes one DRAFT."""
        viewer = await web.require_staff(request)
        form = await read_form(request)
        web.check_csrf(request, form)
        values = typed(form)
        lines, rows_used = qv.lines_of(values["lines"])
        try:
            await web.backend.sales.CreateQuote(
                spb.CreateQuoteRequest(
                    request_id=values["request_id"][:150] or new_request_id(),
                    ticket_id=ticket_id,
                    title=values["title"],
                    lines=lines,
                    valid_until=values["valid_until"],
                    proposed_dates=values["proposed_dates"],
                    notes=values["notes"],
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
            field = qv.form_field(f.field, rows_used)
            if field != f.field:
                message = message.replace(f.field, field, 1)
            return await console_region(request, ticket_id, f.http_status, values, message, field)
        return web.redirect(request, f"/agent/tickets/{ticket_id}#quotes")

    @router.post("/agent/tickets/{ticket_id:int}/quotes/{quote_id:int}/send")
    async def send_quote(request: Request, ticket_id: int, quote_id: int) -> Response:
        """DRAFT -> SENT: the customer is emailed; a second click changes nothing."""
        viewer = await web.require_staff(request)
        web.check_csrf(request, await read_form(request))
        try:
            await web.backend.sales.SendQuote(
                spb.SendQuoteRequest(id=quote_id),
                metadata=call_md(viewer.token),
                timeout=CALL_TIMEOUT,
            )
        except grpc.aio.AioRpcError as err:
            if err.code() not in (
                grpc.StatusCode.FAILED_PRECONDITION,
                grpc.StatusCode.INVALID_ARGUMENT,
            ):
                raise
            f = failure(err)
            return await console_region(request, ticket_id, f.http_status, error=f.message)
        return web.redirect(request, f"/agent/tickets/{ticket_id}#quotes")

    return router
