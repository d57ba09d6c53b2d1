"""Who to tell: the DirectoryService of the tickets process, called over gRPC with the
service token (dev_escalation never reads the tickets service's tables)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

import grpc

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import directory_pb2 as dpb
from services.common.auth import bearer_metadata
from services.common.messages.programming import ProgPersonPayload, RecipientPayload

if TYPE_CHECKING:  # the async stub types exist only in the generated .pyi
    from helpdesk.v1.directory_pb2_grpc import DirectoryServiceAsyncStub

CALL_TIMEOUT = 30.0
PAGE_SIZE = 500


class Directory:
    """The few directory questions a programming ticket's events need answered.

    A failing call raises ``grpc.aio.AioRpcError``: the activity that asked fails and
    Temporal retries it, so nobody is left untold because the tickets process was down.
    """

    def __init__(self, stub: DirectoryServiceAsyncStub, service_token: str) -> None:
        self.stub = stub
        self.metadata = bearer_metadata(service_token)

    async def _call(self, rpc: Callable[..., Awaitable[Any]], request: Any) -> Any:
        return await rpc(request, metadata=self.metadata, timeout=CALL_TIMEOUT)

    async def organization_name(self, organization_id: int) -> str:
        if not organization_id:
            return ""
        try:
            org = cast(
                dpb.Organization,
                await self._call(
                    self.stub.GetOrganization, dpb.GetOrganizationRequest(id=organization_id)
                ),
            )
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.NOT_FOUND:
                return ""
            raise
        return org.name

    async def agent(self, agent_id: int) -> ProgPersonPayload | None:
        """A developer or agent by ID; None for 0 or an unknown ID."""
        if not agent_id:
            return None
        try:
            a = cast(
                dpb.Agent, await self._call(self.stub.GetAgent, dpb.GetAgentRequest(id=agent_id))
            )
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise
        return ProgPersonPayload(id=a.id, name=a.name, email=a.email)

    async def _agents(self, request: dpb.ListAgentsRequest) -> list[dpb.Agent]:
        found: list[dpb.Agent] = []
        request.page_size = PAGE_SIZE
        while True:
            reply = cast(dpb.ListAgentsResponse, await self._call(self.stub.ListAgents, request))
            found.extend(reply.agents)
            if not reply.next_page_token:
                return found
            request.page_token = reply.next_page_token

    async def on_call(self) -> list[RecipientPayload]:
        """Every agent on call (told at once of a HIGH programming ticket)."""
        agents = await self._agents(dpb.ListAgentsRequest(on_call_only=True))
        # The flag is checked here too: a directory that ignores the filter tells no one
        # rather than everyone.
        return [_agent_recipient(a) for a in agents if a.on_call]

    async def development_leads(self) -> list[RecipientPayload]:
        """The development leads (told when a HIGH ticket is not started in time)."""
        agents = await self._agents(dpb.ListAgentsRequest(development_leads_only=True))
        return [_agent_recipient(a) for a in agents if a.development_lead]

    async def referents(self, organization_id: int) -> list[RecipientPayload]:
        """The organisation's REFERENT contacts (told about scheduled remote updates)."""
        found: list[RecipientPayload] = []
        request = dpb.ListContactsRequest(organization_id=organization_id, page_size=PAGE_SIZE)
        while True:
            reply = cast(
                dpb.ListContactsResponse, await self._call(self.stub.ListContacts, request)
            )
            found += [
                RecipientPayload(
                    kind="CONTACT", id=c.id, name=c.name, email=c.email, locale=c.locale or "it"
                )
                for c in reply.contacts
                if c.role == pb.CONTACT_ROLE_REFERENT and c.organization_id == organization_id
            ]
            if not reply.next_page_token:
                return found
            request.page_token = reply.next_page_token


def _agent_recipient(a: dpb.Agent) -> RecipientPayload:
    # Agents have no locale in the directory: the help desk works in Italian.
    return RecipientPayload(kind="AGENT", id=a.id, name=a.name, email=a.email, locale="it")
