"""Email in: smtplib as the customer's mail server, the intake SMTP listener, tickets
and comments made from it, and the automatic reply at the relay."""

from __future__ import annotations

import asyncio
import smtplib
import uuid
from email.message import EmailMessage

import pytest

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import tickets_pb2 as tpb
from services.common.settings import split_hostport
from tests.support import eventually
from tests.system.conftest import mail_arrives, setup_directory
from tests.system.harness import Mailbox, System

pytestmark = [pytest.mark.system, pytest.mark.db]

SUPPORT = "assistenza@helpdesk.localhost"


def _send(sut: System, msg: EmailMessage, to: str = SUPPORT) -> None:
    host, port = split_hostport(sut.env["HELPDESK_SMTP_LISTEN"])
    with smtplib.SMTP(host, port, timeout=30) as client:
        client.send_message(msg, to_addrs=[to])


def _mail(sender: str, subject: str, body: str, **headers: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"Mario Rossi <{sender}>"
    msg["To"] = SUPPORT
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{uuid.uuid4().hex}@rossi.it>"
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg


async def _tickets_of(sut: System, email: str) -> list[pb.Ticket]:
    page = await sut.tickets().ListTickets(
        tpb.ListTicketsRequest(requester_email=email), metadata=sut.metadata
    )
    return list(page.tickets)


async def test_email_opens_a_ticket_and_a_reply_by_tag_comments_on_it(
    system: tuple[System, Mailbox],
) -> None:
    sut, box = system
    _, contact, _ = await setup_directory(sut, pb.CLOSED_TICKET_POLICY_FOLLOW_UP)
    first = _mail(
        contact.email.upper(),
        "Errore in stampa fattura",
        "Buongiorno,\nla stampa della fattura dà errore 1234.\nGrazie",
    )
    await asyncio.to_thread(_send, sut, first)
    # The same message delivered again (an SMTP retry after a lost 250) makes no second ticket.
    await asyncio.to_thread(_send, sut, first)

    tickets = await eventually(lambda: _tickets_of(sut, contact.email), timeout=30)
    assert len(tickets) == 1
    ticket = tickets[0]
    assert ticket.channel == pb.CHANNEL_EMAIL and ticket.subject == "Errore in stampa fattura"
    assert "errore 1234" in ticket.description
    await mail_arrives(box, ticket.id, f"#{ticket.id}")  # the automatic reply, ID in subject
    ack = box.about(ticket.id)[0]
    assert ack["To"].addresses[0].addr_spec.lower() == contact.email.lower()

    reply = _mail(
        contact.email,
        f"Re: [#{ticket.id}] Errore in stampa fattura",
        "Allego anche lo screenshot.\n\nIl giorno lun 23 nov, Assistenza ha scritto:\n> testo",
        In_Reply_To=ack["Message-ID"],
    )
    await asyncio.to_thread(_send, sut, reply)

    async def commented() -> list[pb.Comment]:
        found = await sut.tickets().ListComments(
            tpb.ListCommentsRequest(ticket_id=ticket.id), metadata=sut.metadata
        )
        return list(found.comments)

    comments = await eventually(commented, timeout=30)
    assert [c.body for c in comments] == ["Allego anche lo screenshot."]
    assert comments[0].author_kind == pb.AUTHOR_KIND_CONTACT

    # Threading without the tag: a reply to our automatic answer (its References name the
    # ticket), and a follow-up to the customer's own first message (In-Reply-To).
    to_ours = _mail(
        contact.email,
        "Re: Errore in stampa fattura",
        "Dimenticavo: Windows 11.",
        In_Reply_To=ack["Message-ID"],
        References=f"{ack['References']} {ack['Message-ID']}",
    )
    await asyncio.to_thread(_send, sut, to_ours)
    to_mine = _mail(
        contact.email,
        "Errore in stampa fattura (aggiornamento)",
        "Il problema c'è anche su un secondo PC.",
        In_Reply_To=first["Message-ID"],
    )
    await asyncio.to_thread(_send, sut, to_mine)

    async def three() -> bool:
        return len(await commented()) == 3

    await eventually(three, timeout=30)
    assert [c.body for c in await commented()][1:] == [
        "Dimenticavo: Windows 11.",
        "Il problema c'è anche su un secondo PC.",
    ]
    assert len(await _tickets_of(sut, contact.email)) == 1


async def test_other_recipients_are_refused_and_auto_replies_open_nothing(
    system: tuple[System, Mailbox],
) -> None:
    sut, _ = system
    _, contact, _ = await setup_directory(sut, pb.CLOSED_TICKET_POLICY_FOLLOW_UP)
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        await asyncio.to_thread(
            _send, sut, _mail(contact.email, "relay?", "x"), "someone@elsewhere.example"
        )
    out_of_office = _mail(
        contact.email, "Fuori sede", "Sono fuori sede fino a lunedì", Auto_Submitted="auto-replied"
    )
    await asyncio.to_thread(_send, sut, out_of_office)
    normal = _mail(contact.email, "Richiesta vera", "La posta non parte")
    await asyncio.to_thread(_send, sut, normal)
    tickets = await eventually(lambda: _tickets_of(sut, contact.email), timeout=30)
    await asyncio.sleep(1)
    assert [t.subject for t in await _tickets_of(sut, contact.email)] == ["Richiesta vera"]
    assert len(tickets) == 1
