"""What the desk's tool pages (front desk, dashboard, development, administration) share:
who may use a page (the services' access table, never a second copy), the call metadata,
and the pages for a refusal or a service that does not answer."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import grpc
from fastapi import Request
from fastapi.responses import HTMLResponse
from google.protobuf.timestamp_pb2 import Timestamp

from helpdesk.v1 import common_pb2 as pb
from services.common.access import Role, allowed
from services.common.local_dates import DISPLAY_ZONE
from services.gateway.backend import CALL_TIMEOUT, call_md
from services.gateway.errors import UNAVAILABLE, failure
from services.gateway.web import Viewer, Web, here

SERVICES = {
    "directory": "/helpdesk.v1.DirectoryService/",
    "tickets": "/helpdesk.v1.TicketService/",
    "intake": "/helpdesk.v1.IntakeService/",
    "dev": "/helpdesk.v1.DevEscalationService/",
    "sales": "/helpdesk.v1.SalesService/",
}

AGENT_ROLES = {
    pb.AGENT_ROLE_AGENT: "Agent",
    pb.AGENT_ROLE_TEAM_LEAD: "Team lead",
    pb.AGENT_ROLE_FRONT_DESK: "Front desk",
    pb.AGENT_ROLE_DEVELOPER: "Developer",
    pb.AGENT_ROLE_ADMIN: "Administrator",
    pb.AGENT_ROLE_SALES: "Sales office",
}


def role_names(request: Request, web: Web) -> dict[int, str]:
    return {k: web._(request, v) for k, v in AGENT_ROLES.items()}


def may(viewer: Viewer, service: str, method: str) -> bool:
    """True when the access table lets the viewer's role call ``service.method``."""
    try:
        role = Role(viewer.role)
    except ValueError:
        return False
    return allowed(SERVICES[service] + method, role)


class Tools:
    """The tool pages' helpers, bound to the gateway's ``Web``."""

    def __init__(self, web: Web) -> None:
        self.web = web
        self.backend = web.backend

    def _(self, request: Request, text: str, **values: Any) -> str:
        return self.web._(request, text, **values)

    @staticmethod
    def call(viewer: Viewer) -> dict[str, Any]:
        """Keyword arguments of a call made as the viewer."""
        return {"metadata": call_md(viewer.token), "timeout": CALL_TIMEOUT}

    def message_page(
        self, request: Request, status: int, heading: str, message: str, retry: str = ""
    ) -> HTMLResponse:
        return self.web.page(
            request,
            "error.html",
            heading,
            status_code=status,
            heading=heading,
            message=message,
            retry=retry,
        )

    def forbidden(self, request: Request) -> HTMLResponse:
        return self.message_page(
            request, 403, self._(request, "Not allowed"), self._(request, "You may not do this.")
        )

    def refusal(self, request: Request, err: grpc.aio.AioRpcError) -> HTMLResponse:
        """A page whose RPC failed: the RPC's own words and status; 503 offers a retry."""
        if err.code() in UNAVAILABLE:
            return self.message_page(
                request,
                503,
                self._(request, "The help desk is not answering"),
                self._(
                    request,
                    "A service of the help desk is not answering right now: try again in a moment.",
                ),
                retry=here(request) if request.method == "GET" else "",
            )
        f = failure(err)
        headings = {
            403: "Not allowed",
            404: "Not found",
            409: "This cannot be done now",
            400: "Please check the form",
        }
        heading = self._(request, headings.get(f.http_status, "Something went wrong"))
        return self.message_page(request, f.http_status, heading, f.message)

    def form_error(self, request: Request, err: grpc.aio.AioRpcError) -> tuple[int, str, str]:
        """Status, message and field of a refused form; 503 keeps what was written."""
        if err.code() in UNAVAILABLE:
            return (
                503,
                self._(
                    request,
                    "A service of the help desk is not answering right now. What you wrote is "
                    "kept below: try again in a moment.",
                ),
                "",
            )
        f = failure(err)
        return f.http_status, f.message, f.field


def bounded_int(raw: str, default: int = 0) -> int:
    """A form's or query's whole number; anything else is ``default``."""
    raw = raw.strip()
    if raw.isdigit() and len(raw) <= 12:
        return int(raw)
    return default


def timestamp(when: datetime | None) -> Timestamp | None:
    if when is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(when.astimezone(UTC))
    return ts


def local_day_start(day: date) -> datetime:
    """Midnight of ``day`` on the desk's clock."""
    return datetime.combine(day, time(0, 0), tzinfo=DISPLAY_ZONE)


def parse_day(raw: str) -> date | None:
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        return None


def parse_local_moment(raw: str) -> datetime | None:
    """A ``datetime-local`` field (``2026-12-15T14:30``) on the desk's clock."""
    raw = raw.strip()
    if not raw:
        return None
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=DISPLAY_ZONE)
    return parsed


def today_local() -> date:
    return datetime.now(DISPLAY_ZONE).date()


def tomorrow_local() -> date:
    return today_local() + timedelta(days=1)
