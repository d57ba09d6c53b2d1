"""The gateway's one typed client of the gRPC services: every call names whose token it
carries, so the services' access table decides what each person may do and see."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import dev_escalation_pb2_grpc as egrpc
from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import directory_pb2_grpc as dgrpc
from helpdesk.v1 import intake_pb2 as ipb
from helpdesk.v1 import intake_pb2_grpc as igrpc
from helpdesk.v1 import knowledge_pb2_grpc as kgrpc
from helpdesk.v1 import sales_pb2 as spb
from helpdesk.v1 import sales_pb2_grpc as sgrpc
from helpdesk.v1 import tickets_pb2 as tpb
from helpdesk.v1 import tickets_pb2_grpc as tgrpc
from services.common import telemetry
from services.common.auth import bearer_metadata
from services.common.settings import Settings

if TYPE_CHECKING:
    from helpdesk.v1.dev_escalation_pb2_grpc import DevEscalationServiceAsyncStub
    from helpdesk.v1.directory_pb2_grpc import DirectoryServiceAsyncStub
    from helpdesk.v1.intake_pb2_grpc import IntakeServiceAsyncStub
    from helpdesk.v1.knowledge_pb2_grpc import KnowledgeServiceAsyncStub
    from helpdesk.v1.sales_pb2_grpc import SalesServiceAsyncStub
    from helpdesk.v1.tickets_pb2_grpc import TicketServiceAsyncStub

# A request with 25 MiB of attachments, and room for the rest of the message.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
CALL_TIMEOUT = 30.0
UPLOAD_TIMEOUT = 120.0
Metadata = tuple[tuple[str, str], ...]


def _md(token: str) -> Metadata:
    return bearer_metadata(token) if token else ()


def call_md(token: str) -> Metadata:
    """The metadata of a call made as the holder of ``token``."""
    return _md(token)


def _source(address: str) -> Metadata:
    """The browser's address: the directory limits sign-in attempts per source by it."""
    return (("x-forwarded-for", address),) if address else ()


