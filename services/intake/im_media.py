"""Downloading the files of an instant message: the Bot API's ``getFile`` and file path,
the Cloud API's media endpoint and its URL, at the configured base URLs. Bounded as email
attachments are (``services.intake.mailparse.Limits``): a larger file is refused."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from urllib.parse import quote

import aiohttp

from helpdesk.v1 import common_pb2 as pb
from services.common.settings import Settings
from services.intake.im_parse import TELEGRAM, ImMessage, Media
from services.intake.mailparse import DEFAULT_LIMITS, Limits, human_size, safe_content_type

log = logging.getLogger("helpdesk.intake.im_media")

TIMEOUT = aiohttp.ClientTimeout(total=120, connect=10)
CHUNK = 64 * 1024


class MediaTransient(Exception):
    """The provider could not give the file now (429, 5xx, network): try again later."""


@dataclass(frozen=True)
class Refused:
    """A file the ticket or comment is made without, to name on it and tell the sender."""

    filename: str
    kind: str  # size | count | unavailable | refused (by the tickets service)
    size: int = 0  # bytes, when known
    limit: int = 0  # bytes (size) or files (count)
    detail: str = ""

    def why(self, locale: str) -> str:
        en = locale.startswith("en")
        if self.kind == "size":
            limit = human_size(self.limit)
            size = f"{human_size(self.size)}, " if self.size else ""
            return f"{size}over the {limit} limit" if en else f"{size}oltre il limite di {limit}"
        if self.kind == "count":
            return (
                f"more than {self.limit} files" if en else f"oltre il limite di {self.limit} file"
            )
        if self.kind == "refused":
            return f"refused: {self.detail}" if en else f"rifiutato: {self.detail}"
        return f"not available: {self.detail}" if en else f"non disponibile: {self.detail}"

    def note(self) -> str:
        """How the ticket names it (in Italian, as every note)."""
        return f"{self.filename} ({self.why('it')})"


@dataclass
class Fetched:
    attachments: list[pb.Attachment] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)


class _TooLarge(Exception):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"{size} bytes, over {limit}")
        self.size, self.limit = size, limit


class _Unavailable(Exception):
    pass


class MediaFetcher:
    def __init__(self, settings: Settings, limits: Limits = DEFAULT_LIMITS) -> None:
        self.settings = settings
        self.limits = limits
        self._http: aiohttp.ClientSession | None = None

    async def _client(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=TIMEOUT)
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def fetch(self, msg: ImMessage, give_up: bool = False) -> Fetched:
        """Every file of ``msg`` within the limits; ``MediaTransient`` when the provider
        should be asked again later (unless ``give_up``: the file is then refused)."""
        out = Fetched()
        total = 0
        for media in msg.media:
            if len(out.attachments) >= self.limits.max_attachments:
                out.refused.append(
                    Refused(media.filename, "count", limit=self.limits.max_attachments)
                )
                continue
            # The file's own limit, or what is left of the message's (named as such).
            left = self.limits.max_total_attachment_bytes - total
            limit = min(self.limits.max_attachment_bytes, left)
            named = self.limits.max_attachment_bytes
            if left < self.limits.max_attachment_bytes:
                named = self.limits.max_total_attachment_bytes
            if media.size > limit:
                out.refused.append(Refused(media.filename, "size", media.size, named))
                continue
            try:
                if msg.provider == TELEGRAM:
                    content = await self._telegram(media, limit)
                else:
                    content, mime = await self._whatsapp(media, limit)
                    media = Media(media.kind, media.file_id, media.filename, mime, media.size)
            except _TooLarge as err:
                out.refused.append(Refused(media.filename, "size", err.size, named))
                continue
            except _Unavailable as err:
                out.refused.append(Refused(media.filename, "unavailable", detail=str(err)))
                continue
            except (TimeoutError, aiohttp.ClientError, MediaTransient) as err:
                if not give_up:
                    raise MediaTransient(f"{media.filename}: {err}") from err
                out.refused.append(Refused(media.filename, "unavailable", detail=str(err)))
                continue
            total += len(content)
            out.attachments.append(
                pb.Attachment(
                    filename=media.filename,
                    content_type=safe_content_type(media.content_type),
                    content=content,
                )
            )
        return out

    async def _telegram(self, media: Media, limit: int) -> bytes:
        base = self.settings.telegram_api_base.rstrip("/")
        token = self.settings.telegram_bot_token
        http = await self._client()
        async with http.get(
            f"{base}/bot{token}/getFile", params={"file_id": media.file_id}
        ) as reply:
            _check(reply.status)
            body = await reply.json(content_type=None)
        result = body.get("result") if isinstance(body, dict) else None
        if not isinstance(result, dict) or not result.get("file_path"):
            raise _Unavailable("getFile gave no file_path")
        size = int(result.get("file_size") or 0)
        if size > limit:
            raise _TooLarge(size, limit)
        path = quote(str(result["file_path"]), safe="/")
        return await self._download(http, f"{base}/file/bot{token}/{path}", limit, {})

    async def _whatsapp(self, media: Media, limit: int) -> tuple[bytes, str]:
        base = self.settings.whatsapp_api_base.rstrip("/")
        auth = {"Authorization": f"Bearer {self.settings.whatsapp_access_token}"}
        http = await self._client()
        async with http.get(f"{base}/{quote(media.file_id, safe='')}", headers=auth) as reply:
            _check(reply.status)
            body = await reply.json(content_type=None)
        if not isinstance(body, dict) or not isinstance(body.get("url"), str):
            raise _Unavailable("the media endpoint gave no url")
        size = int(body.get("file_size") or 0)
        if size > limit:
            raise _TooLarge(size, limit)
        mime = str(body.get("mime_type") or media.content_type)
        return await self._download(http, body["url"], limit, auth), mime

    async def _download(
        self, http: aiohttp.ClientSession, url: str, limit: int, headers: dict[str, str]
    ) -> bytes:
        async with http.get(url, headers=headers) as reply:
            _check(reply.status)
            if (reply.content_length or 0) > limit:
                raise _TooLarge(reply.content_length or 0, limit)
            data = bytearray()
            async for chunk in reply.content.iter_chunked(CHUNK):
                data.extend(chunk)
                if len(data) > limit:
                    raise _TooLarge(0, limit)  # how much more there was is not known
                await asyncio.sleep(0)
            return bytes(data)


def _check(status: int) -> None:
    if status == 429 or status >= 500:
        raise MediaTransient(f"HTTP {status}")
    if status >= 400:
        raise _Unavailable(f"HTTP {status}")
