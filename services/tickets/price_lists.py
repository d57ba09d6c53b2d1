"""The price list's versions (``SalesService`` Upload/Get/ListPriceLists), mixed into
``SalesServicer``: admins upload a PDF, everyone signed in reads the latest (customers
download it from the portal); older versions are kept and can be asked for by number.

Versions are numbered 1, 2, ... by upload, two uploads at once taking turns
(``sales_store.take_turn``); a retry of an upload (its request_id) is the version it made.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import defer

from helpdesk.v1 import sales_pb2 as spb
from services.common.access import principal, scoped_key
from services.common.limits import MAX_ATTACHMENT_BYTES, MiB
from services.common.rpc_errors import (
    Context,
    invalid,
    not_found,
    optional_text,
    require_text,
    rpc_method,
)
from services.tickets import models as m
from services.tickets.convert import ts
from services.tickets.sales_store import take_turn

PDF = "application/pdf"
PDF_MAGIC = b"%PDF-"
MAX_TITLE = 300
MAX_FILENAME = 255
MAX_KEY = 150
VERSION_ATTEMPTS = 3


def price_list_pb(row: m.PriceList, with_content: bool) -> spb.PriceList:
    return spb.PriceList(
        version=row.version,
        title=row.title,
        filename=row.filename,
        content_type=row.content_type,
        size=row.size,
        sha256=row.sha256,
        uploaded_at=ts(row.uploaded_at),
        uploaded_by=row.uploaded_by,
        content=row.content if with_content else b"",
    )


def _filename(value: str) -> str:
    name = require_text("filename", value, MAX_FILENAME)
    if any(c in name for c in "/\\\r\n\0"):
        invalid("filename", "must be a file name, without a path")
    return name


def _pdf(content_type: str, content: bytes) -> None:
    if content_type.strip().lower() != PDF:
        invalid("content_type", f"must be {PDF}, not {content_type or 'empty'!r}")
    if not content:
        invalid("content", "is empty")
    if len(content) > MAX_ATTACHMENT_BYTES:
        invalid("content", f"is larger than {MAX_ATTACHMENT_BYTES // MiB} MiB")
    if not content.startswith(PDF_MAGIC):
        invalid("content", "is not a PDF (it must start with %PDF-)")


class PriceListRpcs:
    """UploadPriceList, GetPriceList, ListPriceLists."""

    sessions: async_sessionmaker[AsyncSession]

    @rpc_method
    async def UploadPriceList(
        self, request: spb.UploadPriceListRequest, context: Context
    ) -> spb.PriceList:
        """The next version; the same request_id again: the version it made."""
        who = principal()
        key = scoped_key(
            "request_id", optional_text("request_id", request.request_id, MAX_KEY), who
        )
        title = require_text("title", request.title, MAX_TITLE)
        filename = _filename(request.filename)
        _pdf(request.content_type, request.content)
        content = bytes(request.content)
        digest = hashlib.sha256(content).hexdigest()
        for attempt in range(VERSION_ATTEMPTS):
            async with self.sessions() as session:
                if key:
                    earlier = await session.scalar(
                        select(m.PriceList).where(m.PriceList.request_key == key)
                    )
                    if earlier is not None:
                        return price_list_pb(earlier, with_content=True)
                await take_turn(session, "price_lists")
                row = m.PriceList(
                    version=select(
                        func.coalesce(func.max(m.PriceList.version), 0) + 1
                    ).scalar_subquery(),
                    title=title,
                    filename=filename,
                    content_type=PDF,
                    size=len(content),
                    sha256=digest,
                    content=content,
                    uploaded_at=datetime.now(UTC),
                    uploaded_by=who.name,
                    request_key=key or None,
                )
                session.add(row)
                try:
                    await session.flush()
                    await session.refresh(row)
                    await session.commit()
                except IntegrityError:
                    await session.rollback()
                    if attempt == VERSION_ATTEMPTS - 1:
                        raise
                    continue
                return price_list_pb(row, with_content=True)
        raise AssertionError("unreachable")

    @rpc_method
    async def GetPriceList(
        self, request: spb.GetPriceListRequest, context: Context
    ) -> spb.PriceList:
        if request.version < 0:
            invalid("version", "must be positive (or 0 for the latest)")
        async with self.sessions() as session:
            if request.version:
                row = await session.get(m.PriceList, request.version)
                if row is None:
                    not_found(f"price list version {request.version}")
            else:
                row = await session.scalar(
                    select(m.PriceList).order_by(m.PriceList.version.desc()).limit(1)
                )
                if row is None:
                    not_found("price list (none was uploaded yet)")
            return price_list_pb(row, request.with_content)

    @rpc_method
    async def ListPriceLists(
        self, request: spb.ListPriceListsRequest, context: Context
    ) -> spb.ListPriceListsResponse:
        async with self.sessions() as session:
            rows = await session.scalars(
                select(m.PriceList)
                .options(defer(m.PriceList.content))  # a list never carries the files
                .order_by(m.PriceList.version.desc())
            )
            return spb.ListPriceListsResponse(
                price_lists=[price_list_pb(r, with_content=False) for r in rows]
            )
