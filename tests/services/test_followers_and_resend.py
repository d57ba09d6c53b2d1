"""The people around a ticket, through the real parts: the tickets service in-process (its
workflow on the Temporal dev server, a real database), notify on nats-server mailing a
loopback SMTP server, and intake's mail processor for the ``Cc`` of a mail.

- followers (CC): added by an agent or by a mail's ``Cc``, only the organisation's own
  contacts; they receive the public answers and status emails, never internal notes;
- answers re-sent by the ticket's ID (seed 000), each recorded as a resend of the
  original delivery;
- a merge mails the merged ticket's requester, who then follows the surviving ticket.
"""

from __future__ import annotations

import uuid
from email.message import EmailMessage
from typing import Any

import grpc
import pytest

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import notify_pb2
from helpdesk.v1 import tickets_pb2 as tpb
from services.common.access import Principal, Role
from services.common.auth import bearer_metadata
from services.intake.models import InboundMessage
from services.intake.smtp import store_message
from services.tickets.creation import NewTicket
from tests.services import people_desk
from tests.services.notify_fixtures import body_of
from tests.services.people_desk import ADMIN, SIGNER, SUPPORT, Desk, taken
from tests.support import eventually

pytestmark = [pytest.mark.db, pytest.mark.timeout(120)]

# The desk: tickets, notify and the loopback SMTP relay (tests/services/people_desk.py).
desk = people_desk.desk


async def _code(call: Any) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    return err.value.code()


async def _answer(desk: Desk, ticket_id: int, body: str, internal: bool = False) -> str:
    reply = await desk.tickets.AddComment(
        tpb.AddCommentRequest(
            ticket_id=ticket_id,
            body=body,
            visibility=pb.COMMENT_VISIBILITY_INTERNAL if internal else pb.COMMENT_VISIBILITY_PUBLIC,
        ),
        metadata=desk.agent,
    )
    return str(reply.comment.id)


