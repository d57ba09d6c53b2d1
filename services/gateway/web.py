"""What every page handler needs: who is signed in, their language, the CSRF token, and
one way to render a template or a redirect."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import grpc
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from helpdesk.v1 import directory_pb2 as dpb
from services.common.limits import MAX_ATTACHMENT_BYTES, MAX_ATTACHMENTS_TOTAL
from services.gateway.backend import Backend
from services.gateway.errors import BadForm, NotStaff, SignInNeeded
from services.gateway.models import WebSession
from services.gateway.security import CSRF_COOKIE, CSRF_FIELD, csrf_ok, new_csrf_token
from services.gateway.store import SESSION_TTL, SessionStore
from services.gateway.texts import locale_of, size, translate

log = logging.getLogger("helpdesk.gateway")

SESSION_COOKIE = "hd_session"
LANG_COOKIE = "hd_lang"
# An access token this close to its end is renewed before the call.
REFRESH_MARGIN = timedelta(seconds=30)


@dataclass
class Viewer:
    """The signed-in person of this request."""

    session_id: str
    row: WebSession

    @property
    def token(self) -> str:
        return self.row.access_token

    @property
    def id(self) -> int:
        return self.row.principal_id

    @property
    def name(self) -> str:
        return self.row.name

    @property
    def email(self) -> str:
        return self.row.email

    @property
    def role(self) -> str:
        return self.row.role

    @property
    def is_contact(self) -> bool:
        return self.row.kind == "CONTACT"

    @property
    def kind_value(self) -> dpb.PrincipalKind.ValueType:
        return dpb.PRINCIPAL_KIND_CONTACT if self.is_contact else dpb.PRINCIPAL_KIND_AGENT


def safe_next(value: str | None, default: str = "/tickets") -> str:
    """Only a path of this site: never another host (``//evil``, ``https://``)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    return value


def client_address(request: Request) -> str:
    """The browser's address (from the ingress's X-Forwarded-For, which uvicorn applies)."""
    return request.client.host if request.client else ""


def here(request: Request) -> str:
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


class Web:
    """Templates, sessions and the backend, shared by the page handlers."""

    def __init__(self, backend: Backend, store: SessionStore) -> None:
        self.backend = backend
        self.store = store
        self.env = Environment(
            loader=PackageLoader("services.gateway", "templates"),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )

    # -- people ---------------------------------------------------------------------

    async def viewer(self, request: Request) -> Viewer | None:
        """The live session of this browser, its access token renewed when near its end."""
        if hasattr(request.state, "viewer"):
            cached: Viewer | None = request.state.viewer
            return cached
        session_id = request.cookies.get(SESSION_COOKIE, "")
        row = await self.store.get(session_id)
        viewer = None
        if row is not None:
            if row.access_expires_at - REFRESH_MARGIN <= datetime.now(UTC):
                row = await self._refresh(session_id, row)
            if row is not None:
                viewer = Viewer(session_id, row)
        request.state.viewer = viewer
        return viewer

    async def _refresh(self, session_id: str, row: WebSession) -> WebSession | None:
        try:
            reply = await self.backend.refresh(row.refresh_token)
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.UNAUTHENTICATED:
                await self.store.end(session_id)
                return None
            raise
        return await self.store.update_tokens(
            row, reply.access_token, reply.refresh_token, int(reply.expires_in_seconds)
        )

    async def require(self, request: Request) -> Viewer:
        viewer = await self.viewer(request)
        if viewer is None:
            raise SignInNeeded(here(request) if request.method == "GET" else "/tickets")
        return viewer

    async def require_staff(self, request: Request) -> Viewer:
        """The signed-in help-desk person (agent, team lead, front desk, developer, admin);
        a customer gets 403 (``NotStaff``). The services still decide each call."""
        viewer = await self.require(request)
        if viewer.is_contact:
            raise NotStaff
        return viewer

    def locale(self, request: Request) -> str:
        chosen = request.cookies.get(LANG_COOKIE)
        if chosen:
            return locale_of(chosen)
        viewer = getattr(request.state, "viewer", None)
        return locale_of(viewer.row.locale if viewer else None)

    def _(self, request: Request, text: str, **values: Any) -> str:
        words = translate(self.locale(request), text)
        return words.format(**values) if values else words

    # -- forms ----------------------------------------------------------------------

    @staticmethod
    def csrf_token(request: Request) -> str:
        token = getattr(request.state, "csrf", None)
        if token is None:
            token = request.cookies.get(CSRF_COOKIE) or new_csrf_token()
            request.state.csrf = token
        return str(token)

    @staticmethod
    def check_csrf(request: Request, form: Mapping[str, Any]) -> None:
        presented = form.get(CSRF_FIELD)
        if not csrf_ok(
            request.cookies.get(CSRF_COOKIE), presented if isinstance(presented, str) else None
        ):
            raise BadForm

    # -- responses ------------------------------------------------------------------

    def limits(self, request: Request) -> dict[str, Any]:
        return {
            "limits": {"file": MAX_ATTACHMENT_BYTES, "total": MAX_ATTACHMENTS_TOTAL},
            "limits_text": self._(
                request,
                "At most {file} a file and {total} in all.",
                file=size(MAX_ATTACHMENT_BYTES),
                total=size(MAX_ATTACHMENTS_TOTAL),
            ),
        }

    def page(
        self,
        request: Request,
        template: str,
        title: str,
        status_code: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        locale = self.locale(request)
        viewer = getattr(request.state, "viewer", None)
        body = self.env.get_template(template).render(
            _=lambda text: translate(locale, text),
            locale=locale,
            title=title,
            viewer=viewer,
            csrf_token=self.csrf_token(request),
            here=here(request) if request.method == "GET" else "/",
            **context,
        )
        response = HTMLResponse(body, status_code=status_code)
        self.finish(request, response)
        return response

    def error_page(self, request: Request, status: int, heading: str, message: str) -> HTMLResponse:
        """The readable page of a refusal or a failure (a 503 offers to try again)."""
        return self.page(
            request,
            "error.html",
            self._(request, heading),
            status_code=status,
            heading=self._(request, heading),
            message=message,
            retry=here(request) if status == 503 and request.method == "GET" else "",
        )

    def finish(self, request: Request, response: Response) -> None:
        """The CSRF cookie on every page that may hold a form."""
        token = self.csrf_token(request)
        if request.cookies.get(CSRF_COOKIE) != token:
            response.set_cookie(
                CSRF_COOKIE,
                token,
                httponly=True,
                samesite="lax",
                secure=request.url.scheme == "https",
                path="/",
            )

    def redirect(self, request: Request, to: str) -> RedirectResponse:
        response = RedirectResponse(to, status_code=303)
        self.finish(request, response)
        return response

    def sign_in_redirect(self, request: Request, next_path: str) -> RedirectResponse:
        return self.redirect(request, f"/login?next={quote(next_path, safe='')}&n=expired")

    def set_session_cookie(self, request: Request, response: Response, session_id: str) -> None:
        response.set_cookie(
            SESSION_COOKIE,
            session_id,
            max_age=int(SESSION_TTL.total_seconds()),
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
            path="/",
        )
