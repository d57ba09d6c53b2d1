"""Opaque, stable page tokens over integer keys."""

from __future__ import annotations

import base64
from typing import Any

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from services.common.rpc_errors import invalid

DEFAULT_PAGE = 50
MAX_PAGE = 500


def page_size(requested: int) -> int:
    if requested < 0:
        invalid("page_size", "must not be negative")
    return min(requested or DEFAULT_PAGE, MAX_PAGE)


def encode(last_key: int) -> str:
    return base64.urlsafe_b64encode(f"k:{last_key}".encode()).decode().rstrip("=")


def decode(token: str) -> int | None:
    """The key after which the page starts, or None for the first page."""
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        prefix, _, number = raw.partition(":")
        if prefix != "k":
            raise ValueError(raw)
        return int(number)
    except (ValueError, UnicodeDecodeError):
        invalid("page_token", "is not a token this service issued")


async def fetch_page(
    session: AsyncSession,
    query: Select[Any],
    key: InstrumentedAttribute[int],
    requested_size: int,
    token: str,
    newest_first: bool = False,
) -> tuple[list[Any], str]:
    """One page of ``query`` ordered by the integer ``key``, and the next page's token
    ("" on the last page). Keyset paging: stable while rows are added."""
    size = page_size(requested_size)
    cursor = decode(token)
    if cursor is not None:
        query = query.where(key < cursor if newest_first else key > cursor)
    query = query.order_by(key.desc() if newest_first else key).limit(size + 1)
    rows = list((await session.scalars(query)).all())
    more = len(rows) > size
    rows = rows[:size]
    return rows, encode(getattr(rows[-1], key.key)) if more else ""
