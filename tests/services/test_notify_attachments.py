"""An agent's answer mails its files, through the real parts: the tickets service keeps the
bytes, notify downloads them (the service token) when the email goes to the loopback
SMTP relay, and the customer finds them attached, byte for byte.

- a public answer's files are attached to the requester's and the followers' emails, and
  named in the body; an internal note's files never leave the desk;
- too large together for one email (``HELPDESK_MAIL_MAX_ATTACHMENT_BYTES``): none is
  attached, the body says they are on the portal and links the ticket;
- a re-sent answer carries its files again; a retried resend sends nothing more.
"""

from __future__ import annotations

import hashlib

import pytest

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import tickets_pb2 as tpb
from tests.services import people_desk
from tests.services.notify_fixtures import PORTAL_URL, Received, body_of
from tests.services.people_desk import MAIL_FILES_LIMIT, Desk, taken
from tests.support import eventually

pytestmark = [pytest.mark.db, pytest.mark.timeout(120)]

# The desk of the followers' tests: tickets, notify and a loopback SMTP relay.
desk = people_desk.desk

# A small PDF-like file and a CSV: what a desk sends (a procedure, an export).
GUIDE = b"%PDF-1.4\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"
EXPORT = b"codice;descrizione;importo\n1;Canone annuo;1.200,00\n2;Assistenza;350,00\n"


def _files(mail: Received) -> dict[str, tuple[str, bytes]]:
    """The attachments of an email: name -> (content type, bytes)."""
    found: dict[str, tuple[str, bytes]] = {}
    for part in mail.message.iter_attachments():
        data = part.get_payload(decode=True)
        assert isinstance(data, bytes)
        found[str(part.get_filename())] = (part.get_content_type(), data)
    return found


def _named(body: str) -> set[str]:
    """The files the body's "Allegati:" line names."""
    [line] = [x for x in body.splitlines() if x.startswith("Allegati: ")]
    return set(line.removeprefix("Allegati: ").rstrip(".").split(", "))


def _file(name: str, content_type: str, data: bytes) -> pb.Attachment:
    return pb.Attachment(filename=name, content_type=content_type, content=data)


async def _answer_with(
    desk: Desk, ticket_id: int, body: str, files: list[pb.Attachment], internal: bool = False
) -> str:
    reply = await desk.tickets.AddComment(
        tpb.AddCommentRequest(
            ticket_id=ticket_id,
            body=body,
            visibility=pb.COMMENT_VISIBILITY_INTERNAL if internal else pb.COMMENT_VISIBILITY_PUBLIC,
            attachments=files,
        ),
        metadata=desk.agent,
    )
    return str(reply.comment.id)


async def test_an_answer_mails_its_files_to_the_requester_and_the_followers(desk: Desk) -> None:
    ticket_id = await taken(desk, "Procedura di chiusura annuale")
    await desk.tickets.AddFollower(
        tpb.AddFollowerRequest(ticket_id=ticket_id, email=desk.luisa), metadata=desk.agent
    )
    await _answer_with(
        desk,
        ticket_id,
        "Interno: il file di prova del cliente.",
        [_file("prova-interna.txt", "text/plain", b"solo per noi")],
        internal=True,
    )
    await _answer_with(
        desk,
        ticket_id,
        "In allegato la guida e l'estratto richiesto.",
        [
            _file("guida chiusura.pdf", "application/pdf", GUIDE),
            _file("estratto.csv", "text/csv", EXPORT),
        ],
    )
    await eventually(lambda: len(desk.to(desk.luisa, "agent_reply")) == 1)
    for person in (desk.mario, desk.luisa):
        [mail] = desk.to(person, "agent_reply")
        files = _files(mail)
        assert sorted(files) == ["estratto.csv", "guida chiusura.pdf"]
        assert files["guida chiusura.pdf"] == ("application/pdf", GUIDE)
        assert files["estratto.csv"][0] == "text/csv"
        assert hashlib.sha256(files["estratto.csv"][1]).digest() == hashlib.sha256(EXPORT).digest()
        body = body_of(mail.message)
        assert "In allegato la guida" in body
        assert _named(body) == {"guida chiusura.pdf", "estratto.csv"}
    # The internal note's file reached nobody.
    assert not any("prova-interna.txt" in _files(r) for r in desk.mail.received)
    assert not any("solo per noi" in body_of(r.message) for r in desk.mail.received)

    # Re-sent, the answer carries its files again; the same request again sends nothing.
    request = tpb.ResendAnswersRequest(ticket_id=ticket_id, request_id="files-lost-1")
    await desk.tickets.ResendAnswers(request, metadata=desk.agent)
    await eventually(lambda: len(desk.to(desk.mario, "answer_resent")) == 1)
    [again] = desk.to(desk.mario, "answer_resent")
    assert _files(again)["guida chiusura.pdf"] == ("application/pdf", GUIDE)
    assert _named(body_of(again.message)) == {"guida chiusura.pdf", "estratto.csv"}
    await desk.tickets.ResendAnswers(request, metadata=desk.agent)
    await _answer_with(desk, ticket_id, "Ci risenta se serve altro.", [])
    await eventually(lambda: len(desk.to(desk.mario, "agent_reply")) == 2)
    assert len(desk.to(desk.mario, "answer_resent")) == 1
    last = next(r for r in desk.to(desk.mario, "agent_reply") if "Ci risenta" in body_of(r.message))
    assert _files(last) == {}
    assert "Allegati" not in body_of(last.message)


async def test_files_too_large_for_one_email_stay_on_the_portal(desk: Desk) -> None:
    ticket_id = await taken(desk, "Backup del database")
    half = MAIL_FILES_LIMIT // 2 + 1024  # two of them are over the limit together
    await _answer_with(
        desk,
        ticket_id,
        "Le mando i due dump richiesti.",
        [
            _file("dump-1.sql", "application/sql", b"a" * half),
            _file("dump-2.sql", "application/sql", b"b" * half),
        ],
    )
    await eventually(lambda: desk.to(desk.mario, "agent_reply"))
    [mail] = desk.to(desk.mario, "agent_reply")
    assert _files(mail) == {}
    body = body_of(mail.message)
    assert "Le mando i due dump richiesti." in body
    [line] = [x for x in body.splitlines() if "troppo grandi per l'email" in x]
    assert line.startswith("I file ") and "dump-1.sql" in line and "dump-2.sql" in line
    assert "li trovi sul portale" in line
    assert f"{PORTAL_URL}/tickets/{ticket_id}" in body
    assert "Allegati:" not in body
