"""The customer portal's pages (seeds 001, 003, 004): sign-in, tickets, replies, the
links of our emails, the survey, and the request form for people who are not customers."""

from __future__ import annotations

import time
from collections import defaultdict, deque
from typing import Any
from urllib.parse import quote

import grpc
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import intake_pb2 as ipb
from services.gateway.downloads import download_response
from services.gateway.errors import UNAVAILABLE, failure
from services.gateway.forms import attachments, fields, new_request_id, read_form, text, uploads
from services.gateway.store import SignIn
from services.gateway.texts import (
    CRITICALITY,
    CRITICALITY_EXPLAINED,
    PRIORITY,
    RATINGS,
    STATUS,
    day,
    locale_of,
)
from services.gateway.views import STATUS_KEYS, row_view, ticket_view, when
from services.gateway.web import (
    LANG_COOKIE,
    SESSION_COOKIE,
    Web,
    client_address,
    here,
    safe_next,
)

# Notices shown after a redirect, by key: the query string never carries free text.
NOTICES = {
    "expired": "Your session has ended: sign in again.",
    "signed_out": "You are signed out.",
    "reset_sent": (
        "If the address belongs to an account, a code is on its way: it is valid for a short "
        "time and works once."
    ),
    "password_reset": "Your password is changed: sign in with it.",
    "password_changed": "Your password is changed.",
    "replied": "Your reply is added.",
    "reopened_by_reply": "Your reply reopened the ticket.",
    "confirmed": "Thank you: the ticket is closed.",
    "reopened": "The ticket is reopened: the help desk will work on it again.",
}
CLOSED_STATUSES = [pb.TICKET_STATUS_CLOSED]
OPEN_STATUSES = [s for s in STATUS if s != pb.TICKET_STATUS_CLOSED]
# The public request form: per client address, this many in this many seconds.
SALES_PER_WINDOW = 5
SALES_WINDOW_SECONDS = 3600


