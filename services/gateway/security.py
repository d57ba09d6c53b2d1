"""What every response carries, and what every request may bring.

- Headers: a Content-Security-Policy with no inline script and no framing, ``nosniff``,
  no referrer (links from our emails carry tokens in their query).
- Request bodies are counted as they arrive; past ``MAX_REQUEST_BYTES`` reading stops with
  ``TooLarge``, so an oversized upload is never read whole.
- CSRF: a random cookie, repeated in a hidden field of every form (or an ``X-CSRF-Token``
  header from scripts); a state-changing request whose two copies differ is refused.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from services.common.limits import MAX_ATTACHMENTS_TOTAL
from services.gateway.errors import TooLarge

# The attachments of one request and room for the fields; base64 in the JSON API costs 4/3.
MAX_REQUEST_BYTES = MAX_ATTACHMENTS_TOTAL * 4 // 3 + 2 * 1024 * 1024
CSRF_COOKIE = "hd_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class Guard:
    """ASGI middleware: security headers on every response, bounded request bodies."""

    def __init__(self, app: ASGIApp, max_body: int = MAX_REQUEST_BYTES) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = 0
        for key, value in scope.get("headers", []):
            if key == b"content-length" and value.isdigit():
                declared = int(value)
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            if declared > self.max_body:
                raise TooLarge
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise TooLarge
            return message

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [
                    *message.get("headers", []),
                    *((k, v) for k, v in HEADERS if k not in present),
                ]
            await send(message)

        await self.app(scope, counted, with_headers)


def new_csrf_token() -> str:
    return secrets.token_urlsafe(24)


def csrf_ok(cookie: str | None, presented: str | None) -> bool:
    return bool(cookie and presented) and hmac.compare_digest(
        str(cookie).encode(), str(presented).encode()
    )
