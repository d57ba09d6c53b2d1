"""The gateway's FastAPI application: portal pages, JSON API, static files, health."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.common import db
from services.common.limits import MAX_ATTACHMENT_BYTES, MAX_ATTACHMENTS_TOTAL
from services.common.settings import Settings
from services.gateway.agent import agent_routes
from services.gateway.api import ApiError, api_error, api_routes
from services.gateway.backend import Backend
from services.gateway.errors import (
    UNAVAILABLE,
    BadForm,
    NotStaff,
    SignInNeeded,
    TooLarge,
    failure,
)
from services.gateway.knowledge_pages import routes as knowledge_routes
from services.gateway.portal import portal_routes
from services.gateway.quote_pages import routes as quote_routes
from services.gateway.sales_pages import routes as sales_routes
from services.gateway.security import Guard
from services.gateway.store import SessionStore, migrate
from services.gateway.texts import size
from services.gateway.tracing import Traced
from services.gateway.web import Web, here

log = logging.getLogger("helpdesk.gateway")
STATIC = Path(__file__).parent / "static"


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def create_app(settings: Settings) -> Any:
    """The ASGI app: FastAPI behind the security guard."""
    engine = db.make_engine(settings.database_url_for("gateway"))
    store = SessionStore(db.make_sessionmaker(engine))
    backend = Backend.connect(settings)
    web = Web(backend, store)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await migrate(settings)
        await store.purge_expired()
        try:
            yield
        finally:
            await backend.close()
            await engine.dispose()

    app = FastAPI(
        title="Help desk JSON API",
        version="1",
        openapi_url="/api/openapi.json",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    error_page = web.error_page

    @app.exception_handler(grpc.aio.AioRpcError)
    async def on_rpc_error(request: Request, err: grpc.aio.AioRpcError) -> Response:
        f = failure(err)
        if f.http_status >= 500 and err.code() not in UNAVAILABLE:
            log.warning("%s %s: %s %s", request.method, request.url.path, f.code, f.message)
        if _is_api(request):
            return api_error(ApiError(f.http_status, f.code, f.message, f.field))
        if err.code() == grpc.StatusCode.UNAUTHENTICATED:
            return web.sign_in_redirect(request, here(request) if request.method == "GET" else "/")
        if err.code() == grpc.StatusCode.NOT_FOUND:
            return error_page(
                request,
                404,
                "Not found",
                web._(request, "There is no such page, or you may not see it."),
            )
        if err.code() == grpc.StatusCode.PERMISSION_DENIED:
            return error_page(request, 403, "Not allowed", web._(request, "You may not do this."))
        if err.code() in UNAVAILABLE:
            return error_page(
                request,
                503,
                "The help desk is not answering",
                web._(
                    request,
                    "A service of the help desk is not answering right now: try again in a moment.",
                ),
            )
        if f.http_status == 409:
            return error_page(request, 409, "This cannot be done now", f.message)
        if f.http_status == 400:
            return error_page(request, 400, "Please check the form", f.message)
        return error_page(
            request,
            f.http_status,
            "Something went wrong",
            web._(
                request,
                "The help desk could not do this. Try again; if it happens again, write to the "
                "support address.",
            ),
        )

    @app.exception_handler(SignInNeeded)
    async def on_sign_in(request: Request, err: SignInNeeded) -> Response:
        if _is_api(request):
            return api_error(ApiError(401, "UNAUTHENTICATED", "sign in or send a bearer token"))
        return web.sign_in_redirect(request, err.next_path)

    @app.exception_handler(TooLarge)
    async def on_too_large(request: Request, _err: TooLarge) -> Response:
        message = web._(
            request,
            "Attachments may be at most {file} a file and {total} in all. Nothing was sent.",
            file=size(MAX_ATTACHMENT_BYTES),
            total=size(MAX_ATTACHMENTS_TOTAL),
        )
        if _is_api(request):
            return api_error(ApiError(413, "RESOURCE_EXHAUSTED", message, "attachments"))
        response = error_page(request, 413, "Too large", message)
        response.headers["Connection"] = "close"
        return response

    @app.exception_handler(BadForm)
    async def on_bad_form(request: Request, _err: BadForm) -> Response:
        return error_page(
            request,
            403,
            "Not allowed",
            web._(request, "The form has expired: it is shown again, send it once more."),
        )

    @app.exception_handler(NotStaff)
    async def on_not_staff(request: Request, _err: NotStaff) -> Response:
        return error_page(
            request,
            403,
            "Not allowed",
            web._(request, "These pages are for the help desk's staff."),
        )

    @app.exception_handler(ApiError)
    async def on_api_error(_request: Request, err: ApiError) -> Response:
        return api_error(err)

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, err: RequestValidationError) -> Response:
        first = err.errors()[0] if err.errors() else {}
        loc = [str(p) for p in first.get("loc", ()) if p != "body"]
        return api_error(
            ApiError(400, "INVALID_ARGUMENT", str(first.get("msg", "invalid")), ".".join(loc))
        )

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, err: StarletteHTTPException) -> Response:
        if _is_api(request):
            return api_error(ApiError(err.status_code, "NOT_FOUND", str(err.detail)))
        if err.status_code == 404:
            return error_page(
                request,
                404,
                "Not found",
                web._(request, "There is no such page, or you may not see it."),
            )
        return error_page(request, err.status_code, "Something went wrong", str(err.detail))

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> PlainTextResponse:
        return PlainTextResponse("ok\n")

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> PlainTextResponse:
        if await backend.ready():
            return PlainTextResponse("ready\n")
        return PlainTextResponse("the gRPC services do not answer\n", status_code=503)

    @app.get("/api/docs", include_in_schema=False)
    async def api_docs(request: Request) -> HTMLResponse:
        await web.viewer(request)
        operations = [
            {"method": method.upper(), "path": path, "summary": op.get("summary", "")}
            for path, item in app.openapi().get("paths", {}).items()
            for method, op in item.items()
        ]
        return web.page(request, "api_docs.html", web._(request, "JSON API"), operations=operations)

    app.include_router(api_routes(web))
    app.include_router(agent_routes(web))
    app.include_router(portal_routes(web))
    app.include_router(knowledge_routes(web))
    app.include_router(sales_routes(web))
    app.include_router(quote_routes(web))
    return Traced(Guard(app))
