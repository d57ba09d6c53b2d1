"""Keyset pages over the developers' queue: urgency rank, then age, then ID.

The token carries the last row's three keys, so a page boundary never moves while
tickets are added (a new ticket lands in its place in the order, never twice).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, or_

from services.common.rpc_errors import invalid
from services.dev_escalation import models as m

DEFAULT_PAGE = 50
MAX_PAGE = 500
_PREFIX = "q1"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


@dataclass(frozen=True)
class Cursor:
    urgency_rank: int
    created_at: datetime
    id: int


def page_size(requested: int) -> int:
    if requested < 0:
        invalid("page_size", "must not be negative")
    if requested > MAX_PAGE:
        invalid("page_size", f"must be at most {MAX_PAGE}")
    return requested or DEFAULT_PAGE


def encode(row: m.ProgrammingTicket) -> str:
    micros = (row.created_at - _EPOCH) // _MICRO
    raw = f"{_PREFIX}:{row.urgency_rank}:{micros}:{row.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(token: str) -> Cursor | None:
    """Where the page starts after, or None for the first page."""
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        prefix, rank, micros, ident = raw.split(":")
        if prefix != _PREFIX:
            raise ValueError(raw)
        created = _EPOCH + int(micros) * _MICRO
        return Cursor(int(rank), created, int(ident))
    except (ValueError, UnicodeDecodeError, binascii.Error, OverflowError, OSError):
        invalid("page_token", "is not a token this service issued")


def after(cursor: Cursor) -> ColumnElement[bool]:
    t = m.ProgrammingTicket
    return or_(
        t.urgency_rank > cursor.urgency_rank,
        and_(
            t.urgency_rank == cursor.urgency_rank,
            or_(
                t.created_at > cursor.created_at,
                and_(t.created_at == cursor.created_at, t.id > cursor.id),
            ),
        ),
    )


def ordered(query: Select[Any]) -> Select[Any]:
    t = m.ProgrammingTicket
    return query.order_by(t.urgency_rank, t.created_at, t.id)
