"""The webhook listener (``HELPDESK_WEBHOOK_LISTEN``): Telegram and WhatsApp in.

- ``POST /webhooks/telegram``: checked against ``X-Telegram-Bot-Api-Secret-Token``;
- ``GET /webhooks/whatsapp``: the Cloud API's verification handshake;
- ``POST /webhooks/whatsapp``: checked with ``X-Hub-Signature-256`` (HMAC-SHA256 of the
  raw body with the app secret);
- ``/healthz`` (the process answers) and ``/readyz`` (its database answers).

A wrong secret or signature is ``403`` and stores nothing; a body that is not a JSON
object is ``400``; a channel that is not configured is ``404``. ``200`` comes only once
every update of the request is stored in ``im_updates`` (unique per provider and the
provider's ID of the message: Telegram's chat and message ID, never its update ID, which
restarts; so the provider's retries store nothing twice); ``500`` otherwise, and the
provider retries. The processor (``services.intake.im_processor``) works from the table.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.common.settings import Settings
from services.intake.im_models import ImUpdate
from services.intake.im_parse import TELEGRAM, WHATSAPP, telegram_key, whatsapp_items

log = logging.getLogger("helpdesk.intake.webhooks")

MAX_BODY_BYTES = 1024 * 1024  # updates carry file IDs, never the files


async def store_update(
    sessions: async_sessionmaker[AsyncSession],
    provider: str,
    kind: str,
    external_id: str,
    payload: dict[str, Any],
) -> bool:
    """Record one update; False when it was stored before (a provider's retry)."""
    key = (ImUpdate.provider == provider, ImUpdate.external_id == external_id)
    async with sessions() as session:
        if (await session.scalars(select(ImUpdate.id).where(*key))).first() is not None:
            return False
        session.add(
            ImUpdate(
                id=uuid.uuid4().hex,
                provider=provider,
                external_id=external_id,
                kind=kind,
                payload=payload,
                status="RECEIVED",
                ticket_id=0,
                detail="",
                attempts=0,
                received_at=datetime.now(UTC),
            )
        )
        try:
            await session.commit()
        except IntegrityError:  # the same update, delivered twice at once
            await session.rollback()
            return False
    return True


class WebhookServer:
    """aiohttp application over intake's store; ``wake`` tells the processor."""

    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        wake: asyncio.Event,
        ready: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.wake = wake
        self.ready = ready
        self._runner: web.AppRunner | None = None
        self.port = 0

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        app.router.add_post("/webhooks/telegram", self.telegram)
        app.router.add_get("/webhooks/whatsapp", self.whatsapp_verify)
        app.router.add_post("/webhooks/whatsapp", self.whatsapp)
        return app

    async def start(self, host: str, port: int) -> None:
        for name, on in (
            ("Telegram", self.settings.telegram_enabled),
            ("WhatsApp", self.settings.whatsapp_enabled),
        ):
            if not on:
                log.info("%s channel off: its settings are absent (its webhook answers 404)", name)
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else port
        log.info("webhooks listening on %s:%d", host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- health -------------------------------------------------------------------------

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def readyz(self, request: web.Request) -> web.Response:
        try:
            ok = await asyncio.wait_for(self.ready(), 5) if self.ready is not None else True
        except Exception:
            ok = False
        return web.Response(text="ready" if ok else "not ready", status=200 if ok else 503)

    # -- Telegram -------------------------------------------------------------------------

    async def telegram(self, request: web.Request) -> web.Response:
        if not self.settings.telegram_enabled:
            raise web.HTTPNotFound(text="the Telegram channel is off")
        given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        if not hmac.compare_digest(given.encode(), self.settings.telegram_webhook_secret.encode()):
            log.warning("Telegram webhook: wrong secret token from %s", request.remote)
            raise web.HTTPForbidden(text="wrong secret token")
        body = await _json_object(request)
        update_id = body.get("update_id")
        if not isinstance(update_id, int) or isinstance(update_id, bool):
            raise web.HTTPBadRequest(text="update_id: missing or not an integer")
        await self._store([(TELEGRAM, "message", telegram_key(body), body)])
        return web.json_response({"ok": True})

    # -- WhatsApp -------------------------------------------------------------------------

    async def whatsapp_verify(self, request: web.Request) -> web.Response:
        if not self.settings.whatsapp_enabled:
            raise web.HTTPNotFound(text="the WhatsApp channel is off")
        query = request.query
        token = query.get("hub.verify_token", "")
        if query.get("hub.mode") != "subscribe" or not hmac.compare_digest(
            token.encode(), self.settings.whatsapp_verify_token.encode()
        ):
            raise web.HTTPForbidden(text="verification failed")
        return web.Response(text=query.get("hub.challenge", ""))

    async def whatsapp(self, request: web.Request) -> web.Response:
        if not self.settings.whatsapp_enabled:
            raise web.HTTPNotFound(text="the WhatsApp channel is off")
        raw = await request.read()
        given = request.headers.get("X-Hub-Signature-256", "")
        expected = (
            "sha256="
            + hmac.new(self.settings.whatsapp_app_secret.encode(), raw, hashlib.sha256).hexdigest()
        )
        if not hmac.compare_digest(given.strip().lower().encode(), expected.encode()):
            log.warning("WhatsApp webhook: bad signature from %s", request.remote)
            raise web.HTTPForbidden(text="bad signature")
        body = _parse_object(raw)
        items = whatsapp_items(body)
        await self._store([(WHATSAPP, kind, ext, payload) for kind, ext, payload in items])
        return web.json_response({"ok": True})

    async def _store(self, rows: list[tuple[str, str, str, dict[str, Any]]]) -> None:
        new = 0
        try:
            for provider, kind, external_id, payload in rows:
                new += await store_update(self.sessions, provider, kind, external_id, payload)
        except Exception:
            log.exception("could not store a webhook update; the provider will retry")
            raise web.HTTPInternalServerError(text="not stored, please retry") from None
        if new:
            self.wake.set()


async def _json_object(request: web.Request) -> dict[str, Any]:
    return _parse_object(await request.read())


def _parse_object(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise web.HTTPBadRequest(text="malformed JSON") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="not a JSON object")
    return body