@dataclass
class Backend:
    """Channels to tickets (TicketService, DirectoryService) and intake."""

    tickets_channel: grpc.aio.Channel
    intake_channel: grpc.aio.Channel
    dev_channel: grpc.aio.Channel

    @classmethod
    def connect(cls, settings: Settings) -> Backend:
        options = [
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ]
        return cls(
            telemetry.insecure_channel(settings.tickets_addr, options=options),
            telemetry.insecure_channel(settings.intake_addr, options=options),
            telemetry.insecure_channel(settings.dev_escalation_addr, options=options),
        )

    async def close(self) -> None:
        await self.tickets_channel.close(None)
        await self.intake_channel.close(None)
        await self.dev_channel.close(None)

    # The stubs themselves, for the agent console: it calls many RPCs, each with the
    # signed-in person's token (``call_md``) and ``CALL_TIMEOUT``.
    @property
    def tickets(self) -> TicketServiceAsyncStub:
        return tgrpc.TicketServiceStub(self.tickets_channel)

    @property
    def directory(self) -> DirectoryServiceAsyncStub:
        return dgrpc.DirectoryServiceStub(self.tickets_channel)

    @property
    def knowledge(self) -> KnowledgeServiceAsyncStub:
        """The knowledge base: served by the tickets process, next to TicketService."""
        return kgrpc.KnowledgeServiceStub(self.tickets_channel)

    @property
    def sales(self) -> SalesServiceAsyncStub:
        """The sales office's requests and price lists: served by the tickets process."""
        return sgrpc.SalesServiceStub(self.tickets_channel)

    @property
    def intake(self) -> IntakeServiceAsyncStub:
        return igrpc.IntakeServiceStub(self.intake_channel)

    @property
    def dev(self) -> DevEscalationServiceAsyncStub:
        return egrpc.DevEscalationServiceStub(self.dev_channel)

    @property
    def _tickets(self) -> TicketServiceAsyncStub:
        return tgrpc.TicketServiceStub(self.tickets_channel)

    @property
    def _directory(self) -> DirectoryServiceAsyncStub:
        return dgrpc.DirectoryServiceStub(self.tickets_channel)

    @property
    def _intake(self) -> IntakeServiceAsyncStub:
        return igrpc.IntakeServiceStub(self.intake_channel)

    async def ready(self) -> bool:
        """Both processes answer SERVING on the standard health service."""
        for channel in (self.tickets_channel, self.intake_channel):
            stub = health_pb2_grpc.HealthStub(channel)
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
            except grpc.aio.AioRpcError:
                return False
            if reply.status != health_pb2.HealthCheckResponse.SERVING:
                return False
        return True

    # -- sign-in (no token) ------------------------------------------------------------

    async def login(self, email: str, password: str, source: str = "") -> dpb.LoginResponse:
        request = dpb.LoginRequest(email=email, password=password)
        reply: dpb.LoginResponse = await self._directory.Login(
            request, metadata=_source(source), timeout=CALL_TIMEOUT
        )
        return reply

    async def refresh(self, refresh_token: str) -> dpb.LoginResponse:
        request = dpb.RefreshTokenRequest(refresh_token=refresh_token)
        reply: dpb.LoginResponse = await self._directory.RefreshToken(request, timeout=CALL_TIMEOUT)
        return reply

    async def request_reset(self, email: str, source: str = "") -> None:
        await self._directory.RequestPasswordReset(
            dpb.RequestPasswordResetRequest(email=email),
            metadata=_source(source),
            timeout=CALL_TIMEOUT,
        )

    async def reset_password(
        self, email: str, code: str, new_password: str, source: str = ""
    ) -> None:
        await self._directory.ResetPassword(
            dpb.ResetPasswordRequest(email=email, code=code, new_password=new_password),
            metadata=_source(source),
            timeout=CALL_TIMEOUT,
        )

    # -- as the signed-in person -----------------------------------------------------

    async def set_password(
        self,
        token: str,
        kind: dpb.PrincipalKind.ValueType,
        principal_id: int,
        current: str,
        new: str,
    ) -> None:
        await self._directory.SetPassword(
            dpb.SetPasswordRequest(
                kind=kind, id=principal_id, current_password=current, new_password=new
            ),
            metadata=_md(token),
            timeout=CALL_TIMEOUT,
        )

    async def contact(self, token: str, contact_id: int) -> dpb.Contact:
        reply: dpb.Contact = await self._directory.GetContact(
            dpb.GetContactRequest(id=contact_id), metadata=_md(token), timeout=CALL_TIMEOUT
        )
        return reply

    async def organization(self, token: str, organization_id: int) -> dpb.Organization:
        reply: dpb.Organization = await self._directory.GetOrganization(
            dpb.GetOrganizationRequest(id=organization_id),
            metadata=_md(token),
            timeout=CALL_TIMEOUT,
        )
        return reply

    async def list_tickets(
        self,
        token: str,
        statuses: Sequence[pb.TicketStatus.ValueType],
        page_token: str = "",
        page_size: int = 100,
    ) -> tpb.ListTicketsResponse:
        reply: tpb.ListTicketsResponse = await self._tickets.ListTickets(
            tpb.ListTicketsRequest(statuses=statuses, page_size=page_size, page_token=page_token),
            metadata=_md(token),
            timeout=CALL_TIMEOUT,
        )
        return reply

    async def ticket(self, token: str, ticket_id: int) -> pb.Ticket:
        reply: pb.Ticket = await self._tickets.GetTicket(
            tpb.GetTicketRequest(id=ticket_id), metadata=_md(token), timeout=CALL_TIMEOUT
        )
        return reply

    async def comments(self, token: str, ticket_id: int) -> list[pb.Comment]:
        reply: tpb.ListCommentsResponse = await self._tickets.ListComments(
            tpb.ListCommentsRequest(ticket_id=ticket_id), metadata=_md(token), timeout=CALL_TIMEOUT
        )
        return list(reply.comments)

    async def submit_web_request(
        self, token: str, request: ipb.SubmitWebRequestRequest
    ) -> ipb.SubmitResponse:
        reply: ipb.SubmitResponse = await self._intake.SubmitWebRequest(
            request, metadata=_md(token), timeout=UPLOAD_TIMEOUT
        )
        return reply

    async def add_comment(
        self,
        token: str,
        ticket_id: int,
        request_id: str,
        body: str,
        attachments: list[pb.Attachment],
    ) -> tpb.AddCommentResponse:
        reply: tpb.AddCommentResponse = await self._tickets.AddComment(
            tpb.AddCommentRequest(
                ticket_id=ticket_id,
                request_id=request_id,
                visibility=pb.COMMENT_VISIBILITY_PUBLIC,
                body=body,
                attachments=attachments,
            ),
            metadata=_md(token),
            timeout=UPLOAD_TIMEOUT,
        )
        return reply

    async def confirm(self, token: str, ticket_id: int) -> pb.Ticket:
        reply: pb.Ticket = await self._tickets.ConfirmSolution(
            tpb.ConfirmSolutionRequest(ticket_id=ticket_id),
            metadata=_md(token),
            timeout=CALL_TIMEOUT,
        )
        return reply

    async def reopen(self, token: str, ticket_id: int, reason: str) -> pb.Ticket:
        reply: pb.Ticket = await self._tickets.ReopenTicket(
            tpb.ReopenTicketRequest(ticket_id=ticket_id, reason=reason),
            metadata=_md(token),
            timeout=CALL_TIMEOUT,
        )
        return reply

    async def download(
        self, token: str, ticket_id: int, attachment_id: str
    ) -> tuple[pb.Attachment, AsyncIterator[bytes]]:
        """The attachment's metadata (first chunk) and an iterator over its bytes. Errors
        (NOT_FOUND for what the caller may not see) surface before anything is sent."""
        call = self._tickets.DownloadAttachment(
            tpb.DownloadAttachmentRequest(ticket_id=ticket_id, attachment_id=attachment_id),
            metadata=_md(token),
            timeout=UPLOAD_TIMEOUT,
        )
        chunks = aiter(call)
        first: tpb.AttachmentChunk = await anext(chunks)

        async def data() -> AsyncIterator[bytes]:
            try:
                if first.data:
                    yield first.data
                async for chunk in chunks:
                    yield chunk.data
            finally:
                call.cancel()

        return first.attachment, data()

    # -- by link or form, no sign-in ----------------------------------------------------

    async def ticket_by_link(self, link_token: str) -> tpb.TicketLinkResponse:
        reply: tpb.TicketLinkResponse = await self._tickets.GetTicketByLink(
            tpb.TicketLinkRequest(token=link_token), timeout=CALL_TIMEOUT
        )
        return reply

    async def use_link(self, link_token: str) -> pb.Ticket:
        reply: pb.Ticket = await self._tickets.UseTicketLink(
            tpb.TicketLinkRequest(token=link_token), timeout=CALL_TIMEOUT
        )
        return reply

    async def submit_survey(
        self, survey_token: str, rating: int, comment: str
    ) -> tpb.SubmitSatisfactionResponse:
        reply: tpb.SubmitSatisfactionResponse = await self._tickets.SubmitSatisfaction(
            tpb.SubmitSatisfactionRequest(token=survey_token, rating=rating, comment=comment),
            timeout=CALL_TIMEOUT,
        )
        return reply

    async def submit_sales_request(
        self, request: ipb.SubmitSalesRequestRequest
    ) -> spb.SalesRequest:
        reply: spb.SalesRequest = await self._intake.SubmitSalesRequest(
            request, timeout=CALL_TIMEOUT
        )
        return reply
