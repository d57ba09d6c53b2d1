"""Opaque, stable page tokens: over integer keys, and over composite orders (keyset)."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, and_, false, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, QueryableAttribute

from services.common.rpc_errors import invalid

DEFAULT_PAGE = 50
MAX_PAGE = 500

_R = TypeVar("_R")


def bounded(requested: int, default: int, maximum: int, field: str) -> int:
    """A requested count: 0 is ``default``, more than ``maximum`` is ``maximum``, a negative
    one is ``INVALID_ARGUMENT`` naming ``field``."""
    if requested < 0:
        invalid(field, "must not be negative")
    return min(requested or default, maximum)


def page_size(requested: int) -> int:
    return bounded(requested, DEFAULT_PAGE, MAX_PAGE, "page_size")


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
    rows = list(
        (await session.scalars(keyed_page_query(query, key, size, token, newest_first))).all()
    )
    rows, more = cut(rows, size)
    return rows, encode(getattr(rows[-1], key.key)) if more else ""


def keyed_page_query(
    query: Select[Any],
    key: InstrumentedAttribute[int],
    size: int,
    token: str,
    newest_first: bool = False,
) -> Select[Any]:
    """``query`` narrowed to the page after ``token`` in the order of the integer ``key``,
    with one row more than ``size``: whether another page follows."""
    cursor = decode(token)
    if cursor is not None:
        query = query.where(key < cursor if newest_first else key > cursor)
    return query.order_by(key.desc() if newest_first else key).limit(size + 1)


def cut(rows: list[_R], size: int) -> tuple[list[_R], bool]:
    """The page of the ``size + 1`` rows read, and whether another page follows it."""
    return rows[:size], len(rows) > size


@dataclass(frozen=True)
class SortKey:
    """One column of a keyset order. ``nullable``: NULLs may occur, and then only in a
    group that an earlier key sets apart (so that they never need comparing)."""

    expr: ColumnElement[Any] | QueryableAttribute[Any]
    descending: bool = False
    nullable: bool = False


def _jsonable(value: object) -> object:
    return {"t": value.isoformat()} if isinstance(value, datetime) else value


def _from_json(value: object) -> object:
    if isinstance(value, dict) and "t" in value:
        return datetime.fromisoformat(str(value["t"]))
    return value


def encode_keys(scope: str, values: Sequence[object]) -> str:
    raw = json.dumps({"s": scope, "v": [_jsonable(v) for v in values]}, separators=(",", ":"))
    return "o" + base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_keys(token: str, scope: str, count: int) -> list[object] | None:
    """The sort values after which the page starts (None: the first page). A token of
    another order or other filters is ``INVALID_ARGUMENT``."""
    if not token:
        return None
    try:
        if not token.startswith("o"):
            raise ValueError(token)
        body = token[1:]
        data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        values = [_from_json(v) for v in data["v"]]
        if data["s"] != scope or len(values) != count:
            raise ValueError(token)
        return values
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        invalid("page_token", "is not a token this service issued for this order and filters")


def _after(keys: Sequence[SortKey], values: Sequence[object]) -> ColumnElement[bool]:
    """Rows strictly after ``values`` in the order of ``keys`` (lexicographic)."""
    alternatives: list[ColumnElement[bool]] = []
    equal: list[ColumnElement[bool]] = []
    for key, value in zip(keys, values, strict=True):
        if value is None:  # this group's rows all have NULL here: only later keys decide
            equal.append(key.expr.is_(None))
            continue
        beyond = key.expr < value if key.descending else key.expr > value
        alternatives.append(and_(*equal, beyond) if equal else beyond)
        equal.append(key.expr == value)
    return or_(*alternatives) if alternatives else false()


async def fetch_ordered_page(
    session: AsyncSession,
    query: Select[Any],
    keys: Sequence[SortKey],
    requested_size: int,
    token: str,
    scope: str,
) -> tuple[list[Any], str]:
    """One page of ``query`` (selecting one entity) in the order of ``keys`` (the last
    one unique, such as the ID), and the next page's token ("" on the last page). Keyset
    paging: a row that moves after the page was read is neither lost twice nor doubled
    within the order it had."""
    size = page_size(requested_size)
    ordered = ordered_page_query(query, keys, size, token, scope)
    result, more = cut(list((await session.execute(ordered)).all()), size)
    rows = [r[0] for r in result]
    token_out = encode_keys(scope, list(result[-1][1:])) if more else ""
    return rows, token_out


def ordered_page_query(
    query: Select[Any], keys: Sequence[SortKey], size: int, token: str, scope: str
) -> Select[Any]:
    """``query`` narrowed to the page after ``token`` in the order of ``keys``, with one
    row more than ``size``, and the keys' values as its last columns (the next token's)."""
    cursor = decode_keys(token, scope, len(keys))
    if cursor is not None:
        query = query.where(_after(keys, cursor))
    return (
        query.add_columns(*(k.expr for k in keys))
        .order_by(*(k.expr.desc() if k.descending else k.expr for k in keys))
        .limit(size + 1)
    )