async def test_followers_get_answers_and_status_mails_never_internal_notes(desk: Desk) -> None:
    ticket_id = await taken(desk, "Il gestionale si blocca")
    add = tpb.AddFollowerRequest(ticket_id=ticket_id, email="Luisa@Rossi.it", request_id="f1")
    ticket = await desk.tickets.AddFollower(add, metadata=desk.agent)
    assert [(f.email, f.name, f.source) for f in ticket.followers] == [
        ("luisa@rossi.it", "Luisa Bianchi", "AGENT")
    ]
    # Again, by the same key or another: still one follower, one line in the history.
    await desk.tickets.AddFollower(add, metadata=desk.agent)
    second = tpb.AddFollowerRequest(ticket_id=ticket_id, email="luisa@rossi.it", request_id="f2")
    assert len((await desk.tickets.AddFollower(second, metadata=desk.agent)).followers) == 1
    read = await desk.tickets.GetTicket(tpb.GetTicketRequest(id=ticket_id), metadata=desk.agent)
    assert [f.email for f in read.followers] == ["luisa@rossi.it"]
    history = await desk.tickets.GetTicketHistory(
        tpb.GetTicketHistoryRequest(ticket_id=ticket_id), metadata=desk.agent
    )
    assert [e.detail for e in history.events if e.type == "follower_added"] == [
        "Luisa Bianchi <luisa@rossi.it> follows the ticket"
    ]
    # Refused, changing nothing: another organisation's contact, unknown people and
    # tickets, a customer doing desk work.
    refused = [
        (tpb.AddFollowerRequest(ticket_id=ticket_id, email=desk.stranger), desk.agent),
        (tpb.AddFollowerRequest(ticket_id=ticket_id, email="chi@rossi.it"), desk.agent),
        (tpb.AddFollowerRequest(ticket_id=ticket_id, contact_id=999_999), desk.agent),
        (tpb.AddFollowerRequest(ticket_id=999_999, email=desk.piero), desk.agent),
        (tpb.AddFollowerRequest(ticket_id=ticket_id), desk.agent),
    ]
    codes = [await _code(desk.tickets.AddFollower(r, metadata=md)) for r, md in refused]
    assert codes == [
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.INVALID_ARGUMENT,
    ]
    customer = Principal(
        role=Role.USER, kind="CONTACT", id=desk.stack.contact_id, organization_id=desk.stack.org_id
    )
    customer_md = bearer_metadata(SIGNER.access_token(customer))
    code = await _code(
        desk.tickets.AddFollower(
            tpb.AddFollowerRequest(ticket_id=ticket_id, email=desk.piero), metadata=customer_md
        )
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED

    await _answer(desk, ticket_id, "Nota interna: verificare la licenza.", internal=True)
    await _answer(desk, ticket_id, "Riavvii il server del gestionale, per favore.")
    await desk.tickets.ChangeStatus(
        tpb.ChangeStatusRequest(ticket_id=ticket_id, status=pb.TICKET_STATUS_SOLVED),
        metadata=desk.agent,
    )
    await eventually(lambda: len(desk.to(desk.luisa, "solved")) == 1)
    for person in (desk.mario, desk.luisa):
        [answer] = desk.to(person, "agent_reply")
        assert "Riavvii il server del gestionale" in body_of(answer.message)
        # The follower's copy says why it came; the requester's does not.
        assert ("Ricevi questo messaggio in copia" in body_of(answer.message)) == (
            person == desk.luisa
        )
        assert f"[#{ticket_id}]" in str(answer.message["Subject"])
        assert len(desk.to(person, "solved")) == 1
    # Each one their own email (one delivery row each), and never the internal note.
    assert all(len(r.rcpt_tos) == 1 for r in desk.mail.received)
    assert not any("verificare la licenza" in body_of(r.message) for r in desk.mail.received)

    # Removed, Luisa hears no more; Piero, added after, does.
    removed = await desk.tickets.RemoveFollower(
        tpb.RemoveFollowerRequest(ticket_id=ticket_id, email=desk.luisa), metadata=desk.agent
    )
    assert list(removed.followers) == []
    await desk.tickets.RemoveFollower(  # removing again changes nothing
        tpb.RemoveFollowerRequest(ticket_id=ticket_id, email=desk.luisa), metadata=desk.agent
    )
    await desk.tickets.ReopenTicket(
        tpb.ReopenTicketRequest(
            ticket_id=ticket_id,
            actor=tpb.Actor(kind=pb.AUTHOR_KIND_CONTACT, id=desk.stack.contact_id),
        ),
        metadata=customer_md,
    )
    await _answer(desk, ticket_id, "Primo messaggio dopo la rimozione.")
    await desk.tickets.AddFollower(
        tpb.AddFollowerRequest(ticket_id=ticket_id, email=desk.piero), metadata=desk.agent
    )
    await _answer(desk, ticket_id, "Secondo messaggio, anche per Piero.")
    # Events are mailed in order: once Piero has the second, the first was handled.
    await eventually(lambda: desk.to(desk.piero, "agent_reply"))
    assert len(desk.to(desk.mario, "agent_reply")) == 3
    assert len(desk.to(desk.luisa, "agent_reply")) == 1
    [piero] = desk.to(desk.piero, "agent_reply")
    assert "anche per Piero" in body_of(piero.message)


async def _log(desk: Desk, ticket_id: int) -> list[notify_pb2.Notification]:
    listed = await desk.notify.ListNotifications(
        notify_pb2.ListNotificationsRequest(ticket_id=ticket_id),
        metadata=bearer_metadata(ADMIN),
    )
    return list(listed.notifications)


async def test_answers_are_resent_by_ticket_id_as_resends_of_the_originals(desk: Desk) -> None:
    ticket_id = await taken(desk, "Fattura elettronica scartata")
    first = await _answer(desk, ticket_id, "Controlli la partita IVA del cliente.")
    note = await _answer(desk, ticket_id, "Interno: forse un bug.", internal=True)
    second = await _answer(desk, ticket_id, "Corretto: reinvii la fattura.")
    await eventually(lambda: len(desk.to(desk.mario, "agent_reply")) == 2)
    originals = {
        str(r.message["Message-ID"]): body_of(r.message) for r in desk.to(desk.mario, "agent_reply")
    }

    request = tpb.ResendAnswersRequest(ticket_id=ticket_id, request_id="lost-1")
    done = await desk.tickets.ResendAnswers(request, metadata=desk.agent)
    assert list(done.comment_ids) == [first, second]
    assert done.recipient_email == desk.mario
    await eventually(lambda: len(desk.to(desk.mario, "answer_resent")) == 2)
    mails = desk.to(desk.mario, "answer_resent")
    for mail, text in zip(mails, ["partita IVA", "reinvii la fattura"], strict=True):
        body = body_of(mail.message)
        assert text in body and "ti inviamo di nuovo la risposta" in body
        # In the thread of the email it re-sends.
        assert mail.message["In-Reply-To"] in originals
        assert text in originals[mail.message["In-Reply-To"]]
        assert f"[#{ticket_id}]" in str(mail.message["Subject"])
    assert not any("forse un bug" in body_of(r.message) for r in desk.mail.received)

    # A retry sends nothing again; the same key for something else is refused.
    assert (await desk.tickets.ResendAnswers(request, metadata=desk.agent)).comment_ids == [
        first,
        second,
    ]
    other = tpb.ResendAnswersRequest(
        ticket_id=ticket_id, request_id="lost-1", recipient_email=desk.luisa
    )
    assert await _code(desk.tickets.ResendAnswers(other, metadata=desk.agent)) == (
        grpc.StatusCode.ALREADY_EXISTS
    )
    # One answer to a colleague of the same organisation.
    to_luisa = tpb.ResendAnswersRequest(
        ticket_id=ticket_id, comment_id=second, recipient_email="LUISA@rossi.it"
    )
    assert (await desk.tickets.ResendAnswers(to_luisa, metadata=desk.agent)).comment_ids == [second]
    await eventually(lambda: desk.to(desk.luisa, "answer_resent"))
    [luisa] = desk.to(desk.luisa, "answer_resent")
    assert "reinvii la fattura" in body_of(luisa.message)
    assert len(desk.to(desk.mario, "answer_resent")) == 2  # the retry sent nothing

    # The delivery log: each resend names the delivery it re-sends.
    log = await _log(desk, ticket_id)
    by_id = {n.id: n for n in log}
    resends = [n for n in log if n.template == "answer_resent"]
    assert [n.recipient for n in resends] == [desk.mario, desk.mario, desk.luisa]
    for n in resends:
        original = by_id[n.resend_of]
        assert original.template == "agent_reply" and original.recipient == desk.mario
        assert n.resend_of_message_id == original.message_id
        assert n.event_type == "answers_resent"
    assert all(not n.resend_of for n in log if n.template != "answer_resent")
    history = await desk.tickets.GetTicketHistory(
        tpb.GetTicketHistoryRequest(ticket_id=ticket_id), metadata=desk.agent
    )
    assert [e.detail for e in history.events if e.type == "answers_resent"] == [
        f"2 answer(s) re-sent to Mario Rossi <{desk.mario}>",
        "1 answer(s) re-sent to Luisa Bianchi <luisa@rossi.it>",
    ]

    # Refused: outside the organisation, unknown ticket or comment, an internal note.
    bad = [
        tpb.ResendAnswersRequest(ticket_id=ticket_id, recipient_email=desk.stranger),
        tpb.ResendAnswersRequest(ticket_id=ticket_id, recipient_email="nessuno@esempio.it"),
        tpb.ResendAnswersRequest(ticket_id=999_999),
        tpb.ResendAnswersRequest(ticket_id=ticket_id, comment_id="no-such-comment"),
        tpb.ResendAnswersRequest(ticket_id=ticket_id, comment_id=note),
    ]
    assert [await _code(desk.tickets.ResendAnswers(r, metadata=desk.agent)) for r in bad] == [
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.INVALID_ARGUMENT,
    ]
    fresh = await desk.stack.new_ticket("Nessuna risposta ancora")
    no_answers = tpb.ResendAnswersRequest(ticket_id=fresh)
    assert await _code(desk.tickets.ResendAnswers(no_answers, metadata=desk.agent)) == (
        grpc.StatusCode.FAILED_PRECONDITION
    )


async def test_a_merge_tells_the_merged_requester_who_then_follows_the_survivor(
    desk: Desk,
) -> None:
    survivor = await taken(desk, "La stampante non stampa")
    row, _ = await desk.stack.creator.create(
        NewTicket(
            request_id=uuid.uuid4().hex,
            subject="Stampante ferma al secondo piano",
            description="Non stampa",
            requester_id=await desk.contact_id(desk.luisa),
            channel="EMAIL",
            priority="NORMAL",
        )
    )
    merged = await desk.tickets.MergeTickets(
        tpb.MergeTicketsRequest(
            source_ticket_id=row.id, target_ticket_id=survivor, reason="stesso problema"
        ),
        metadata=desk.agent,
    )
    assert merged.id == survivor
    assert [(f.email, f.source) for f in merged.followers] == [(desk.luisa, "MERGE")]
    await eventually(lambda: desk.to(desk.luisa, "merged_into"))
    [told] = desk.to(desk.luisa, "merged_into")
    assert str(told.message["Subject"]) == (
        f"[#{row.id}] Richiesta unita alla #{survivor}: Stampante ferma al secondo piano"
    )
    assert f"della richiesta #{survivor}" in body_of(told.message)
    assert not desk.to(desk.mario, "merged_into")

    # The survivor's answers now reach the merged ticket's requester too.
    await _answer(desk, survivor, "Sostituito il toner: ora stampa.")
    await eventually(lambda: desk.to(desk.luisa, "agent_reply"))
    [answer] = desk.to(desk.luisa, "agent_reply")
    assert f"[#{survivor}]" in str(answer.message["Subject"])
    assert "Sostituito il toner" in body_of(answer.message)
    await eventually(lambda: desk.to(desk.mario, "agent_reply"))


def _mail(sender: str, subject: str, body: str, **headers: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = SUPPORT
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{uuid.uuid4().hex}@rossi.it>"
    for name, value in headers.items():
        msg[name] = value
    msg.set_content(body)
    return msg.as_bytes()


async def _ingest(desk: Desk, raw: bytes, sender: str) -> int:
    stored, new = await store_message(desk.intake, raw, sender, [SUPPORT])
    assert new
    await desk.processor.process(stored)
    async with desk.intake() as session:
        row = await session.get(InboundMessage, stored)
        assert row is not None and row.ticket_id, row and row.detail
        return int(row.ticket_id)


async def test_the_cc_of_a_mail_from_the_organisation_follows_its_ticket(desk: Desk) -> None:
    cc = f"Luisa <{desk.luisa}>, {desk.stranger}, sconosciuto@rossi.it, {SUPPORT}"
    raw = _mail(desk.mario, "Il backup non parte", "Da stamattina.", Cc=cc)
    ticket_id = await _ingest(desk, raw, desk.mario)
    read = await desk.tickets.GetTicket(tpb.GetTicketRequest(id=ticket_id), metadata=desk.agent)
    # Only the organisation's own contact: not the other company's, not a stranger, not us.
    assert [(f.email, f.source) for f in read.followers] == [(desk.luisa, "EMAIL_CC")]

    # A reply in the thread with another colleague in Cc: Piero follows too.
    reply = _mail(
        desk.mario,
        f"Re: [#{ticket_id}] Il backup non parte",
        "Aggiungo Piero.",
        Cc=desk.piero,
    )
    assert await _ingest(desk, reply, desk.mario) == ticket_id
    read = await desk.tickets.GetTicket(tpb.GetTicketRequest(id=ticket_id), metadata=desk.agent)
    assert [f.email for f in read.followers] == [desk.luisa, desk.piero]
    await _answer(desk, ticket_id, "Il backup è ripartito.")
    await eventually(lambda: desk.to(desk.piero, "agent_reply") and desk.to(desk.luisa))
    assert not desk.to(desk.stranger)
