"""TicketService and DirectoryService over a real in-process gRPC server, with the ticket
workflow on the Temporal dev server: the status codes of DESIGN.md §4 for bad input, and
that a refused call changes nothing."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from sqlalchemy import select
from temporalio.worker import Worker

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import tickets_pb2 as tpb
from services.common import workflow_updates
from services.common.access import Principal, Role
from services.common.auth import bearer_metadata
from services.tickets import models as m
from services.tickets.readmodel import state_from_row
from services.tickets.servicer import MAX_COMMENT_BYTES, MAX_COMMENTS_IN_FLIGHT
from tests.services.ticket_api import ADMIN_TOKEN, SIGNER, Api
from tests.support import TicketsStack, eventually
from workflows.contracts import TICKET_WORKFLOW, ticket_workflow_id
from workflows.worker import WORKFLOWS

pytestmark = [pytest.mark.db]

MD = bearer_metadata(ADMIN_TOKEN)


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


async def test_the_same_contact_added_twice_at_once_is_one_contact(api: Api) -> None:
    """Two calls racing past the "already there?" check: one contact, the other call
    ALREADY_EXISTS (not an internal error)."""
    org = api.stack.org_id
    results = await asyncio.gather(
        *(
            api.directory.AddContact(
                dpb.AddContactRequest(
                    organization_id=org, name=f"Piero {n}", email="piero.gialli@rossi.it"
                ),
                metadata=MD,
            )
            for n in range(4)
        ),
        return_exceptions=True,
    )
    made = [r for r in results if isinstance(r, dpb.Contact)]
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(made) == 1, results
    assert [e.code() for e in refused] == [grpc.StatusCode.ALREADY_EXISTS] * 3
    found = await api.directory.GetContactByEmail(
        dpb.GetContactByEmailRequest(email="piero.gialli@rossi.it"), metadata=MD
    )
    assert found.id == made[0].id


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
        tpb.ChangeStatusRequest(
            ticket_id=created.id, status=pb.TICKET_STATUS_CLOSED, actor=agent, hours_spent=0.5
        ),
        metadata=MD,
    )
    assert closed.close_reason == pb.CLOSE_REASON_VERIFIED
    assert closed.hours_spent == 0.5
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
            tpb.ListTicketsRequest(
                organization_id=stack.org_id,
                page_size=2,
                page_token=token,
                order_by=tpb.TICKET_ORDER_ID,
            ),
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
            tpb.ChangeStatusRequest(
                ticket_id=ticket.id,
                status=status,
                actor=agent,
                hours_spent=0.25 if status == pb.TICKET_STATUS_CLOSED else 0,
            ),
            metadata=MD,
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


SERVICE_MD = bearer_metadata("test-service-token")


def _customer(contact_id: int, org_id: int) -> tuple[tuple[str, str], ...]:
    return bearer_metadata(
        SIGNER.access_token(
            Principal(role=Role.USER, kind="CONTACT", id=contact_id, organization_id=org_id)
        )
    )


async def test_request_ids_are_each_callers_own(api: Api) -> None:
    """A key chosen by one caller never finds another caller's ticket or comment, and the
    keys intake and notify use (``email:``, ``im:``, ``follow-up:`` ...) are the services'."""
    stack = api.stack
    other = await api.directory.CreateOrganization(
        dpb.CreateOrganizationRequest(name="Beta Srl"), metadata=MD
    )
    bruno = await api.directory.AddContact(
        dpb.AddContactRequest(organization_id=other.id, name="Bruno", email="bruno@beta.it"),
        metadata=MD,
    )
    as_bruno = _customer(bruno.id, other.id)
    as_mario = _customer(stack.contact_id, stack.org_id)

    # Bruno (Beta) cannot claim the keys intake will use for Alfa's messages; nor may an
    # admin or an agent.
    for key in (
        "email:mid:<victim@alfa.it>",
        "im:telegram:4242",
        "follow-up:1:x",
        "intake:web-1",
        "notify-bounce:e:1",
    ):
        for who in (as_bruno, MD):
            code, details = await _code(
                api.tickets.CreateTicket(
                    tpb.CreateTicketRequest(request_id=key, subject="Mio", requester_id=bruno.id),
                    metadata=who,
                )
            )
            assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("request_id:")
    # The service may, and gets its own ticket back on a retry; the same key for another
    # requester is ALREADY_EXISTS, never the first requester's ticket.
    by_service = await api.tickets.CreateTicket(
        tpb.CreateTicketRequest(
            request_id="im:telegram:4242", subject="Bloccato", requester_id=stack.contact_id
        ),
        metadata=SERVICE_MD,
    )
    again = await api.tickets.CreateTicket(
        tpb.CreateTicketRequest(
            request_id="im:telegram:4242", subject="Bloccato", requester_id=stack.contact_id
        ),
        metadata=SERVICE_MD,
    )
    assert again.id == by_service.id
    code, _ = await _code(
        api.tickets.CreateTicket(
            tpb.CreateTicketRequest(
                request_id="im:telegram:4242", subject="Altro", requester_id=bruno.id
            ),
            metadata=SERVICE_MD,
        )
    )
    assert code == grpc.StatusCode.ALREADY_EXISTS

    # The same key from two customers: two tickets, each in its own organisation.
    theirs = await api.tickets.CreateTicket(
        tpb.CreateTicketRequest(request_id="web-1", subject="Di Bruno"), metadata=as_bruno
    )
    mine = await api.tickets.CreateTicket(
        tpb.CreateTicketRequest(request_id="web-1", subject="Di Mario"), metadata=as_mario
    )
    assert mine.id != theirs.id
    assert (mine.organization_id, mine.subject) == (stack.org_id, "Di Mario")
    retried = await api.tickets.CreateTicket(
        tpb.CreateTicketRequest(request_id="web-1", subject="Di Mario"), metadata=as_mario
    )
    assert retried.id == mine.id

    # Comments: an agent's internal note under a key is not what a customer gets back for
    # the same key; each retry finds its own comment.
    agent = tpb.Actor(kind=pb.AUTHOR_KIND_AGENT, id=stack.agent_id)
    note = await api.tickets.AddComment(
        tpb.AddCommentRequest(
            ticket_id=mine.id,
            request_id="k1",
            body="Nota interna: cliente moroso",
            author=agent,
            visibility=pb.COMMENT_VISIBILITY_INTERNAL,
        ),
        metadata=MD,
    )
    me = tpb.Actor(kind=pb.AUTHOR_KIND_CONTACT, id=stack.contact_id)
    answer = await api.tickets.AddComment(
        tpb.AddCommentRequest(ticket_id=mine.id, request_id="k1", body="Grazie", author=me),
        metadata=as_mario,
    )
    assert answer.comment.id != note.comment.id
    assert (answer.comment.body, answer.comment.visibility) == (
        "Grazie",
        pb.COMMENT_VISIBILITY_PUBLIC,
    )
    answer_again = await api.tickets.AddComment(
        tpb.AddCommentRequest(ticket_id=mine.id, request_id="k1", body="Grazie", author=me),
        metadata=as_mario,
    )
    assert answer_again.comment.id == answer.comment.id
    code, details = await _code(
        api.tickets.AddComment(
            tpb.AddCommentRequest(
                ticket_id=mine.id, request_id="email:mid:<x@alfa.it>", body="Hi", author=me
            ),
            metadata=as_mario,
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("request_id:")
    # The service's key names one author: another author under it is ALREADY_EXISTS.
    await api.tickets.AddComment(
        tpb.AddCommentRequest(
            ticket_id=mine.id, request_id="email:mid:<1@alfa.it>", body="Via mail", author=me
        ),
        metadata=SERVICE_MD,
    )
    code, _ = await _code(
        api.tickets.AddComment(
            tpb.AddCommentRequest(
                ticket_id=mine.id,
                request_id="email:mid:<1@alfa.it>",
                body="Via mail",
                author=agent,
            ),
            metadata=SERVICE_MD,
        )
    )
    assert code == grpc.StatusCode.ALREADY_EXISTS
    comments = await api.tickets.ListComments(
        tpb.ListCommentsRequest(ticket_id=mine.id, include_internal=True), metadata=MD
    )
    assert sorted(c.body for c in comments.comments) == [
        "Grazie",
        "Nota interna: cliente moroso",
        "Via mail",
    ]


async def test_a_comment_is_bounded_in_utf8_bytes(api: Api) -> None:
    ticket_id = await api.stack.new_ticket()
    agent = tpb.Actor(kind=pb.AUTHOR_KIND_AGENT, id=api.stack.agent_id)
    # 70 000 characters (under the character limit), 280 000 bytes.
    code, details = await _code(
        api.tickets.AddComment(
            tpb.AddCommentRequest(ticket_id=ticket_id, body="😀" * 70_000, author=agent),
            metadata=MD,
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details == f"body: is larger than {MAX_COMMENT_BYTES} bytes (UTF-8)"
    # Italian text at the character limit still fits.
    fits = await api.tickets.AddComment(
        tpb.AddCommentRequest(ticket_id=ticket_id, body="è" * 100_000, author=agent),
        metadata=MD,
    )
    assert len(fits.comment.body) == 100_000


async def test_a_burst_of_comments_cannot_outgrow_the_ticket_history(api: Api) -> None:
    """Comments arriving faster than they are recorded: at most MAX_COMMENTS_IN_FLIGHT per
    ticket reach its workflow, past its history bound the workflow refuses new ones as busy
    (UNAVAILABLE: retry), and once they are recorded it continues as new; every retry
    lands, once."""
    stack = api.stack
    stack.creator.max_history_bytes = 300 * 1024
    ticket_id = await stack.new_ticket()
    handle = api.stack.client.get_workflow_handle(ticket_workflow_id(ticket_id))
    first_run = (await handle.describe()).run_id
    agent = tpb.Actor(kind=pb.AUTHOR_KIND_AGENT, id=stack.agent_id)

    def comment(n: int) -> Any:
        return api.tickets.AddComment(
            tpb.AddCommentRequest(
                ticket_id=ticket_id,
                request_id=f"burst-{n}",
                body=f"{n} " + "x" * 99_000,
                author=agent,
                visibility=pb.COMMENT_VISIBILITY_INTERNAL,
            ),
            metadata=MD,
        )

    async def outcome(n: int) -> str:
        try:
            await comment(n)
        except grpc.aio.AioRpcError as err:
            assert err.code() == grpc.StatusCode.UNAVAILABLE, err
            return "busy" if "busy" in (err.details() or "") else "too many"
        return "ok"

    burst = [asyncio.ensure_future(outcome(n)) for n in range(10)]
    for first_answer in asyncio.as_completed(burst):
        if await first_answer == "ok":
            break
    late = await outcome(10)  # while the first run still records the others
    outcomes = [await b for b in burst] + [late]
    assert outcomes.count("too many") >= 10 - MAX_COMMENTS_IN_FLIGHT
    assert late == "busy", outcomes

    async def continued() -> bool:
        return (await handle.describe()).run_id != first_run

    await eventually(continued)
    first = await api.stack.client.get_workflow_handle(
        ticket_workflow_id(ticket_id), run_id=first_run
    ).describe()
    size = first.raw_description.workflow_execution_info.history_size_bytes
    assert size < 300 * 1024 + MAX_COMMENTS_IN_FLIGHT * 2 * 100_000 + 100_000, size
    for n, result in enumerate(outcomes):
        if result != "ok":
            await comment(n)
    comments = await api.tickets.ListComments(
        tpb.ListCommentsRequest(ticket_id=ticket_id, include_internal=True), metadata=MD
    )
    assert sorted(int(c.body.split()[0]) for c in comments.comments) == list(range(11))


async def test_attachments_stay_for_the_retry_of_an_unanswered_comment(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The workflow update does not answer in time (UNAVAILABLE) but lands later: the
    comment's files are kept, and the retry with the same request_id finds the comment
    with them, stored once."""
    stack = api.stack
    # A ticket whose workflow runs on a task queue no worker polls yet: updates wait.
    ticket_id = await _ticket_on_a_stalled_queue(stack)
    monkeypatch.setattr(workflow_updates, "UPDATE_RPC_TIMEOUT", timedelta(seconds=2))
    agent = tpb.Actor(kind=pb.AUTHOR_KIND_AGENT, id=stack.agent_id)
    request = tpb.AddCommentRequest(
        ticket_id=ticket_id,
        request_id="lento-1",
        body="Ecco il log",
        author=agent,
        attachments=[pb.Attachment(filename="errore.log", content=b"Traceback ...")],
    )
    code, _ = await _code(api.tickets.AddComment(request, metadata=MD))
    assert code == grpc.StatusCode.UNAVAILABLE
    async with Worker(stack.client, task_queue=STALLED_QUEUE, workflows=WORKFLOWS):

        async def recorded() -> bool:
            async with stack.sessions() as session:
                return bool(
                    (
                        await session.scalars(
                            select(m.Comment).where(m.Comment.ticket_id == ticket_id)
                        )
                    ).first()
                )

        await eventually(recorded)  # the unanswered update landed after all
        retry = await api.tickets.AddComment(request, metadata=MD)
    assert retry.comment.body == "Ecco il log"
    assert [a.filename for a in retry.comment.attachments] == ["errore.log"]
    async with stack.sessions() as session:
        rows = (
            await session.scalars(select(m.Attachment).where(m.Attachment.ticket_id == ticket_id))
        ).all()
    assert [r.comment_id for r in rows] == [retry.comment.id]


STALLED_QUEUE = "helpdesk-test-stalled-workflows"


async def _ticket_on_a_stalled_queue(stack: TicketsStack) -> int:
    """A stored ticket whose workflow is started on STALLED_QUEUE (polled by nobody)."""
    now = datetime.now(UTC)
    async with stack.sessions() as session:
        row = m.Ticket(
            subject="Lento",
            description="",
            organization_id=stack.org_id,
            requester_id=stack.contact_id,
            channel="PORTAL",
            priority="NORMAL",
            status="NEW",
            received_at=now,
            breaches=[],
            event_seq=0,
            workflow_started=True,
            updated_at=now,
        )
        session.add(row)
        await session.commit()
        org = await session.get(m.Organization, stack.org_id)
        assert org is not None
        state = state_from_row(row, org, stack.creator.auto_close_after_seconds)
    await stack.client.start_workflow(
        TICKET_WORKFLOW,
        stack.creator.workflow_input(state, "created"),
        id=ticket_workflow_id(row.id),
        task_queue=STALLED_QUEUE,
    )
    return row.id
