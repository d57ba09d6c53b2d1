"""A local HTTP server that implements the few Bot API and Cloud API calls the help desk
uses (we cannot reach the real ones): ``sendMessage``, ``getFile`` and file download;
``POST /{phone_number_id}/messages``, ``GET /{media_id}`` and the media URL. It keeps every
request, and answers with scripted failures (429 with ``retry_after`` / ``Retry-After``,
5xx) before succeeding."""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

BOT_TOKEN = "123456:TEST-token"
WA_TOKEN = "wa-access-token"
PHONE_ID = "1098765"


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    query: dict[str, str]
    body: Any
    at: float


@dataclass
class FakeProvider:
    requests: list[Request] = field(default_factory=list)
    # path suffix -> statuses to answer first (then 200)
    failures: dict[str, list[int]] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)  # file_id / media_id -> content
    # media_id -> the MIME type the Cloud API's media endpoint reports (default PDF)
    mime_types: dict[str, str] = field(default_factory=dict)
    port: int = 0
    _runner: web.AppRunner | None = None
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def sent(self, path_end: str) -> list[Request]:
        return [r for r in self.requests if r.path.endswith(path_end) and r.method == "POST"]

    def texts_to(self, chat_id: str) -> list[str]:
        out = []
        for r in self.sent("/sendMessage"):
            if str(r.body.get("chat_id")) == chat_id:
                out.append(r.body["text"])
        for r in self.sent("/messages"):
            if r.body.get("to") == chat_id:
                out.append(r.body["text"]["body"])
        return out

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _fail(self, path: str) -> int | None:
        for suffix, statuses in self.failures.items():
            if path.endswith(suffix) and statuses:
                return statuses.pop(0)
        return None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        path = request.path
        self.requests.append(
            Request(
                request.method,
                path,
                dict(request.headers),
                dict(request.query),
                body,
                asyncio.get_running_loop().time(),
            )
        )
        failure = self._fail(path)
        if failure == 429:
            if "/bot" in path:
                return web.json_response(
                    {
                        "ok": False,
                        "error_code": 429,
                        "description": "Too Many Requests: retry after 1",
                        "parameters": {"retry_after": 1},
                    },
                    status=429,
                )
            return web.json_response(
                {"error": {"message": "rate limited", "code": 130429}},
                status=429,
                headers={"Retry-After": "1"},
            )
        if failure is not None:
            return web.json_response({"ok": False, "description": "boom"}, status=failure)
        # -- Telegram Bot API
        if path == f"/bot{BOT_TOKEN}/sendMessage":
            if not isinstance(body, dict) or "chat_id" not in body or "text" not in body:
                return web.json_response({"ok": False, "error_code": 400}, status=400)
            mid = next(self._ids)
            return web.json_response(
                {"ok": True, "result": {"message_id": mid, "chat": {"id": body["chat_id"]}}}
            )
        if path == f"/bot{BOT_TOKEN}/getFile":
            file_id = request.query.get("file_id", "")
            if file_id not in self.files:
                return web.json_response({"ok": False, "error_code": 400}, status=400)
            return web.json_response(
                {
                    "ok": True,
                    "result": {
                        "file_id": file_id,
                        "file_unique_id": "u" + file_id,
                        "file_size": len(self.files[file_id]),
                        "file_path": f"photos/{file_id}.jpg",
                    },
                }
            )
        if path.startswith(f"/file/bot{BOT_TOKEN}/photos/"):
            file_id = path.rsplit("/", 1)[-1].removesuffix(".jpg")
            return web.Response(body=self.files[file_id], content_type="image/jpeg")
        # -- WhatsApp Cloud API
        auth = request.headers.get("Authorization", "")
        if auth != f"Bearer {WA_TOKEN}":
            return web.json_response({"error": {"message": "bad token"}}, status=401)
        if path == f"/{PHONE_ID}/messages" and request.method == "POST":
            mid = f"wamid.TEST{next(self._ids)}"
            return web.json_response(
                {
                    "messaging_product": "whatsapp",
                    "contacts": [{"input": body["to"], "wa_id": body["to"]}],
                    "messages": [{"id": mid}],
                }
            )
        if path.startswith("/media-download/"):
            media_id = path.rsplit("/", 1)[-1]
            return web.Response(body=self.files[media_id], content_type="application/pdf")
        media_id = path.strip("/")
        if media_id in self.files:
            return web.json_response(
                {
                    "messaging_product": "whatsapp",
                    "url": f"{self.base}/media-download/{media_id}",
                    "mime_type": self.mime_types.get(media_id, "application/pdf"),
                    "sha256": "x",
                    "file_size": len(self.files[media_id]),
                    "id": media_id,
                }
            )
        return web.json_response({"error": {"message": "not found"}}, status=404)
