"""``IntakeService.RegisterImGroup``: a customer's dedicated group chat (seed 001).
Mixed into the intake servicer by ``services.intake.app``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import grpc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import intake_pb2 as ipb
from services.common.rpc_errors import Context, invalid, not_found, require_id, rpc_method
from services.intake.im_models import ImGroup
from services.intake.im_parse import PROVIDERS

if TYPE_CHECKING:
    from helpdesk.v1.directory_pb2_grpc import DirectoryServiceAsyncStub


class ImGroupRpcs:
    sessions: async_sessionmaker[AsyncSession]
    directory: DirectoryServiceAsyncStub
    metadata: Any

    @rpc_method
    async def RegisterImGroup(
        self, request: ipb.RegisterImGroupRequest, context: Context
    ) -> ipb.RegisterImGroupResponse:
        provider = request.provider.strip().lower()
        if provider not in PROVIDERS:
            invalid("provider", f"must be one of {', '.join(PROVIDERS)}")
        chat_id = request.chat_id.strip()
        if not chat_id or len(chat_id) > 64 or not chat_id.lstrip("-").isdigit():
            invalid("chat_id", "must be the chat's numeric ID")
        org_id = require_id("organization_id", request.organization_id)
        try:
            await self.directory.GetOrganization(
                dpb.GetOrganizationRequest(id=org_id), metadata=self.metadata, timeout=30
            )
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.NOT_FOUND:
                not_found(f"organization {org_id}")
            raise
        async with self.sessions() as session:
            row = await session.get(ImGroup, (provider, chat_id))
            if row is None:
                row = ImGroup(provider=provider, chat_id=chat_id, created_at=datetime.now(UTC))
                session.add(row)
            row.organization_id = org_id
            await session.commit()
        return ipb.RegisterImGroupResponse(
            provider=provider, chat_id=chat_id, organization_id=org_id
        )