def portal_routes(web: Web) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    backend = web.backend
    sales_seen: dict[str, deque[float]] = defaultdict(deque)

    def _(request: Request, words: str, **values: str) -> str:
        return web._(request, words, **values)

    def notice(request: Request) -> str:
        key = request.query_params.get("n", "")
        return _(request, NOTICES[key]) if key in NOTICES else ""

    def unavailable_page(request: Request, retry: str) -> HTMLResponse:
        return web.page(
            request,
            "error.html",
            _(request, "The help desk is not answering"),
            status_code=503,
            heading=_(request, "The help desk is not answering"),
            message=_(
                request,
                "A service of the help desk is not answering right now: try again in a moment.",
            ),
            retry=retry,
        )

    def form_error(request: Request, err: grpc.aio.AioRpcError) -> tuple[int, str, str]:
        """Status, message and field of a refused form; 503 keeps what was written."""
        if err.code() in UNAVAILABLE:
            message = _(
                request,
                "A service of the help desk is not answering right now. What you wrote is "
                "kept below: try again in a moment.",
            )
            return 503, message + " " + _(request, "Attached files must be chosen again."), ""
        f = failure(err)
        return f.http_status, f.message, f.field

    def refused(
        request: Request, err: grpc.aio.AioRpcError, template: str, title: str, **values: Any
    ) -> Response:
        """The form again, with what was written and why the service refused it."""
        status, message, field = form_error(request, err)
        return web.page(
            request,
            template,
            title,
            status_code=status,
            error=message,
            error_field=field,
            **values,
        )

    # -- start, language ------------------------------------------------------------

    @router.get("/")
    async def start(request: Request) -> Response:
        viewer = await web.viewer(request)
        if viewer is None:
            return web.redirect(request, "/login")
        return web.redirect(request, "/tickets" if viewer.is_contact else "/agent/")

    @router.get("/lang/{locale}")
    async def language(request: Request, locale: str) -> Response:
        response = web.redirect(request, safe_next(request.query_params.get("next"), "/"))
        response.set_cookie(
            LANG_COOKIE, locale_of(locale), max_age=365 * 24 * 3600, samesite="lax", path="/"
        )
        return response

    # -- sign-in --------------------------------------------------------------------

    @router.get("/login")
    async def login_page(request: Request) -> Response:
        signed_in = await web.viewer(request)
        if signed_in:
            home = "/tickets" if signed_in.is_contact else "/agent/"
            return web.redirect(request, safe_next(request.query_params.get("next"), home))
        return web.page(
            request,
            "login.html",
            _(request, "Sign in"),
            nav="login",
            # Empty: after sign-in, staff go to the console and customers to their tickets.
            next=safe_next(request.query_params.get("next"), ""),
            email=request.query_params.get("email", ""),
            notice=notice(request),
        )

    @router.post("/login")
    async def login(request: Request) -> Response:
        form = await read_form(request)
        web.check_csrf(request, form)
        email, password = text(form, "email"), form.get("password")
        next_path = safe_next(text(form, "next"), "")

        def again(status: int, message: str) -> HTMLResponse:
            return web.page(
                request,
                "login.html",
                _(request, "Sign in"),
                status_code=status,
                nav="login",
                next=next_path,
                email=email,
                error=message,
            )

        try:
            reply = await backend.login(
                email, password if isinstance(password, str) else "", client_address(request)
            )
        except grpc.aio.AioRpcError as err:
            if err.code() in UNAVAILABLE:
                return again(503, form_error(request, err)[1])
            message = err.details() or ""
            if (
                err.code() == grpc.StatusCode.UNAUTHENTICATED
                and message == "wrong email or password"
            ):
                message = _(request, "Wrong email or password.")
            return again(failure(err).http_status, message)
        locale = "it"
        if reply.kind == dpb.PRINCIPAL_KIND_CONTACT:
            try:
                contact = await backend.contact(reply.access_token, reply.id)
                locale = locale_of(contact.locale)
            except grpc.aio.AioRpcError:
                pass
        session_id, _row = await web.store.create(
            SignIn(
                kind="CONTACT" if reply.kind == dpb.PRINCIPAL_KIND_CONTACT else "AGENT",
                principal_id=reply.id,
                role=reply.role,
                organization_id=reply.organization_id,
                name=reply.name,
                email=email.lower(),
                locale=locale,
                access_token=reply.access_token,
                refresh_token=reply.refresh_token,
                expires_in_seconds=int(reply.expires_in_seconds),
            )
        )
        if not next_path:
            next_path = "/tickets" if reply.kind == dpb.PRINCIPAL_KIND_CONTACT else "/agent/"
            if reply.role == "SALES":  # the sales office works its own requests
                next_path = "/agent/sales"
        response = web.redirect(request, next_path)
        web.set_session_cookie(request, response, session_id)
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        form = await read_form(request)
        web.check_csrf(request, form)
        session_id = request.cookies.get(SESSION_COOKIE, "")
        if session_id:
            await web.store.end(session_id)
        response = web.redirect(request, "/login?n=signed_out")
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @router.get("/forgot")
    async def forgot_page(request: Request) -> Response:
        return web.page(request, "forgot.html", _(request, "Forgot your password?"), email="")

    @router.post("/forgot")
    async def forgot(request: Request) -> Response:
        form = await read_form(request)
        web.check_csrf(request, form)
        email = text(form, "email")
        try:
            await backend.request_reset(email, client_address(request))
        except grpc.aio.AioRpcError as err:
            return refused(
                request, err, "forgot.html", _(request, "Forgot your password?"), email=email
            )
        return web.redirect(request, f"/reset?email={quote(email)}&n=reset_sent")

    @router.get("/reset")
    async def reset_page(request: Request) -> Response:
        return web.page(
            request,
            "reset.html",
            _(request, "Choose a new password"),
            email=request.query_params.get("email", ""),
            code="",
            notice=notice(request),
        )

    @router.post("/reset")
    async def reset(request: Request) -> Response:
        form = await read_form(request)
        web.check_csrf(request, form)
        email, code = text(form, "email"), text(form, "code")
        new_password = form.get("new_password")
        try:
            await backend.reset_password(
                email,
                code,
                new_password if isinstance(new_password, str) else "",
                client_address(request),
            )
        except grpc.aio.AioRpcError as err:
            return refused(
                request,
                err,
                "reset.html",
                _(request, "Choose a new password"),
                email=email,
                code=code,
            )
        return web.redirect(request, f"/login?email={quote(email)}&n=password_reset")

    @router.get("/account")
    async def account(request: Request) -> Response:
        await web.require(request)
        return web.page(
            request,
            "account.html",
            _(request, "Your account"),
            nav="account",
            notice=notice(request),
        )

    @router.post("/account/password")
    async def change_password(request: Request) -> Response:
        viewer = await web.require(request)
        form = await read_form(request)
        web.check_csrf(request, form)
        current, new = form.get("current_password"), form.get("new_password")
        try:
            await backend.set_password(
                viewer.token,
                viewer.kind_value,
                viewer.id,
                current if isinstance(current, str) else "",
                new if isinstance(new, str) else "",
            )
        except grpc.aio.AioRpcError as err:
            return refused(request, err, "account.html", _(request, "Your account"), nav="account")
        return web.redirect(request, "/account?n=password_changed")

    # -- tickets ----------------------------------------------------------------------

    def status_options(request: Request) -> list[tuple[str, str]]:
        return [
            ("", _(request, "All")),
            ("open", _(request, "Not closed")),
            *((STATUS_KEYS[s], _(request, label)) for s, label in STATUS.items()),
        ]

    @router.get("/tickets")
    async def tickets(request: Request) -> Response:
        viewer = await web.require(request)
        locale = web.locale(request)
        status = request.query_params.get("status", "")
        q = request.query_params.get("q", "").strip()
        wanted = {v: k for k, v in STATUS_KEYS.items()}
        statuses = (
            OPEN_STATUSES if status == "open" else ([wanted[status]] if status in wanted else [])
        )
        try:
            listed = await backend.list_tickets(viewer.token, statuses, page_size=500)
        except grpc.aio.AioRpcError as err:
            if err.code() in UNAVAILABLE:
                return unavailable_page(request, here(request))
            raise
        rows = [row_view(t, locale) for t in listed.tickets]
        if q:
            rows = [r for r in rows if q.lower() in r.subject.lower()]
        if viewer.role == "REFERENT":
            heading = _(request, "Your organisation's tickets")
        elif viewer.is_contact:
            heading = _(request, "My tickets")
        else:
            heading = _(request, "Tickets")
        return web.page(
            request,
            "tickets.html",
            heading,
            nav="tickets",
            heading=heading,
            rows=rows,
            status=status,
            q=q,
            status_options=status_options(request),
            show_requester=any(r.requester_id != viewer.id for r in rows) or not viewer.is_contact,
            notice=notice(request),
        )

    def new_ticket_context(request: Request) -> dict[str, Any]:
        return {
            "criticalities": [
                (str(value), _(request, label), _(request, CRITICALITY_EXPLAINED[value]))
                for value, label in CRITICALITY.items()
            ],
            "priorities": [("", _(request, "Let us decide"))]
            + [(str(value), _(request, label)) for value, label in PRIORITY.items()],
            **web.limits(request),
        }

    async def products(viewer_token: str) -> list[str]:
        try:
            listed = await backend.list_tickets(viewer_token, [], page_size=200)
        except grpc.aio.AioRpcError:
            return []
        return sorted({t.product for t in listed.tickets if t.product})

    NEW_FIELDS = (
        "product",
        "subject",
        "description",
        "version",
        "os",
        "phone",
        "criticality",
        "priority",
    )

    @router.get("/tickets/new")
    async def new_ticket_page(request: Request) -> Response:
        viewer = await web.require(request)
        form = {name: "" for name in NEW_FIELDS}
        form["request_id"] = new_request_id()
        form["criticality"] = str(pb.CRITICALITY_NON_BLOCKING)
        return web.page(
            request,
            "new_ticket.html",
            _(request, "New ticket"),
            form=form,
            products=await products(viewer.token),
            **new_ticket_context(request),
        )

    @router.post("/tickets/new")
    async def new_ticket(request: Request) -> Response:
        viewer = await web.require(request)
        form = await read_form(request)
        web.check_csrf(request, form)
        values = fields(form, "request_id", *NEW_FIELDS)
        values["request_id"] = values["request_id"][:100] or new_request_id()
        files = await attachments(uploads(form))

        raw = values["criticality"]
        criticality = pb.Criticality.ValueType(int(raw) if raw.isdigit() else 0)
        raw = values["priority"]
        priority = pb.Priority.ValueType(int(raw) if raw.isdigit() else 0)

        request_pb = ipb.SubmitWebRequestRequest(
            request_id=values["request_id"],
            requester_email=viewer.email,
            subject=values["subject"],
            description=values["description"],
            product=values["product"],
            version=values["version"],
            os=values["os"],
            phone=values["phone"],
            criticality=criticality if criticality in CRITICALITY else pb.CRITICALITY_UNSPECIFIED,
            priority=priority if priority in PRIORITY else pb.PRIORITY_UNSPECIFIED,
            attachments=files,
        )
        try:
            reply = await backend.submit_web_request(viewer.token, request_pb)
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.UNAUTHENTICATED:
                raise
            return refused(
                request,
                err,
                "new_ticket.html",
                _(request, "New ticket"),
                form=values,
                products=[],
                **new_ticket_context(request),
            )
        return web.redirect(request, f"/tickets/{reply.ticket_id}?created=1")

    async def policy_of(token: str, t: pb.Ticket) -> int:
        if t.status != pb.TICKET_STATUS_CLOSED:
            return 0
        try:
            return (await backend.organization(token, t.organization_id)).closed_ticket_policy
        except grpc.aio.AioRpcError:
            return pb.CLOSED_TICKET_POLICY_FOLLOW_UP

    async def ticket_page(
        request: Request,
        ticket_id: int,
        status_code: int = 200,
        reply: dict[str, str] | None = None,
        error: str = "",
        error_field: str = "",
    ) -> HTMLResponse:
        viewer = await web.require(request)
        locale = web.locale(request)
        t = await backend.ticket(viewer.token, ticket_id)
        comments = await backend.comments(viewer.token, ticket_id)
        view = ticket_view(t, comments, await policy_of(viewer.token, t), viewer.id, locale)
        message = notice(request)
        if request.query_params.get("created"):
            message = _(
                request,
                "Your ticket {id} is open: we have also emailed you its number.",
                id=t.display_id,
            )
        elif request.query_params.get("follows"):
            message = _(
                request,
                "A new ticket {id} is open, linked to {old}.",
                id=t.display_id,
                old=f"#{request.query_params.get('follows', '')}",
            )
        return web.page(
            request,
            "ticket.html",
            f"{t.display_id} {t.subject}",
            status_code=status_code,
            nav="tickets",
            t=t,
            view=view,
            reply=reply or {"request_id": new_request_id(), "message": ""},
            notice=message,
            error=error,
            error_field=error_field,
            **web.limits(request),
        )

    @router.get("/tickets/{ticket_id:int}")
    async def ticket(request: Request, ticket_id: int) -> Response:
        try:
            return await ticket_page(request, ticket_id)
        except grpc.aio.AioRpcError as err:
            if err.code() in UNAVAILABLE:
                return unavailable_page(request, here(request))
            raise

    @router.get("/tickets/{ticket_id:int}/conversation")
    async def conversation(request: Request, ticket_id: int) -> Response:
        """The conversation alone, which the ticket page's poll swaps in (a live view)."""
        viewer = await web.require(request)
        try:
            t = await backend.ticket(viewer.token, ticket_id)
            comments = await backend.comments(viewer.token, ticket_id)
        except grpc.aio.AioRpcError as err:
            if err.code() in UNAVAILABLE:  # the poll keeps what the page shows
                return Response(status_code=204)
            raise
        view = ticket_view(t, comments, 0, viewer.id, web.locale(request))
        return web.page(request, "_conversation.html", t.subject, t=t, view=view)

    @router.post("/tickets/{ticket_id:int}/reply")
    async def reply(request: Request, ticket_id: int) -> Response:
        viewer = await web.require(request)
        form = await read_form(request)
        web.check_csrf(request, form)
        values = fields(form, "request_id", "message")
        files = await attachments(uploads(form))
        try:
            added = await backend.add_comment(
                viewer.token,
                ticket_id,
                values["request_id"][:100] or new_request_id(),
                values["message"],
                files,
            )
        except grpc.aio.AioRpcError as err:
            if err.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.NOT_FOUND):
                raise
            status, message, field = form_error(request, err)
            try:
                return await ticket_page(request, ticket_id, status, values, message, field)
            except grpc.aio.AioRpcError:
                return unavailable_page(request, f"/tickets/{ticket_id}")
        if added.follow_up_created:
            return web.redirect(request, f"/tickets/{added.ticket.id}?follows={ticket_id}")
        key = "reopened_by_reply" if added.reopened else "replied"
        return web.redirect(request, f"/tickets/{ticket_id}?n={key}#conversation")

    async def act(request: Request, ticket_id: int, action: str) -> Response:
        viewer = await web.require(request)
        form = await read_form(request)
        web.check_csrf(request, form)
        try:
            if action == "confirm":
                await backend.confirm(viewer.token, ticket_id)
            else:
                await backend.reopen(viewer.token, ticket_id, text(form, "reason")[:1000])
        except grpc.aio.AioRpcError as err:
            if err.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.NOT_FOUND):
                raise
            status, message, _field = form_error(request, err)
            try:
                return await ticket_page(request, ticket_id, status, error=message)
            except grpc.aio.AioRpcError:
                return unavailable_page(request, f"/tickets/{ticket_id}")
        key = "confirmed" if action == "confirm" else "reopened"
        return web.redirect(request, f"/tickets/{ticket_id}?n={key}")

    @router.post("/tickets/{ticket_id:int}/confirm")
    async def confirm(request: Request, ticket_id: int) -> Response:
        return await act(request, ticket_id, "confirm")

    @router.post("/tickets/{ticket_id:int}/reopen")
    async def reopen(request: Request, ticket_id: int) -> Response:
        return await act(request, ticket_id, "reopen")

    @router.get("/tickets/{ticket_id:int}/attachments/{attachment_id}")
    async def download(request: Request, ticket_id: int, attachment_id: str) -> StreamingResponse:
        viewer = await web.require(request)
        meta, chunks = await backend.download(viewer.token, ticket_id, attachment_id[:64])
        return download_response(meta, chunks, inline=request.query_params.get("inline") == "1")

    # -- links from our emails: a GET shows, only the button's POST acts ------------------

    def invalid_link(request: Request) -> HTMLResponse:
        return web.page(
            request,
            "error.html",
            _(request, "This link is no longer valid"),
            status_code=410,
            heading=_(request, "This link is no longer valid"),
            message=_(
                request,
                "The link has expired or was changed. Sign in to see the ticket, or reply to the "
                "email.",
            ),
            retry="",
        )

    @router.get("/link/{action}")
    async def link_page(request: Request, action: str) -> Response:
        token = request.query_params.get("token", "")
        if action not in ("confirm", "reopen") or not token or len(token) > 2000:
            return invalid_link(request)
        try:
            found = await backend.ticket_by_link(token)
        except grpc.aio.AioRpcError as err:
            if err.code() in UNAVAILABLE:
                return unavailable_page(request, here(request))
            return invalid_link(request)
        if found.action != action:
            return invalid_link(request)
        t = found.ticket
        view = ticket_view(t, [], 0, t.requester_id, web.locale(request))
        return web.page(
            request,
            "link.html",
            f"{t.display_id} {t.subject}",
            t=t,
            view=view,
            action=action,
            token=token,
            usable=t.status == pb.TICKET_STATUS_SOLVED,
        )

    @router.post("/link/{action}")
    async def use_link(request: Request, action: str) -> Response:
        form = await read_form(request)
        web.check_csrf(request, form)
        token = text(form, "token")
        if action not in ("confirm", "reopen") or not token:
            return invalid_link(request)
        try:
            found = await backend.ticket_by_link(token)
            if found.action != action:
                return invalid_link(request)
            t = await backend.use_link(token)
        except grpc.aio.AioRpcError as err:
            if err.code() in UNAVAILABLE:
                return unavailable_page(request, f"/link/{action}?token={quote(token)}")
            if err.code() == grpc.StatusCode.FAILED_PRECONDITION:
                return web.page(
                    request,
                    "error.html",
                    _(request, "This cannot be done now"),
                    status_code=409,
                    heading=_(request, "This cannot be done now"),
                    message=err.details() or "",
                    retry="",
                )
            return invalid_link(request)
        view = ticket_view(t, [], 0, t.requester_id, web.locale(request))
        key = "confirmed" if action == "confirm" else "reopened"
        return web.page(
            request,
            "link.html",
            f"{t.display_id} {t.subject}",
            t=t,
            view=view,
            action=action,
            token="",
            usable=False,
            notice=_(request, NOTICES[key]),
        )

    # -- the satisfaction survey (seed 002) -----------------------------------------------

    def survey_page(
        request: Request, token: str, status_code: int = 200, **extra: object
    ) -> HTMLResponse:
        return web.page(
            request,
            "survey.html",
            _(request, "How did we do?"),
            status_code=status_code,
            token=token,
            ratings=[(n, _(request, label)) for n, label in RATINGS.items()],
            rating=extra.pop("rating", 0),
            comment=extra.pop("comment", ""),
            **extra,
        )

    @router.get("/survey")
    async def survey(request: Request) -> Response:
        token = request.query_params.get("token", "")
        if not token or len(token) > 2000:
            return invalid_survey(request)
        return survey_page(request, token)

    def invalid_survey(request: Request) -> HTMLResponse:
        return web.page(
            request,
            "error.html",
            _(request, "This link is no longer valid"),
            status_code=410,
            heading=_(request, "This link is no longer valid"),
            message=_(request, "This survey link is not valid or has expired."),
            retry="",
        )

    @router.post("/survey")
    async def answer_survey(request: Request) -> Response:
        form = await read_form(request)
        web.check_csrf(request, form)
        token, comment = text(form, "token"), text(form, "comment")[:2000]
        raw = text(form, "rating")
        rating = int(raw) if raw.isdigit() else 0
        try:
            answer = await backend.submit_survey(token, rating, comment)
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.UNAUTHENTICATED:
                return invalid_survey(request)
            status, message, field = form_error(request, err)
            return survey_page(
                request,
                token,
                status,
                rating=rating,
                comment=comment,
                error=message,
                error_field=field,
            )
        until = when(answer.changeable_until)
        return survey_page(
            request,
            token,
            rating=answer.rating,
            comment=answer.comment,
            answered=_(
                request,
                "Thank you for your answer about {id}. You can change it until {date}.",
                id=answer.display_id,
                date=day(until, web.locale(request)) if until else "",
            ),
        )

    # -- people who are not customers (seed 003: "Invia una richiesta") ----------------------

    SALES_FIELDS = ("name", "company", "email", "phone", "subject", "message")

    def sales_page(request: Request, status_code: int = 200, **extra: Any) -> HTMLResponse:
        return web.page(
            request,
            "sales.html",
            _(request, "Send a request"),
            status_code=status_code,
            nav="request",
            **extra,
        )

    @router.get("/request")
    async def sales_form(request: Request) -> Response:
        form = {name: "" for name in SALES_FIELDS}
        form["request_id"] = new_request_id()
        return sales_page(request, form=form, sent=False)

    @router.post("/request")
    async def sales_request(request: Request) -> Response:
        form = await read_form(request)
        web.check_csrf(request, form)
        values = fields(form, "request_id", *SALES_FIELDS)
        if text(form, "website"):  # the honeypot: people never see this field
            return sales_page(request, form=values, sent=True)
        client = request.client.host if request.client else "-"
        seen = sales_seen[client]
        now = time.monotonic()
        while seen and now - seen[0] > SALES_WINDOW_SECONDS:
            seen.popleft()
        if len(seen) >= SALES_PER_WINDOW:
            return sales_page(
                request,
                429,
                form=values,
                sent=False,
                error=_(request, "Too many requests from this address: try again later."),
            )
        seen.append(now)
        try:
            await backend.submit_sales_request(
                ipb.SubmitSalesRequestRequest(
                    request_id=values["request_id"][:100] or new_request_id(),
                    name=values["name"],
                    email=values["email"],
                    company=values["company"],
                    phone=values["phone"],
                    subject=values["subject"],
                    message=values["message"],
                    locale=web.locale(request),
                )
            )
        except grpc.aio.AioRpcError as err:
            status, message, field = form_error(request, err)
            if status == 429:
                message = _(request, "Too many requests from this address: try again later.")
            return sales_page(
                request, status, form=values, sent=False, error=message, error_field=field
            )
        return sales_page(request, form=values, sent=True)

    return router
