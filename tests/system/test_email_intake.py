"""Email in: smtplib as the customer's mail server, the intake SMTP listener, tickets
and comments made from it, and the automatic reply at the relay."""

from __future__ import annotations

import asyncio
import smtplib
import uuid
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import intake_pb2 as ipb
from helpdesk.v1 import notify_pb2 as npb
from helpdesk.v1 import sales_pb2 as spb
from helpdesk.v1 import tickets_pb2 as tpb
from services.common.settings import split_hostport
from tests.support import eventually
from tests.system.conftest import agent_actor, mail_arrives, setup_directory
from tests.system.harness import Mailbox, System
from tests.system.mail_in import SUPPORT, deliver, inbound, tickets_of

pytestmark = [pytest.mark.system, pytest.mark.db]


def timestamp(when: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(when)
    return stamp


async def test_email_opens_a_ticket_and_a_reply_by_tag_comments_on_it(
    system: tuple[System, Mailbox],
) -> None:
    sut, box = system
    _, contact, agent = await setup_directory(sut, pb.CLOSED_TICKET_POLICY_FOLLOW_UP)
    first = inbound(
        contact.email.upper(),
        "Errore in stampa fattura",
        "Buongiorno,\nla stampa della fattura dà errore 1234.\nGrazie",
    )
    await asyncio.to_thread(deliver, sut, first)
    # The same message delivered again (an SMTP retry after a lost 250) makes no second ticket.
    await asyncio.to_thread(deliver, sut, first)

    tickets = await eventually(lambda: tickets_of(sut, contact.email), timeout=30)
    assert len(tickets) == 1
    ticket = tickets[0]
    assert ticket.channel == pb.CHANNEL_EMAIL and ticket.subject == "Errore in stampa fattura"
    assert "errore 1234" in ticket.description
    await mail_arrives(box, ticket.id, f"#{ticket.id}")  # the automatic reply, ID in subject
    ack = box.about(ticket.id)[0]
    assert ack["To"].addresses[0].addr_spec.lower() == contact.email.lower()
    # RFC 3834: the acknowledgement answers the customer's message and says it is automatic.
    assert ack["In-Reply-To"] == first["Message-ID"]
    assert ack["Auto-Submitted"] == "auto-replied" and ack["Precedence"] == "auto_reply"
    assert ack["X-Loop"] == SUPPORT
    await sut.tickets().AssignTicket(
        tpb.AssignTicketRequest(ticket_id=ticket.id, assignee_id=agent.id), metadata=sut.metadata
    )

    reply = inbound(
        contact.email,
        f"Re: [#{ticket.id}] Errore in stampa fattura",
        "Allego anche lo screenshot.\n\nIl giorno lun 23 nov, Assistenza ha scritto:\n> testo",
        In_Reply_To=ack["Message-ID"],
    )
    await asyncio.to_thread(deliver, sut, reply)

    async def commented() -> list[pb.Comment]:
        found = await sut.tickets().ListComments(
            tpb.ListCommentsRequest(ticket_id=ticket.id), metadata=sut.metadata
        )
        return list(found.comments)

    comments = await eventually(commented, timeout=30)
    assert [c.body for c in comments] == ["Allego anche lo screenshot."]
    assert comments[0].author_kind == pb.AUTHOR_KIND_CONTACT
    # The assignee is told of the customer's reply, with its text.
    told = await eventually(
        lambda: [
            m
            for m in box.about(ticket.id)
            if agent.email.lower() in str(m["To"]).lower()
            and "Risposta del cliente" in str(m["Subject"])
        ],
        timeout=30,
    )
    assert "Allego anche lo screenshot." in told[0].get_body(("plain",)).get_content()

    # Threading without the tag: a reply to our automatic answer (its References name the
    # ticket), and a follow-up to the customer's own first message (In-Reply-To).
    to_ours = inbound(
        contact.email,
        "Re: Errore in stampa fattura",
        "Dimenticavo: Windows 11.",
        In_Reply_To=ack["Message-ID"],
        References=f"{ack['References']} {ack['Message-ID']}",
    )
    await asyncio.to_thread(deliver, sut, to_ours)
    to_mine = inbound(
        contact.email,
        "Errore in stampa fattura (aggiornamento)",
        "Il problema c'è anche su un secondo PC.",
        In_Reply_To=first["Message-ID"],
    )
    await asyncio.to_thread(deliver, sut, to_mine)

    async def three() -> bool:
        return len(await commented()) == 3

    await eventually(three, timeout=30)
    assert [c.body for c in await commented()][1:] == [
        "Dimenticavo: Windows 11.",
        "Il problema c'è anche su un secondo PC.",
    ]
    assert len(await tickets_of(sut, contact.email)) == 1


async def test_a_requalified_email_ticket_counts_as_blocking_and_a_merge_tells_both(
    system: tuple[System, Mailbox],
) -> None:
    """Seed 002's report per severity covers email: an emailed ticket starts NON_BLOCKING,
    the agent requalifies it BLOCKING and the report counts it there. Seed 004's merge: a
    colleague's mail about the same problem is merged into it, and both requesters are told
    where the case goes on."""
    sut, box = system
    org, contact, agent = await setup_directory(sut, pb.CLOSED_TICKET_POLICY_FOLLOW_UP)
    colleague = await sut.directory().AddContact(
        dpb.AddContactRequest(
            organization_id=org.id,
            name="Lucia Verdi",
            email=f"lucia.{uuid.uuid4().hex[:6]}@rossi.it",
        ),
        metadata=sut.metadata,
    )
    start = datetime.now(UTC) - timedelta(minutes=1)
    await asyncio.to_thread(
        deliver, sut, inbound(contact.email, "Gestionale lento", "Ogni maschera impiega minuti.")
    )
    [ticket] = await eventually(lambda: tickets_of(sut, contact.email), timeout=30)
    assert ticket.criticality == pb.CRITICALITY_NON_BLOCKING
    requalified = await sut.tickets().RequalifyTicket(
        tpb.RequalifyTicketRequest(
            ticket_id=ticket.id,
            request_id=f"rq-{ticket.id}",
            criticality=pb.CRITICALITY_BLOCKING,
            reason="il gestionale è inutilizzabile per tutto l'ufficio",
            actor=agent_actor(agent),
        ),
        metadata=sut.metadata,
    )
    assert requalified.criticality == pb.CRITICALITY_BLOCKING
    report = await sut.tickets().GetReport(
        tpb.GetReportRequest(
            organization_id=org.id,
            period_start=timestamp(start),
            period_end=timestamp(datetime.now(UTC) + timedelta(minutes=1)),
        ),
        metadata=sut.metadata,
    )
    assert {c.key: c.count for c in report.by_criticality} == {"BLOCKING": 1}

    await asyncio.to_thread(
        deliver,
        sut,
        inbound(colleague.email, "Anche da me il gestionale è lento", "Stesso problema."),
    )
    [other] = await eventually(lambda: tickets_of(sut, colleague.email), timeout=30)
    await sut.tickets().MergeTickets(
        tpb.MergeTicketsRequest(
            source_ticket_id=other.id,
            target_ticket_id=ticket.id,
            reason="stesso guasto",
            actor=agent_actor(agent),
        ),
        metadata=sut.metadata,
    )

    def merge_mails() -> dict[str, str]:
        return {
            m["To"].addresses[0].addr_spec.lower(): str(m["Subject"])
            for m in box.messages
            if "unita" in str(m["Subject"]).lower()
        }

    told = await eventually(lambda: len(merge_mails()) == 2 and merge_mails(), timeout=30)
    assert told[colleague.email.lower()] == (
        f"[#{other.id}] Richiesta unita alla #{ticket.id}: Anche da me il gestionale è lento"
    )
    assert told[contact.email.lower()] == f"[#{ticket.id}] Unita a questa richiesta: #{other.id}"
    merged = await sut.tickets().GetTicket(
        tpb.GetTicketRequest(id=ticket.id), metadata=sut.metadata
    )
    assert [f.email.lower() for f in merged.followers] == [colleague.email.lower()]


async def test_other_recipients_are_refused_and_auto_replies_open_nothing(
    system: tuple[System, Mailbox],
) -> None:
    sut, _ = system
    _, contact, _ = await setup_directory(sut, pb.CLOSED_TICKET_POLICY_FOLLOW_UP)
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        await asyncio.to_thread(
            deliver, sut, inbound(contact.email, "relay?", "x"), "someone@elsewhere.example"
        )
    out_of_office = inbound(
        contact.email, "Fuori sede", "Sono fuori sede fino a lunedì", Auto_Submitted="auto-replied"
    )
    await asyncio.to_thread(deliver, sut, out_of_office)
    normal = inbound(contact.email, "Richiesta vera", "La posta non parte")
    await asyncio.to_thread(deliver, sut, normal)
    tickets = await eventually(lambda: tickets_of(sut, contact.email), timeout=30)
    await asyncio.sleep(1)
    assert [t.subject for t in await tickets_of(sut, contact.email)] == ["Richiesta vera"]
    assert len(tickets) == 1


CORPUS = Path(__file__).resolve().parents[1] / "data" / "email"


def _to(box: Mailbox, address: str) -> list[EmailMessage]:
    return [m for m in box.messages if m["To"].addresses[0].addr_spec.lower() == address.lower()]


async def test_a_prospect_goes_to_sales_with_its_own_reply_and_a_colleague_joins(
    system: tuple[System, Mailbox],
) -> None:
    sut, box = system
    org, _, _ = await setup_directory(sut, pb.CLOSED_TICKET_POLICY_FOLLOW_UP)
    stranger = f"laura.{uuid.uuid4().hex[:6]}@nuovocliente.example"
    request = inbound(stranger, "Preventivo per 10 licenze", "Vorrei un preventivo, grazie.")
    await asyncio.to_thread(deliver, sut, request)

    async def sales() -> list[spb.SalesRequest]:
        page = await sut.intake().ListSalesRequests(
            spb.ListSalesRequestsRequest(), metadata=sut.metadata
        )
        return [r for r in page.requests if r.sender == stranger]

    found = await eventually(sales, timeout=30)
    assert [(r.subject, r.body) for r in found] == [
        ("Preventivo per 10 licenze", "Vorrei un preventivo, grazie.")
    ]
    await eventually(lambda: _to(box, stranger), timeout=30)
    reply = _to(box, stranger)[0]
    assert reply["Subject"] == "Richiesta ricevuta: Preventivo per 10 licenze"
    assert "ufficio commerciale" in reply.get_body(("plain",)).get_content()
    assert reply["In-Reply-To"] == request["Message-ID"]
    assert reply["Auto-Submitted"] == "auto-replied"
    assert await tickets_of(sut, stranger) == []

    # Someone new at the customer's own domain is one of its people: a contact, a ticket.
    colleague = f"nuovo.{uuid.uuid4().hex[:6]}@rossi.it"
    await asyncio.to_thread(deliver, sut, inbound(colleague, "Anche io", "Non stampo."))
    tickets = await eventually(lambda: tickets_of(sut, colleague), timeout=30)
    assert [t.organization_id for t in tickets] == [org.id]
    assert await sales() == found


async def test_a_bounce_marks_the_notification_and_opens_nothing(
    system: tuple[System, Mailbox],
) -> None:
    sut, box = system
    _, contact, _ = await setup_directory(sut, pb.CLOSED_TICKET_POLICY_FOLLOW_UP)
    await asyncio.to_thread(deliver, sut, inbound(contact.email, "Stampa", "Non stampa."))
    tickets = await eventually(lambda: tickets_of(sut, contact.email), timeout=30)
    ticket_id = tickets[0].id
    await mail_arrives(box, ticket_id, f"#{ticket_id}")
    ack = box.about(ticket_id)[0]
    dsn = (
        (CORPUS / "dsn_bounce.eml")
        .read_bytes()
        .replace(
            b"<notify.created.0123456789abcdef0123456789abcdef@helpdesk.localhost>",
            str(ack["Message-ID"]).encode(),
        )
        .replace(b"ex.dipendente@rossi.it", contact.email.encode())
    )
    host, port = split_hostport(sut.env["HELPDESK_SMTP_LISTEN"])

    def send_dsn() -> None:
        with smtplib.SMTP(host, port, timeout=30) as client:
            client.sendmail("", [SUPPORT], dsn)  # a report travels with an empty return path

    await asyncio.to_thread(send_dsn)

    async def bounced() -> list[npb.Notification]:
        page = await sut.notify().ListNotifications(
            npb.ListNotificationsRequest(ticket_id=ticket_id), metadata=sut.metadata
        )
        return [n for n in page.notifications if n.status == npb.DELIVERY_STATUS_BOUNCED]

    marked = await eventually(bounced, timeout=30)
    assert [n.message_id for n in marked] == [str(ack["Message-ID"]).strip()]
    assert "5.1.1" in marked[0].error
    assert len(await tickets_of(sut, contact.email)) == 1
    assert await tickets_of(sut, "mailer-daemon@mx.rossi.it") == []
    # Agents see it on the ticket: an internal note from the system (customers do not).
    [note] = await eventually(lambda: _comments(sut, ticket_id), timeout=30)
    assert (note.author_kind, note.visibility) == (
        pb.AUTHOR_KIND_SYSTEM,
        pb.COMMENT_VISIBILITY_INTERNAL,
    )
    assert note.body.startswith(f"Email to {contact.email.lower()} bounced: 5.1.1 smtp; 550")
    assert await _comments(sut, ticket_id, internal=False) == []
    ticket = await sut.tickets().GetTicket(
        tpb.GetTicketRequest(id=ticket_id), metadata=sut.metadata
    )
    assert ticket.status == pb.TICKET_STATUS_NEW


async def _comments(sut: System, ticket_id: int, internal: bool = True) -> list[pb.Comment]:
    found = await sut.tickets().ListComments(
        tpb.ListCommentsRequest(ticket_id=ticket_id, include_internal=internal),
        metadata=sut.metadata,
    )
    return list(found.comments)


async def test_an_out_of_office_answering_us_is_noted_on_its_ticket(
    system: tuple[System, Mailbox],
) -> None:
    sut, box = system
    _, contact, _ = await setup_directory(sut, pb.CLOSED_TICKET_POLICY_FOLLOW_UP)
    await asyncio.to_thread(deliver, sut, inbound(contact.email, "Fattura", "Non si apre."))
    tickets = await eventually(lambda: tickets_of(sut, contact.email), timeout=30)
    ticket = tickets[0]
    await mail_arrives(box, ticket.id, f"#{ticket.id}")
    ack = box.about(ticket.id)[0]
    # Exchange-style: "Risposta automatica: <our subject>", threaded to our message.
    oof = inbound(
        contact.email,
        f"Risposta automatica: {ack['Subject']}",
        "Sono fuori ufficio fino a lunedì.",
        Auto_Submitted="auto-replied",
        In_Reply_To=ack["Message-ID"],
        References=f"{ack['References']} {ack['Message-ID']}",
    )
    await asyncio.to_thread(deliver, sut, oof)
    [note] = await eventually(lambda: _comments(sut, ticket.id), timeout=30)
    assert (note.author_kind, note.visibility) == (
        pb.AUTHOR_KIND_SYSTEM,
        pb.COMMENT_VISIBILITY_INTERNAL,
    )
    assert note.body == (
        f"Risposta automatica da {contact.email.lower()}: Sono fuori ufficio fino a lunedì."
    )
    after = await sut.tickets().GetTicket(tpb.GetTicketRequest(id=ticket.id), metadata=sut.metadata)
    assert after.status == ticket.status == pb.TICKET_STATUS_NEW
    assert await _comments(sut, ticket.id, internal=False) == []
    stored = await sut.intake().SubmitEmail(
        ipb.SubmitEmailRequest(raw_message=oof.as_bytes()), metadata=sut.metadata
    )
    assert stored.duplicate and (stored.status, stored.ticket_id) == ("NOTE_ADDED", ticket.id)
    await asyncio.sleep(2)  # no answer goes to an out-of-office, no ticket comes of it
    assert len(box.about(ticket.id)) == 1  # the acknowledgement only
    assert [t.id for t in await tickets_of(sut, contact.email)] == [ticket.id]
    assert len(await _comments(sut, ticket.id)) == 1


async def test_an_auto_responder_gets_at_most_one_answer(
    system: tuple[System, Mailbox],
) -> None:
    sut, box = system
    _, contact, _ = await setup_directory(sut, pb.CLOSED_TICKET_POLICY_FOLLOW_UP)
    # The credentials email comes first, so that it is not counted as an answer below.
    await eventually(lambda: _to(box, contact.email), timeout=60)
    answered = {str(m["Message-ID"]) for m in _to(box, contact.email)}

    async def responder(rfc3834: bool) -> None:
        """The customer's mailbox answers everything we send, as an out-of-office does
        (RFC 3834 headers) or as a naive script does (none, just "Re:")."""
        while True:
            for msg in _to(box, contact.email):
                if msg["Message-ID"] in answered:
                    continue
                answered.add(msg["Message-ID"])
                headers = {"In_Reply_To": msg["Message-ID"]}
                if rfc3834:
                    headers["Auto_Submitted"] = "auto-replied"
                oof = inbound(
                    contact.email, f"Re: {msg['Subject']}", "Sono fuori ufficio.", **headers
                )
                await asyncio.to_thread(deliver, sut, oof)
            await asyncio.sleep(0.3)

    for rfc3834 in (True, False):
        before = len(_to(box, contact.email))
        task = asyncio.create_task(responder(rfc3834))
        try:
            subject = f"Richiesta {'A' if rfc3834 else 'B'}"
            await asyncio.to_thread(deliver, sut, inbound(contact.email, subject, "Aiuto"))
            await eventually(
                lambda n=before: len(_to(box, contact.email)) > n,  # type: ignore[misc]
                timeout=30,
            )
            await asyncio.sleep(8)  # time for a loop to show itself
        finally:
            task.cancel()
        assert len(_to(box, contact.email)) == before + 1
    assert len(await tickets_of(sut, contact.email)) == 2


async def test_submit_email_is_the_smtp_path_and_oversize_mail_is_refused(
    system: tuple[System, Mailbox],
) -> None:
    sut, _ = system
    _, contact, _ = await setup_directory(sut, pb.CLOSED_TICKET_POLICY_FOLLOW_UP)
    raw = inbound(contact.email, "Via IMAP", "Scaricata dal fetcher.").as_bytes()
    first = await sut.intake().SubmitEmail(
        ipb.SubmitEmailRequest(raw_message=raw), metadata=sut.metadata
    )
    again = await sut.intake().SubmitEmail(
        ipb.SubmitEmailRequest(raw_message=raw), metadata=sut.metadata
    )
    assert not first.duplicate and again.duplicate and again.message_id == first.message_id
    await asyncio.to_thread(deliver, sut, inbound(contact.email, "x", "x"))  # unrelated
    tickets = await eventually(lambda: tickets_of(sut, contact.email), timeout=30)
    await asyncio.sleep(1)
    assert sorted(t.subject for t in await tickets_of(sut, contact.email)) == ["Via IMAP", "x"]
    assert len(tickets) >= 1

    host, port = split_hostport(sut.env["HELPDESK_SMTP_LISTEN"])

    def oversize() -> None:
        with smtplib.SMTP(host, port, timeout=30) as client:
            client.sendmail(
                contact.email,
                [SUPPORT],
                b"Subject: x\r\n\r\nx",
                mail_options=[f"SIZE={26 * 1024 * 1024}"],
            )

    with pytest.raises(smtplib.SMTPSenderRefused) as refused:
        await asyncio.to_thread(oversize)
    assert refused.value.smtp_code == 552


async def test_a_fax_quoting_a_ticket_joins_it(system: tuple[System, Mailbox]) -> None:
    sut, _ = system
    sut.kill("intake")
    sut.env["HELPDESK_FAX_ADDRESS"] = "fax@helpdesk.localhost"
    sut.start("intake")
    await sut.wait_serving("intake")
    _, contact, _ = await setup_directory(sut, pb.CLOSED_TICKET_POLICY_FOLLOW_UP)
    await asyncio.to_thread(
        deliver, sut, inbound(contact.email, "Vi mando un fax", "Segue fax con la stampa.")
    )
    tickets = await eventually(lambda: tickets_of(sut, contact.email), timeout=60)
    ticket_id = tickets[0].id
    fax = inbound(contact.email, f"Fax 2 pagine - rif. ticket {ticket_id}", "Fax ricevuto.")
    fax.replace_header("To", "fax@helpdesk.localhost")
    await asyncio.to_thread(deliver, sut, fax, "fax@helpdesk.localhost")
    new_fax = inbound(contact.email, "Fax ordine", "Fax senza riferimenti.")
    await asyncio.to_thread(deliver, sut, new_fax, "fax@helpdesk.localhost")

    async def comments() -> list[pb.Comment]:
        found = await sut.tickets().ListComments(
            tpb.ListCommentsRequest(ticket_id=ticket_id), metadata=sut.metadata
        )
        return list(found.comments)

    assert [c.body for c in await eventually(comments, timeout=30)] == ["Fax ricevuto."]

    async def two() -> list[pb.Ticket]:
        found = await tickets_of(sut, contact.email)
        return found if len(found) == 2 else []

    channels = {t.subject: t.channel for t in await eventually(two, timeout=30)}
    assert channels == {"Vi mando un fax": pb.CHANNEL_EMAIL, "Fax ordine": pb.CHANNEL_FAX}
