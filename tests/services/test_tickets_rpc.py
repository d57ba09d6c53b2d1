"""TicketService and DirectoryService over a real in-process gRPC server, with the ticket
workflow on the Temporal dev server: the status codes of DESIGN.md §4 for bad input, and
that a refused call changes nothing."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest
from temporalio.client import Client

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import directory_pb2_grpc as dgrpc
from helpdesk.v1 import tickets_pb2 as tpb
from helpdesk.v1 import tickets_pb2_grpc as tgrpc
from services.common.auth import bearer_metadata
from services.common.grpc_server import ServiceServer
from services.common.settings import Settings
from services.tickets.directory import DirectoryServicer
from services.tickets.servicer import TicketServicer
from tests.support import SIGNING_KEY, TicketsStack, tickets_stack

pytestmark = [pytest.mark.db]

TOKEN = "test-admin-token"
MD = bearer_metadata(TOKEN)


@dataclass
class Api:
    tickets: tgrpc.TicketServiceStub
    directory: dgrpc.DirectoryServiceStub
    stack: TicketsStack


@pytest.fixture
async def api(temporal_client: Client, database_url: str, nats_url: str) -> AsyncIterator[Api]:
    settings = dataclasses.replace(
        Settings.from_env(),
        admin_token=TOKEN,
        service_token="test-service-token",
        signing_key=SIGNING_KEY,
    )
    async with tickets_stack(temporal_client, database_url, nats_url) as stack:

        def register(server: grpc.aio.Server) -> None:
            tgrpc.add_TicketServiceServicer_to_server(
                TicketServicer(stack.sessions, temporal_client, stack.creator), server
            )
            dgrpc.add_DirectoryServiceServicer_to_server(
                DirectoryServicer(stack.sessions, stack.credentials), server
            )

        server = ServiceServer(settings, "127.0.0.1:0", ["helpdesk.v1.TicketService"], register)
        await server.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
        try:
            yield Api(
                tgrpc.TicketServiceStub(channel),  # type: ignore[arg-type]
                dgrpc.DirectoryServiceStub(channel),  # type: ignore[arg-type]
                stack,
            )
        finally:
            await channel.close(None)
            await server.stop(1)


async def _code(call: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call  # type: ignore[misc]
    return err.value.code(), err.value.details() or ""


async def test_no_token_or_a_bad_one_is_unauthenticated(api: Api) -> None:
    req = tpb.GetTicketRequest(id=1)
    code, _ = await _code(api.tickets.GetTicket(req))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    code, _ = await _code(api.tickets.GetTicket(req, metadata=bearer_metadata("nope")))
    assert code == grpc.StatusCode.UNAUTHENTICATED


async def test_unknown_ids_are_not_found(api: Api) -> None:
    for call in (
        api.tickets.GetTicket(tpb.GetTicketRequest(id=999), metadata=MD),
        api.tickets.GetTicketHistory(tpb.GetTicketHistoryRequest(ticket_id=999), metadata=MD),
        api.directory.GetOrganization(dpb.GetOrganizationRequest(id=999), metadata=MD),
        api.directory.GetContactByEmail(
            dpb.GetContactByEmailRequest(email="nobody@nowhere.it"), metadata=MD
        ),
        api.directory.AddContact(
            dpb.AddContactRequest(organization_id=999, name="X", email="x@rossi.it"),
            metadata=MD,
        ),
    ):
        code, _ = await _code(call)
        assert code == grpc.StatusCode.NOT_FOUND


async def test_malformed_input_names_the_field(api: Api) -> None:
    stack = api.stack
    cases = [
        (
            api.directory.CreateOrganization(dpb.CreateOrganizationRequest(name=" "), metadata=MD),
            "name",
        ),
        (
            api.directory.CreateOrganization(
                dpb.CreateOrganizationRequest(name="Acme", email_domains=["not a domain"]),
                metadata=MD,
            ),
            "email_domains",
        ),
        (
            api.directory.AddContact(
                dpb.AddContactRequest(organization_id=stack.org_id, name="Y", email="y@@rossi"),
                metadata=MD,
            ),
            "email",
        ),
        (
            api.directory.CreateAgent(
                dpb.CreateAgentRequest(name="Z", email="z@desk.it"), metadata=MD
            ),
            "role",
        ),
        (
            api.tickets.CreateTicket(
                tpb.CreateTicketRequest(subject="", requester_id=stack.contact_id), metadata=MD
            ),
            "subject",
        ),
        (
            api.tickets.CreateTicket(
                tpb.CreateTicketRequest(subject="x" * 301, requester_id=stack.contact_id),
                metadata=MD,
            ),
            "subject",
        ),
        (
            api.tickets.CreateTicket(
                tpb.CreateTicketRequest(
                    subject="Urgente!",
                    requester_id=stack.contact_id,
                    priority=pb.PRIORITY_URGENT,
                    criticality=pb.CRITICALITY_NON_BLOCKING,
                ),
                metadata=MD,
            ),
            "priority",
        ),
        (
            api.tickets.ListTickets(tpb.ListTicketsRequest(page_token="garbage"), metadata=MD),
            "page_token",
        ),
        (
            api.tickets.AddComment(
                tpb.AddCommentRequest(
                    ticket_id=1, body=" ", author=tpb.Actor(kind=pb.AUTHOR_KIND_AGENT, id=1)
                ),
                metadata=MD,
            ),
            "body",
        ),
    ]
    for call, field in cases:
        code, details = await _code(call)
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (field, details)
        assert details.startswith(field), (field, details)
    orgs = await api.directory.ListOrganizations(dpb.ListOrganizationsRequest(), metadata=MD)
    assert [o.id for o in orgs.organizations] == [stack.org_id]  # nothing stored


async def test_duplicate_contact_email_is_already_exists_whatever_the_case(api: Api) -> None:
    org = api.stack.org_id
    first = await api.directory.AddContact(
        dpb.AddContactRequest(organization_id=org, name="Lucia", email="Lucia.Neri@rossi.it"),
        metadata=MD,
    )
    assert first.locale == "it" and first.role == pb.CONTACT_ROLE_USER
    code, _ = await _code(
        api.directory.AddContact(
            dpb.AddContactRequest(organization_id=org, name="Lucia 2", email="lucia.neri@ROSSI.it"),
            metadata=MD,
        )
    )
    assert code == grpc.StatusCode.ALREADY_EXISTS
    found = await api.directory.GetContactByEmail(
        dpb.GetContactByEmailRequest(email="LUCIA.NERI@rossi.it"), metadata=MD
    )
    assert found.id == first.id and found.name == "Lucia"


async def test_forbidden_moves_name_both_states_and_change_nothing(api: Api) -> None:
    stack = api.stack
    created = await api.tickets.CreateTicket(
        tpb.CreateTicketRequest(
            request_id=uuid.uuid4().hex, subject="Posta lenta", requester_id=stack.contact_id
        ),
        metadata=MD,
    )
    agent = tpb.Actor(kind=pb.AUTHOR_KIND_AGENT, id=stack.agent_id)
    customer = tpb.Actor(kind=pb.AUTHOR_KIND_CONTACT, id=stack.contact_id)
    code, details = await _code(
        api.tickets.ConfirmSolution(
            tpb.ConfirmSolutionRequest(ticket_id=created.id, actor=customer), metadata=MD
        )
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert "NEW" in details and "CLOSED" in details
    code, details = await _code(
        api.tickets.ReopenTicket(
            tpb.ReopenTicketRequest(ticket_id=created.id, actor=customer), metadata=MD
        )
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "NEW" in details

    await api.tickets.ChangeStatus(
        tpb.ChangeStatusRequest(ticket_id=created.id, status=pb.TICKET_STATUS_SOLVED, actor=agent),
        metadata=MD,
    )
    closed = await api.tickets.ChangeStatus(
        tpb.ChangeStatusRequest(ticket_id=created.id, status=pb.TICKET_STATUS_CLOSED, actor=agent),
        metadata=MD,
    )
    assert closed.close_reason == pb.CLOSE_REASON_VERIFIED
    code, details = await _code(
        api.tickets.ChangeStatus(
            tpb.ChangeStatusRequest(
                ticket_id=created.id, status=pb.TICKET_STATUS_OPEN, actor=agent
            ),
            metadata=MD,
        )
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert "CLOSED" in details and "OPEN" in details
    after = await api.tickets.GetTicket(tpb.GetTicketRequest(id=created.id), metadata=MD)
    assert after.status == pb.TICKET_STATUS_CLOSED and after.updated_at == closed.updated_at
    history = await api.tickets.GetTicketHistory(
        tpb.GetTicketHistoryRequest(ticket_id=created.id), metadata=MD
    )
    assert [e.type for e in history.events] == ["created", "solved", "closed"]


async def test_lists_filter_and_page_stably(api: Api) -> None:
    stack = api.stack
    ids = []
    for n in range(5):
        t = await api.tickets.CreateTicket(
            tpb.CreateTicketRequest(
                request_id=f"list-{n}",
                subject=f"Richiesta {n}",
                requester_id=stack.contact_id,
                criticality=pb.CRITICALITY_BLOCKING if n % 2 else 0,
            ),
            metadata=MD,
        )
        ids.append(t.id)
    seen: list[int] = []
    token = ""
    while True:
        page = await api.tickets.ListTickets(
            tpb.ListTicketsRequest(organization_id=stack.org_id, page_size=2, page_token=token),
            metadata=MD,
        )
        seen += [t.id for t in page.tickets]
        token = page.next_page_token
        if not token:
            break
    assert seen == sorted(ids, reverse=True)
    high = await api.tickets.ListTickets(
        tpb.ListTicketsRequest(priorities=[pb.PRIORITY_HIGH], statuses=[pb.TICKET_STATUS_NEW]),
        metadata=MD,
    )
    assert sorted(t.id for t in high.tickets) == [ids[1], ids[3]]
    other_org = await api.tickets.ListTickets(
        tpb.ListTicketsRequest(organization_id=stack.org_id + 1000), metadata=MD
    )
    assert list(other_org.tickets) == []


async def test_a_customer_cannot_act_on_another_organisations_ticket(api: Api) -> None:
    stack = api.stack
    other = await api.directory.CreateOrganization(
        dpb.CreateOrganizationRequest(name="Bianchi SpA"), metadata=MD
    )
    stranger = await api.directory.AddContact(
        dpb.AddContactRequest(organization_id=other.id, name="Eva", email="eva@bianchi.it"),
        metadata=MD,
    )
    ticket = await api.tickets.CreateTicket(
        tpb.CreateTicketRequest(
            request_id="mine", subject="Mia richiesta", requester_id=stack.contact_id
        ),
        metadata=MD,
    )
    code, _ = await _code(
        api.tickets.AddComment(
            tpb.AddCommentRequest(
                ticket_id=ticket.id,
                body="ciao",
                author=tpb.Actor(kind=pb.AUTHOR_KIND_CONTACT, id=stranger.id),
            ),
            metadata=MD,
        )
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED
    comments = await api.tickets.ListComments(
        tpb.ListCommentsRequest(ticket_id=ticket.id, include_internal=True), metadata=MD
    )
    assert list(comments.comments) == []


async def test_a_refused_comment_leaves_no_attachment_behind(api: Api) -> None:
    stack = api.stack
    agent = tpb.Actor(kind=pb.AUTHOR_KIND_AGENT, id=stack.agent_id)
    shot = pb.Attachment(
        filename="../../etc/errore.png", content_type="image/png", content=b"\x89PNG fake"
    )
    ticket = await api.tickets.CreateTicket(
        tpb.CreateTicketRequest(
            request_id="att", subject="Schermata", requester_id=stack.contact_id
        ),
        metadata=MD,
    )
    kept = await api.tickets.AddComment(
        tpb.AddCommentRequest(
            ticket_id=ticket.id, request_id="a1", body="Allego", author=agent, attachments=[shot]
        ),
        metadata=MD,
    )
    name = kept.comment.attachments[0].filename  # never a path taken from the request
    assert "/" not in name and name.endswith("errore.png")
    assert len(kept.comment.attachments[0].sha256) == 64
    for status in (pb.TICKET_STATUS_SOLVED, pb.TICKET_STATUS_CLOSED):
        await api.tickets.ChangeStatus(
            tpb.ChangeStatusRequest(ticket_id=ticket.id, status=status, actor=agent), metadata=MD
        )
    code, _ = await _code(
        api.tickets.AddComment(
            tpb.AddCommentRequest(
                ticket_id=ticket.id,
                request_id="a2",
                body="Ancora",
                author=agent,
                attachments=[shot],
            ),
            metadata=MD,
        )
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    after = await api.tickets.GetTicket(tpb.GetTicketRequest(id=ticket.id), metadata=MD)
    assert len(after.attachments) == 1


async def test_a_system_note_is_internal_and_moves_nothing(api: Api) -> None:
    ticket_id = await api.stack.new_ticket()
    agent = tpb.Actor(kind=pb.AUTHOR_KIND_AGENT, id=api.stack.agent_id)
    await api.tickets.AssignTicket(
        tpb.AssignTicketRequest(ticket_id=ticket_id, assignee_id=api.stack.agent_id), metadata=MD
    )
    await api.tickets.ChangeStatus(
        tpb.ChangeStatusRequest(ticket_id=ticket_id, status=pb.TICKET_STATUS_PENDING, actor=agent),
        metadata=MD,
    )
    system = tpb.Actor(kind=pb.AUTHOR_KIND_SYSTEM)
    public = tpb.AddCommentRequest(
        ticket_id=ticket_id, author=system, body="Risposta automatica: fuori ufficio"
    )
    code, details = await _code(api.tickets.AddComment(public, metadata=MD))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "visibility" in details
    note = await api.tickets.AddComment(
        tpb.AddCommentRequest(
            ticket_id=ticket_id,
            author=system,
            visibility=pb.COMMENT_VISIBILITY_INTERNAL,
            body="Risposta automatica: fuori ufficio",
        ),
        metadata=MD,
    )
    assert note.ticket.status == pb.TICKET_STATUS_PENDING
    assert note.comment.author_kind == pb.AUTHOR_KIND_SYSTEM
    assert not note.reopened
