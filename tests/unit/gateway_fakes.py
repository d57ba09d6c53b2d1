"""What the gateway's page tests share: a backend whose every stub answers from a table of
replies (recording each call), a signed-in viewer, and an HTTP client on the app."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from fastapi import Request

from services.common.settings import Settings
from services.gateway import app as gateway_app
from services.gateway.models import WebSession
from services.gateway.security import CSRF_COOKIE
from services.gateway.web import Viewer, Web

CSRF = "csrf-token-of-the-test"


def rpc_error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


class Stub:
    """Answers every RPC from ``replies`` (a message, or an error to raise), recording it."""

    def __init__(self, calls: list[tuple[str, Any]], replies: dict[str, Any]) -> None:
        self.calls = calls
        self.replies = replies

    def __getattr__(self, name: str) -> Any:
        async def call(request: Any, **_kw: Any) -> Any:
            self.calls.append((name, request))
            reply = self.replies.get(name)
            if isinstance(reply, Exception):
                raise reply
            return reply

        return call


class FakeBackend:
    """Every service of the backend is one ``Stub`` over the same replies."""

    def __init__(self, replies: dict[str, Any]) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.replies = replies
        stub = Stub(self.calls, replies)
        self.tickets = self.directory = self.knowledge = self.intake = self.sales = stub

    def names(self) -> list[str]:
        """The RPCs called, in order."""
        return [name for name, _ in self.calls]

    def called(self, name: str) -> list[Any]:
        """The requests of every call to ``name``."""
        return [request for n, request in self.calls if n == name]

    async def close(self) -> None:
        return None


def viewer(kind: str, organization_id: int = 0, role: str = "") -> Viewer:
    """A signed-in agent ("AGENT") or customer ("CONTACT"): Anna Bianchi, id 5."""
    now = datetime.now(UTC)
    row = WebSession(
        id_hash="x",
        kind=kind,
        principal_id=5,
        role=role or ("AGENT" if kind == "AGENT" else "USER"),
        organization_id=organization_id,
        name="Anna Bianchi",
        email="anna@desk.it",
        locale="en",
        access_token="token",
        refresh_token="refresh",
        access_expires_at=now + timedelta(hours=1),
        expires_at=now + timedelta(days=1),
        created_at=now,
    )
    return Viewer("session", row)


@contextlib.asynccontextmanager
async def gateway_client(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    backend: FakeBackend,
    kind: str,
    organization_id: int = 0,
) -> AsyncIterator[httpx.AsyncClient]:
    """The app on ``backend``, signed in as ``kind``; ``client.who["kind"]`` switches it."""
    monkeypatch.setenv("HELPDESK_DATA_DIR", str(tmp_path))
    who = {"kind": kind}
    monkeypatch.setattr(gateway_app.Backend, "connect", classmethod(lambda cls, s: backend))

    async def signed_in(self: Web, request: Request) -> Viewer:
        request.state.viewer = viewer(who["kind"], organization_id)
        return request.state.viewer

    monkeypatch.setattr(Web, "viewer", signed_in)
    app = gateway_app.create_app(Settings.from_env())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://gateway.test",
        cookies={CSRF_COOKIE: CSRF, "hd_lang": "en"},
    ) as http:
        http.who = who  # type: ignore[attr-defined]
        yield http
