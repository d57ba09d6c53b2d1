"""An attachment streamed to the browser: always a download, except raster images asked
for inline; never sniffed, never run as a page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote

from fastapi.responses import Response, StreamingResponse

from helpdesk.v1 import common_pb2 as pb

# Shown inline only when asked (``?inline=1``); SVG is not here: it can carry script.
INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})


def _ascii_name(filename: str) -> str:
    name = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\;' else "_" for c in filename
    )
    return name or "file"


def download_response(
    meta: pb.Attachment, chunks: AsyncIterator[bytes], inline: bool = False
) -> StreamingResponse:
    content_type = meta.content_type or "application/octet-stream"
    disposition = "inline" if inline and content_type in INLINE_TYPES else "attachment"
    if disposition == "attachment" and content_type.startswith("text/html"):
        content_type = "application/octet-stream"
    headers = {
        "Content-Disposition": (
            f'{disposition}; filename="{_ascii_name(meta.filename)}"; '
            f"filename*=UTF-8''{quote(meta.filename)}"
        ),
        "Content-Security-Policy": "sandbox; default-src 'none'",
        "Cache-Control": "private, no-store",
    }
    if meta.size:
        headers["Content-Length"] = str(meta.size)
    return StreamingResponse(chunks, media_type=content_type, headers=headers)


def file_response(filename: str, content_type: str, content: bytes) -> Response:
    """A whole file held in memory (a price list): always a download, never sniffed."""
    headers = {
        "Content-Disposition": (
            f"attachment; filename=\"{_ascii_name(filename)}\"; filename*=UTF-8''{quote(filename)}"
        ),
        "Content-Security-Policy": "sandbox; default-src 'none'",
        "Cache-Control": "private, no-store",
    }
    return Response(content, media_type=content_type or "application/pdf", headers=headers)
