"""``TicketService.DownloadAttachment``, mixed into ``TicketServicer``: an attachment's bytes
streamed in chunks, to whoever may see it.

An attachment is seen exactly as its ticket is (``TicketServicer._row``): for a customer
outside the ticket's audience the ticket, and so its files, do not exist. A customer never
gets the files of an internal comment, nor of a comment not recorded yet (its files are
stored before the workflow accepts it): for them too the answer is ``NOT_FOUND``, so that
what exists is not given away either.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from sqlalchemy import select

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import tickets_pb2 as tpb
from services.common.access import principal
from services.common.rpc_errors import Context, RpcError, not_found, require_id, require_text
from services.tickets import models as m
from services.tickets.readmodel import attachment_pb, customer_visible_attachments
from services.tickets.rpc_helpers import TicketRpcHelpers

CHUNK_BYTES = 64 * 1024


class AttachmentRpcs(TicketRpcHelpers):
    """DownloadAttachment."""

    async def _attachment(
        self, request: tpb.DownloadAttachmentRequest
    ) -> tuple[pb.Attachment, bytes]:
        ticket_id = require_id("ticket_id", request.ticket_id)
        attachment_id = require_text("attachment_id", request.attachment_id, 64)
        async with self.sessions() as session:
            await self._row(session, ticket_id)  # NOT_FOUND for a ticket the caller cannot see
            query = select(
                m.Attachment.id,
                m.Attachment.filename,
                m.Attachment.content_type,
                m.Attachment.size,
                m.Attachment.sha256,
            ).where(m.Attachment.id == attachment_id, m.Attachment.ticket_id == ticket_id)
            if principal().is_customer:
                query = query.where(customer_visible_attachments())
            found = (await session.execute(query)).first()
            if found is None:
                not_found(f"attachment {attachment_id} of ticket {ticket_id}")
            content = await session.scalar(
                select(m.Attachment.content).where(m.Attachment.id == attachment_id)
            )
        return attachment_pb(found), content or b""

    async def DownloadAttachment(
        self, request: tpb.DownloadAttachmentRequest, context: Context
    ) -> AsyncIterator[tpb.AttachmentChunk]:
        try:
            meta, content = await self._attachment(request)
        except RpcError as err:  # refused before anything is sent
            await context.abort(err.code, err.message)
        # The first chunk carries the metadata, even for an empty file.
        yield tpb.AttachmentChunk(attachment=meta, data=content[:CHUNK_BYTES])
        for start in range(CHUNK_BYTES, len(content), CHUNK_BYTES):
            yield tpb.AttachmentChunk(data=content[start : start + CHUNK_BYTES])
