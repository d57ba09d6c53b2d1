"""The JSON API for web clients under ``/api/v1/``: the portal's operations, with a bearer
token (from ``POST /api/v1/login``) or the browser's session (then with ``X-CSRF-Token``
on every change). gRPC failures come back as ``{"error": {code, message, field}}`` with
the matching HTTP status."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from google.protobuf import json_format
from google.protobuf.message import Message
from pydantic import BaseModel, Field

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import intake_pb2 as ipb
from helpdesk.v1 import sales_pb2 as spb
from services.common.limits import MAX_ATTACHMENT_BYTES, MAX_ATTACHMENTS, MAX_ATTACHMENTS_TOTAL
from services.gateway.backend import CALL_TIMEOUT, call_md
from services.gateway.downloads import download_response
from services.gateway.errors import TooLarge
from services.gateway.forms import new_request_id
from services.gateway.security import CSRF_COOKIE, CSRF_HEADER, csrf_ok
from services.gateway.views import STATUS_KEYS
from services.gateway.web import Web, client_address


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, field: str = "") -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field


class LoginIn(BaseModel):
    email: str
    password: str


class RefreshIn(BaseModel):
    refresh_token: str


class TokensOut(BaseModel):
    access_token: str
    refresh_token: str
    expires_in_seconds: int
    kind: str
    id: int
    role: str
    organization_id: int
    name: str


class AttachmentIn(BaseModel):
    filename: str
    content_type: str = "application/octet-stream"
    content_base64: str = Field(description="The file's bytes, base64")


class TicketIn(BaseModel):
    subject: str
    description: str
    product: str = ""
    version: str = ""
    os: str = ""
    phone: str = ""
    criticality: str = Field("", description="NON_BLOCKING, BLOCKING or CRITICAL")
    request_id: str = Field("", description="Idempotency key: a retry returns the same ticket")
    attachments: list[AttachmentIn] = []


class CommentIn(BaseModel):
    body: str
    request_id: str = Field("", description="Idempotency key: a retry adds the comment once")
    attachments: list[AttachmentIn] = []


class ReopenIn(BaseModel):
    reason: str = ""


class SalesRequestIn(BaseModel):
    kind: str = Field(description="DEVELOPMENT_QUOTE, TRAINING or CUSTOMISATION")
    subject: str
    message: str
    preferred_dates: str = Field("", description="For training or a customisation: free text")
    request_id: str = Field("", description="Idempotency key: a retry returns the same request")


def as_json(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def _attachments(items: list[AttachmentIn]) -> list[pb.Attachment]:
    if len(items) > MAX_ATTACHMENTS:
        raise TooLarge
    out, total = [], 0
    for i, a in enumerate(items):
        try:
            content = base64.b64decode(a.content_base64, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(
                400, "INVALID_ARGUMENT", "is not base64", f"attachments[{i}].content_base64"
            ) from None
        total += len(content)
        if len(content) > MAX_ATTACHMENT_BYTES or total > MAX_ATTACHMENTS_TOTAL:
            raise TooLarge
        out.append(
            pb.Attachment(
                filename=a.filename[-200:], content_type=a.content_type[:100], content=content
            )
        )
    return out


def api_routes(web: Web) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["help desk"])
    backend = web.backend

    async def token(request: Request) -> str:
        """The bearer token, or the session's (a change then needs the CSRF header)."""
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            return header[7:].strip()
        viewer = await web.viewer(request)
        if viewer is None:
            raise ApiError(401, "UNAUTHENTICATED", "sign in or send a bearer token")
        if request.method not in ("GET", "HEAD") and not csrf_ok(
            request.cookies.get(CSRF_COOKIE), request.headers.get(CSRF_HEADER)
        ):
            raise ApiError(403, "PERMISSION_DENIED", "missing or wrong X-CSRF-Token")
        return viewer.token

    @router.post("/login", response_model=TokensOut, summary="Sign in: access and refresh tokens")
    async def login(request: Request, body: LoginIn) -> TokensOut:
        reply = await backend.login(body.email, body.password, client_address(request))
        return _tokens(reply)

    @router.post("/refresh", response_model=TokensOut, summary="A new access token")
    async def refresh(body: RefreshIn) -> TokensOut:
        return _tokens(await backend.refresh(body.refresh_token))

    @router.get("/tickets", summary="The tickets the caller may see, newest first")
    async def list_tickets(
        request: Request, status: str = "", page_token: str = ""
    ) -> dict[str, Any]:
        wanted = {v.upper(): k for k, v in STATUS_KEYS.items()}
        statuses = [wanted[s] for s in status.upper().split(",") if s in wanted]
        reply = await backend.list_tickets(await token(request), statuses, page_token)
        return as_json(reply)

    @router.post("/tickets", status_code=201, summary="Open a ticket as the signed-in customer")
    async def create_ticket(request: Request, body: TicketIn) -> dict[str, Any]:
        bearer = await token(request)
        crit = f"CRITICALITY_{body.criticality.upper()}" if body.criticality else ""
        if crit and crit not in set(pb.Criticality.keys()):
            raise ApiError(400, "INVALID_ARGUMENT", "unknown value", "criticality")
        reply = await backend.submit_web_request(
            bearer,
            ipb.SubmitWebRequestRequest(
                request_id=body.request_id[:100] or new_request_id(),
                # Empty: intake opens it for the customer the token names.
                requester_email="",
                subject=body.subject,
                description=body.description,
                product=body.product,
                version=body.version,
                os=body.os,
                phone=body.phone,
                criticality=pb.Criticality.Value(crit) if crit else pb.CRITICALITY_UNSPECIFIED,
                attachments=_attachments(body.attachments),
            ),
        )
        return as_json(await backend.ticket(bearer, reply.ticket_id))

    @router.get("/tickets/{ticket_id}", summary="One ticket")
    async def get_ticket(request: Request, ticket_id: int) -> dict[str, Any]:
        return as_json(await backend.ticket(await token(request), ticket_id))

    @router.get("/tickets/{ticket_id}/comments", summary="The ticket's public comments, in order")
    async def list_comments(request: Request, ticket_id: int) -> dict[str, Any]:
        comments = await backend.comments(await token(request), ticket_id)
        return {"comments": [as_json(c) for c in comments]}

    @router.post("/tickets/{ticket_id}/comments", status_code=201, summary="Add a public comment")
    async def add_comment(request: Request, ticket_id: int, body: CommentIn) -> dict[str, Any]:
        reply = await backend.add_comment(
            await token(request),
            ticket_id,
            body.request_id[:100] or new_request_id(),
            body.body,
            _attachments(body.attachments),
        )
        return as_json(reply)

    @router.post("/tickets/{ticket_id}/confirm", summary="Confirm the solution: it closes")
    async def confirm(request: Request, ticket_id: int) -> dict[str, Any]:
        return as_json(await backend.confirm(await token(request), ticket_id))

    @router.post("/tickets/{ticket_id}/reopen", summary="Reopen a solved ticket")
    async def reopen(request: Request, ticket_id: int, body: ReopenIn) -> dict[str, Any]:
        return as_json(await backend.reopen(await token(request), ticket_id, body.reason[:1000]))

    @router.get(
        "/tickets/{ticket_id}/attachments/{attachment_id}",
        summary="An attachment's bytes",
        response_class=StreamingResponse,
    )
    async def download(request: Request, ticket_id: int, attachment_id: str) -> StreamingResponse:
        meta, chunks = await backend.download(await token(request), ticket_id, attachment_id[:64])
        return download_response(meta, chunks)

    @router.get("/sales-requests", summary="The caller's requests to the sales office")
    async def list_sales_requests(request: Request, page_token: str = "") -> dict[str, Any]:
        reply = await backend.sales.ListSalesRequests(
            spb.ListSalesRequestsRequest(page_size=100, page_token=page_token[:500]),
            metadata=call_md(await token(request)),
            timeout=CALL_TIMEOUT,
        )
        return as_json(reply)

    @router.post(
        "/sales-requests", status_code=201, summary="Ask the sales office as the signed-in customer"
    )
    async def create_sales_request(request: Request, body: SalesRequestIn) -> dict[str, Any]:
        bearer = await token(request)
        kind = f"SALES_REQUEST_KIND_{body.kind.upper()}"
        if kind not in PORTAL_KINDS:
            raise ApiError(400, "INVALID_ARGUMENT", "unknown value", "kind")
        reply = await backend.sales.CreateSalesRequest(
            spb.CreateSalesRequestRequest(
                request_id=body.request_id[:150] or new_request_id(),
                kind=spb.SalesRequestKind.Value(kind),
                subject=body.subject,
                message=body.message,
                preferred_dates=body.preferred_dates,
            ),
            metadata=call_md(bearer),
            timeout=CALL_TIMEOUT,
        )
        return as_json(reply)

    return router


# What a customer may ask the sales office for through the API (the portal's three forms).
PORTAL_KINDS = frozenset(
    {
        "SALES_REQUEST_KIND_DEVELOPMENT_QUOTE",
        "SALES_REQUEST_KIND_TRAINING",
        "SALES_REQUEST_KIND_CUSTOMISATION",
    }
)


def _tokens(reply: Any) -> TokensOut:
    return TokensOut(
        access_token=reply.access_token,
        refresh_token=reply.refresh_token,
        expires_in_seconds=int(reply.expires_in_seconds),
        kind="CONTACT" if reply.kind == 1 else "AGENT",
        id=reply.id,
        role=reply.role,
        organization_id=reply.organization_id,
        name=reply.name,
    )


def api_error(err: ApiError) -> JSONResponse:
    body: dict[str, Any] = {"code": err.code, "message": err.message}
    if err.field:
        body["field"] = err.field
    return JSONResponse({"error": body}, status_code=err.status)
