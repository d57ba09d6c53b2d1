"""The front desk's phone form (seed 000): find the caller by phone, email or name, log the
call (IntakeService.LogPhoneCall) and read the new ticket's ID back to the caller."""

from __future__ import annotations

import re
from typing import Any

import grpc
from fastapi import APIRouter, Request
from fastapi.responses import Response

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import intake_pb2 as ipb
from services.gateway.agent.tool_pages import Tools, bounded_int, may
from services.gateway.errors import UNAVAILABLE
from services.gateway.forms import fields, new_request_id, read_form
from services.gateway.texts import CRITICALITY, CRITICALITY_EXPLAINED
from services.gateway.web import Viewer

KINDS = {
    pb.TICKET_KIND_QUESTION: "Question",
    pb.TICKET_KIND_INCIDENT: "Incident",
    pb.TICKET_KIND_BUG: "Bug",
    pb.TICKET_KIND_CHANGE_REQUEST: "Change request",
    pb.TICKET_KIND_QUOTE: "Quote",
    pb.TICKET_KIND_HARDWARE: "Hardware",
}
CALL_FIELDS = (
    "request_id",
    "contact_id",
    "organization_id",
    "caller_name",
    "caller_email",
    "caller_phone",
    "nature",
    "description",
    "callback_number",
    "criticality",
    "kind",
)
_PHONE = re.compile(r"^[+\d\s().\-/]+$")
MAX_QUERY = 200


def criteria(query: str) -> dpb.FindContactsRequest | None:
    """What the operator typed, as FindContacts criteria: an address, a number (at least 6
    digits) or part of a name; too little to search: None."""
    query = query.strip()[:MAX_QUERY]
    if len(query) < 2:
        return None
    if "@" in query:
        return dpb.FindContactsRequest(email=query, page_size=20)
    if _PHONE.match(query):
        digits = sum(ch.isdigit() for ch in query)
        return dpb.FindContactsRequest(phone=query, page_size=20) if digits >= 6 else None
    return dpb.FindContactsRequest(name=query, page_size=20)


