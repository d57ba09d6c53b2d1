"""A ticket's whole life through the real system: services as processes, the Temporal dev
server, nats-server with JetStream, an SMTP relay, on SQLite or PostgreSQL."""

from __future__ import annotations

import uuid

import grpc
import pytest
from temporalio.client import Client

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import intake_pb2 as ipb
from helpdesk.v1 import notify_pb2 as npb
from helpdesk.v1 import tickets_pb2 as tpb
from tests.support import eventually
from tests.system.conftest import (
    agent_actor,
    customer_actor,
    mail_arrives,
    setup_directory,
)
from tests.system.harness import Mailbox, System

pytestmark = [pytest.mark.system, pytest.mark.db]


async def test_web_and_phone_requests_start_ticket_workflows(
    system: tuple[System, Mailbox], temporal_client: Client
) -> None:
    sut, box = system
    org, contact, _ = await setup_directory(sut, pb.CLOSED_TICKET_POLICY_FOLLOW_UP)
    intake = sut.intake()
    request_id = uuid.uuid4().hex
    web = ipb.SubmitWebRequestRequest(
        request_id=request_id,
        requester_email=contact.email.upper(),
        subject="Stampa fattura bloccata",
        description="Errore 1234 in stampa, Windows 11",
        product="Infinity",
        version="5.2",
        os="Windows 11",
        criticality=pb.CRITICALITY_BLOCKING,
    )
    first = await intake.SubmitWebRequest(web, metadata=sut.metadata)
    again = await intake.SubmitWebRequest(web, metadata=sut.metadata)
    assert first.created and not again.created
    assert again.ticket_id == first.ticket_id
    assert first.ticket.priority == pb.PRIORITY_HIGH
    assert first.ticket.channel == pb.CHANNEL_PORTAL

    phone = await intake.LogPhoneCall(
        ipb.LogPhoneCallRequest(
            request_id=uuid.uuid4().hex,
            organization_id=org.id,
            caller_name="Luca Verdi",
            caller_email=f"luca.{uuid.uuid4().hex[:6]}@rossi.it",
            caller_phone="0932 653167",
            nature="Richiesta listino prezzi",
            description="Vuole il tariffario aggiornato",
            callback_number="333 1234567",
            attachments_requested_by_email=True,
        ),
        metadata=sut.metadata,
    )
    assert phone.created and phone.ticket.channel == pb.CHANNEL_PHONE
    assert phone.ticket.callback_number == "333 1234567"
    assert phone.ticket.attachments_requested_by_email
    # The front desk's caller became a contact of the organisation.
    caller = await sut.directory().GetContactByEmail(
        dpb.GetContactByEmailRequest(email=phone.ticket.requester_email), metadata=sut.metadata
    )
    assert caller.organization_id == org.id

    for ticket_id in (first.ticket_id, phone.ticket_id):

        async def listed(ticket_id: int = ticket_id) -> list[object]:
            return [
                w
                async for w in temporal_client.list_workflows(
                    f"TicketId = {ticket_id} AND TicketStatus = 'NEW' "
                    f"AND OrganizationId = {org.id} AND ExecutionStatus = 'Running'"
                )
            ]

        found = await eventually(listed, timeout=30)
        assert found[0].id == f"ticket-{ticket_id}"  # type: ignore[attr-defined]
        await mail_arrives(box, ticket_id, f"#{ticket_id}")
        opened = box.about(ticket_id)[0]
        assert f"[#{ticket_id}]" in opened["Subject"]


async def test_whole_life_by_email_with_follow_up(system: tuple[System, Mailbox]) -> None:
    sut, box = system
    _, contact, agent = await setup_directory(sut, pb.CLOSED_TICKET_POLICY_FOLLOW_UP)
    tickets = sut.tickets()
    md = sut.metadata
    created = await sut.intake().SubmitWebRequest(
        ipb.SubmitWebRequestRequest(
            request_id=uuid.uuid4().hex,
            requester_email=contact.email,
            subject="Il gestionale non si apre",
            description="Dopo l'aggiornamento non parte.",
        ),
        metadata=md,
    )
    tid = created.ticket_id
    await mail_arrives(box, tid, f"#{tid}")

    ticket = await tickets.AssignTicket(
        tpb.AssignTicketRequest(ticket_id=tid, assignee_id=agent.id, actor=agent_actor(agent)),
        metadata=md,
    )
    assert ticket.status == pb.TICKET_STATUS_OPEN and ticket.assignee_id == agent.id
    assert ticket.milestones.HasField("taken_in_charge_at")

    answer = await tickets.AddComment(
        tpb.AddCommentRequest(
            ticket_id=tid,
            request_id="c1",
            visibility=pb.COMMENT_VISIBILITY_PUBLIC,
            author=agent_actor(agent),
            body="Può inviarci il messaggio di errore completo?",
        ),
        metadata=md,
    )
    retry = await tickets.AddComment(
        tpb.AddCommentRequest(
            ticket_id=tid,
            request_id="c1",
            visibility=pb.COMMENT_VISIBILITY_PUBLIC,
            author=agent_actor(agent),
            body="Può inviarci il messaggio di errore completo?",
        ),
        metadata=md,
    )
    assert retry.comment.id == answer.comment.id
    assert answer.ticket.milestones.HasField("first_feedback_at")
    await mail_arrives(box, tid, "messaggio di errore completo")

    pending = await tickets.ChangeStatus(
        tpb.ChangeStatusRequest(
            ticket_id=tid,
            status=pb.TICKET_STATUS_PENDING,
            actor=agent_actor(agent),
            reason="in attesa del cliente",
        ),
        metadata=md,
    )
    assert pending.status == pb.TICKET_STATUS_PENDING
    reply = await tickets.AddComment(
        tpb.AddCommentRequest(
            ticket_id=tid,
            request_id="c2",
            author=customer_actor(contact),
            body="Ecco l'errore: codice 1234",
        ),
        metadata=md,
    )
    assert reply.ticket.status == pb.TICKET_STATUS_OPEN

    solved = await tickets.ChangeStatus(
        tpb.ChangeStatusRequest(
            ticket_id=tid, status=pb.TICKET_STATUS_SOLVED, actor=agent_actor(agent)
        ),
        metadata=md,
    )
    assert solved.status == pb.TICKET_STATUS_SOLVED and solved.HasField("auto_close_at")
    await mail_arrives(box, tid, "risolta")
    reopened = await tickets.ReopenTicket(
        tpb.ReopenTicketRequest(
            ticket_id=tid, actor=customer_actor(contact), reason="non va ancora"
        ),
        metadata=md,
    )
    assert reopened.status == pb.TICKET_STATUS_OPEN and reopened.reopen_count == 1
    await tickets.ChangeStatus(
        tpb.ChangeStatusRequest(
            ticket_id=tid, status=pb.TICKET_STATUS_SOLVED, actor=agent_actor(agent)
        ),
        metadata=md,
    )
    await mail_arrives(box, tid, "risolta", count=2)

    async def closed() -> bool:
        t = await tickets.GetTicket(tpb.GetTicketRequest(id=tid), metadata=md)
        return t.status == pb.TICKET_STATUS_CLOSED

    await eventually(closed, timeout=40)
    final = await tickets.GetTicket(tpb.GetTicketRequest(id=tid), metadata=md)
    assert final.close_reason == pb.CLOSE_REASON_AUTO_CLOSED
    await mail_arrives(box, tid, "risulta chiusa")

    # A closed ticket is final: the lifecycle refuses to move it.
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await tickets.ChangeStatus(
            tpb.ChangeStatusRequest(
                ticket_id=tid, status=pb.TICKET_STATUS_OPEN, actor=agent_actor(agent)
            ),
            metadata=md,
        )
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "CLOSED" in (refused.value.details() or "")

    # FOLLOW_UP: the customer's message opens a new ticket linked to the closed one.
    follow = await tickets.AddComment(
        tpb.AddCommentRequest(
            ticket_id=tid,
            request_id="c3",
            author=customer_actor(contact),
            body="Il problema si è ripresentato",
        ),
        metadata=md,
    )
    assert follow.follow_up_created
    assert follow.ticket.id != tid and follow.ticket.follow_up_of == tid
    await mail_arrives(box, follow.ticket.id, f"#{tid}")
    old = await tickets.GetTicket(tpb.GetTicketRequest(id=tid), metadata=md)
    assert old.status == pb.TICKET_STATUS_CLOSED and list(old.follow_ups) == [follow.ticket.id]

    history = await tickets.GetTicketHistory(
        tpb.GetTicketHistoryRequest(ticket_id=tid), metadata=md
    )
    kinds = [e.type for e in history.events]
    assert kinds[0] == "created"
    for expected in (
        "assigned",
        "comment_added",
        "status_changed",
        "solved",
        "reopened",
        "closed",
        "follow_up_opened",
    ):
        assert expected in kinds
    assert any(e.actor_name == "Anna Bianchi" for e in history.events)

    deliveries = await sut.notify().ListNotifications(
        npb.ListNotificationsRequest(ticket_id=tid), metadata=md
    )
    assert len(deliveries.notifications) >= 5