def routes(tools: Tools) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    web, backend = tools.web, tools.backend
    _ = tools._

    async def organizations(viewer: Viewer) -> list[dpb.Organization]:
        """Every organisation, for an unknown caller (a few pages of 200 at most)."""
        found: list[dpb.Organization] = []
        token = ""
        for _page in range(10):
            reply = await backend.directory.ListOrganizations(
                dpb.ListOrganizationsRequest(page_size=200, page_token=token),
                **tools.call(viewer),
            )
            found.extend(reply.organizations)
            token = reply.next_page_token
            if not token:
                break
        return sorted(found, key=lambda o: o.name.lower())

    def choices(request: Request) -> dict[str, Any]:
        return {
            "criticalities": [
                (str(v), _(request, label), _(request, CRITICALITY_EXPLAINED[v]))
                for v, label in CRITICALITY.items()
            ],
            "kinds": [("", _(request, "Not known yet"))]
            + [(str(v), _(request, label)) for v, label in KINDS.items()],
        }

    async def search(viewer: Viewer, query: str) -> list[dpb.Contact]:
        wanted = criteria(query)
        if wanted is None:
            return []
        reply = await backend.directory.FindContacts(wanted, **tools.call(viewer))
        return list(reply.contacts)

    async def form_page(
        request: Request,
        viewer: Viewer,
        values: dict[str, str],
        status_code: int = 200,
        error: str = "",
        error_field: str = "",
    ) -> Response:
        query = request.query_params.get("q", "")[:MAX_QUERY] if request.method == "GET" else ""
        contact = None
        contact_id = bounded_int(values.get("contact_id", ""))
        try:
            if contact_id:
                contact = await backend.directory.GetContact(
                    dpb.GetContactRequest(id=contact_id), **tools.call(viewer)
                )
            found = await search(viewer, query) if query else []
            orgs = [] if contact else await organizations(viewer)
        except grpc.aio.AioRpcError as err:
            if status_code != 503 or err.code() not in UNAVAILABLE:
                raise
            # The directory does not answer either: the form comes back with what was
            # written and the caller's ID, without looking anything up.
            contact = dpb.Contact(id=contact_id) if contact_id else None
            found, orgs = [], []
        wanted = criteria(query) if query and not found else None
        if wanted is not None and wanted.phone and not values.get("caller_phone"):
            values = {**values, "caller_phone": query}  # a new caller: their number as typed
        return web.page(
            request,
            "agent/phone.html",
            _(request, "Phone call"),
            status_code=status_code,
            nav="phone",
            form=values,
            contact=contact,
            query=query,
            found=found,
            searched=bool(query),
            orgs=orgs,
            error=error,
            error_field=error_field,
            **choices(request),
        )

    def blank(contact: dpb.Contact | None = None) -> dict[str, str]:
        values = {name: "" for name in CALL_FIELDS}
        values["request_id"] = new_request_id()
        values["criticality"] = str(pb.CRITICALITY_NON_BLOCKING)
        if contact is not None:
            values["contact_id"] = str(contact.id)
            values["caller_phone"] = contact.phone
        return values

    @router.get("/agent/phone")
    async def phone(request: Request) -> Response:
        viewer = await web.require_staff(request)
        if not may(viewer, "intake", "LogPhoneCall"):
            return tools.forbidden(request)
        values = blank()
        contact_id = bounded_int(request.query_params.get("contact", ""))
        try:
            if contact_id:
                contact = await backend.directory.GetContact(
                    dpb.GetContactRequest(id=contact_id), **tools.call(viewer)
                )
                values = blank(contact)
            return await form_page(request, viewer, values)
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.UNAUTHENTICATED:
                raise
            return tools.refusal(request, err)

    @router.get("/agent/phone/callers")
    async def callers(request: Request) -> Response:
        """The search results alone, swapped in as the operator types (htmx)."""
        viewer = await web.require_staff(request)
        query = request.query_params.get("q", "")[:MAX_QUERY]
        try:
            found = await search(viewer, query)
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.UNAUTHENTICATED:
                raise
            status, message, _field = tools.form_error(request, err)
            return web.page(
                request,
                "agent/phone_callers.html",
                "",
                status_code=status,
                found=[],
                query=query,
                searched=True,
                search_error=message,
            )
        return web.page(
            request,
            "agent/phone_callers.html",
            "",
            found=found,
            query=query,
            searched=bool(query.strip()),
            search_error="",
        )

    @router.post("/agent/phone")
    async def log_call(request: Request) -> Response:
        viewer = await web.require_staff(request)
        form = await read_form(request)
        web.check_csrf(request, form)
        values = fields(form, *CALL_FIELDS)
        values["request_id"] = values["request_id"][:100] or new_request_id()
        emailed = form.get("attachments_requested_by_email") == "1"
        values["emailed"] = "1" if emailed else ""
        criticality = bounded_int(values["criticality"])
        kind = bounded_int(values["kind"])
        call = ipb.LogPhoneCallRequest(
            request_id=values["request_id"],
            contact_id=bounded_int(values["contact_id"]),
            organization_id=bounded_int(values["organization_id"]),
            caller_name=values["caller_name"],
            caller_email=values["caller_email"],
            caller_phone=values["caller_phone"],
            nature=values["nature"],
            description=values["description"],
            callback_number=values["callback_number"],
            attachments_requested_by_email=emailed,
            criticality=pb.Criticality.ValueType(criticality if criticality in CRITICALITY else 0),
            kind=pb.TicketKind.ValueType(kind if kind in KINDS else 0),
        )
        try:
            reply = await backend.intake.LogPhoneCall(call, **tools.call(viewer))
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.UNAUTHENTICATED:
                raise
            status, message, field = tools.form_error(request, err)
            try:
                return await form_page(request, viewer, values, status, message, field)
            except grpc.aio.AioRpcError as again:
                return tools.refusal(request, again)
        return web.redirect(request, f"/agent/phone/logged/{reply.ticket_id}")

    @router.get("/agent/phone/logged/{ticket_id:int}")
    async def logged(request: Request, ticket_id: int) -> Response:
        """The ticket's ID, to read back to the caller."""
        viewer = await web.require_staff(request)
        try:
            ticket = await backend.ticket(viewer.token, ticket_id)
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.UNAUTHENTICATED:
                raise
            return tools.refusal(request, err)
        return web.page(
            request,
            "agent/phone_logged.html",
            ticket.display_id,
            nav="phone",
            t=ticket,
            readback=_(request, "Ticket {id} — read it to the caller", id=ticket.display_id),
        )

    return router