async def test_reopen_policy_reactivates_closed_ticket(system: tuple[System, Mailbox]) -> None:
    sut, box = system
    _, contact, agent = await setup_directory(sut, pb.CLOSED_TICKET_POLICY_REOPEN)
    tickets = sut.tickets()
    md = sut.metadata
    created = await sut.intake().SubmitWebRequest(
        ipb.SubmitWebRequestRequest(
            requester_email=contact.email,
            subject="Scanner",
            description="La scansione non arriva nella cartella",
        ),
        metadata=md,
    )
    tid = created.ticket_id
    await tickets.AssignTicket(
        tpb.AssignTicketRequest(ticket_id=tid, assignee_id=agent.id), metadata=md
    )
    await tickets.ChangeStatus(
        tpb.ChangeStatusRequest(
            ticket_id=tid, status=pb.TICKET_STATUS_SOLVED, actor=agent_actor(agent)
        ),
        metadata=md,
    )
    confirmed = await tickets.ConfirmSolution(
        tpb.ConfirmSolutionRequest(ticket_id=tid, actor=customer_actor(contact)), metadata=md
    )
    assert confirmed.status == pb.TICKET_STATUS_CLOSED
    assert confirmed.close_reason == pb.CLOSE_REASON_CONFIRMED
    await mail_arrives(box, tid, "confermato la soluzione")

    again = await tickets.AddComment(
        tpb.AddCommentRequest(
            ticket_id=tid,
            request_id="r1",
            author=customer_actor(contact),
            body="Di nuovo la scansione non arriva",
        ),
        metadata=md,
    )
    assert not again.follow_up_created and again.reopened
    assert again.ticket.id == tid and again.ticket.status == pb.TICKET_STATUS_OPEN
    comments = await tickets.ListComments(tpb.ListCommentsRequest(ticket_id=tid), metadata=md)
    assert comments.comments[-1].body == "Di nuovo la scansione non arriva"


async def test_killing_the_tickets_service_loses_nothing(system: tuple[System, Mailbox]) -> None:
    sut, box = system
    _, contact, agent = await setup_directory(sut, pb.CLOSED_TICKET_POLICY_FOLLOW_UP)
    md = sut.metadata
    created = await sut.intake().SubmitWebRequest(
        ipb.SubmitWebRequestRequest(
            requester_email=contact.email, subject="Posta", description="Non riceviamo email"
        ),
        metadata=md,
    )
    tid = created.ticket_id
    await sut.tickets().AssignTicket(
        tpb.AssignTicketRequest(ticket_id=tid, assignee_id=agent.id), metadata=md
    )
    sut.kill("tickets")
    sut.start("tickets")
    await sut.wait_serving("tickets")
    tickets = sut.tickets()
    await tickets.AddComment(
        tpb.AddCommentRequest(
            ticket_id=tid,
            request_id="k1",
            author=agent_actor(agent),
            body="Verifichiamo il server di posta.",
        ),
        metadata=md,
    )
    sut.kill("tickets")
    sut.start("tickets")
    await sut.wait_serving("tickets")
    tickets = sut.tickets()
    ticket = await tickets.GetTicket(tpb.GetTicketRequest(id=tid), metadata=md)
    assert ticket.status == pb.TICKET_STATUS_OPEN and ticket.assignee_id == agent.id
    comments = await tickets.ListComments(tpb.ListCommentsRequest(ticket_id=tid), metadata=md)
    assert [c.body for c in comments.comments] == ["Verifichiamo il server di posta."]
    await mail_arrives(box, tid, "Verifichiamo il server di posta.")
    await mail_arrives(box, tid, f"#{tid}")
    history = await tickets.GetTicketHistory(
        tpb.GetTicketHistoryRequest(ticket_id=tid), metadata=md
    )
    assert [e.type for e in history.events] == ["created", "assigned", "comment_added"]
    # Every email exactly once: the acknowledgement, the answer, the assignee's alert.
    await mail_arrives(box, tid, "è assegnata a te")
    subjects = [m["Message-ID"] for m in box.about(tid)]
    assert len(subjects) == len(set(subjects)) == 3
