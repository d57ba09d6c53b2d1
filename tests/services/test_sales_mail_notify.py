"""The sales office's mail (seed 003) against real servers: nats-server (JetStream), an
SMTP relay on loopback, the database: ``helpdesk.sales.>`` events as the tickets process
publishes them become the mail the sales agents and the requester receive."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest

from services.common.events import EventPublisher
from services.common.mail_threading import MessageIds, sales_request_of, sales_thread_id
from services.common.messages.mail import subject as mail_subject
from services.common.messages.sales import decode as decode_sales_event
from services.common.messages.sales import subject as sales_subject
from services.notify.app import NotifyApp
from services.notify.sales_out import first_lines
from tests.services.notify_fixtures import (
    PORTAL_URL,
    Relay,
    body_of,
    notification_id,
    sent_rows,
    wait_for_mail,
)

pytestmark = pytest.mark.timeout(60)

DOMAIN = "helpdesk.test"  # tests.services.notify_fixtures.MAIL_FROM's


def sales_event(kind: str, request_id: str, **extra: Any) -> dict[str, Any]:
    """A sales event as the tickets process publishes it (services.tickets.sales_events)."""
    event: dict[str, Any] = {
        "event_id": uuid.uuid4().hex,
        "type": kind,
        "occurred_at": "2026-12-02T09:15:00+00:00",
        "sales_request_id": request_id,
        "number": 12,
        "kind": "INFORMATION",
        "status": "NEW",
        "subject": "Informazioni sul gestionale",
        "sender": "eva.verdi@example.com",
        "sender_name": "Eva Verdi",
        "locale": "it",
        "organization_id": 0,
        "organization_name": "",
        "owner_id": 0,
        "owner_name": "",
        "owner_email": "",
    }
    event.update(extra)
    return event


# -- pure logic ----------------------------------------------------------------------------


@pytest.mark.unit
def test_the_sales_thread_reads_back_only_on_our_domain() -> None:
    ref = sales_thread_id("0a1b2c", "Helpdesk.Test")
    assert ref == "<sales-0a1b2c@helpdesk.test>"
    assert sales_request_of(ref, DOMAIN) == "0a1b2c"
    assert sales_request_of(f"  {ref}  ", "HELPDESK.TEST") == "0a1b2c"
    assert sales_request_of("<sales-0a1b2c@elsewhere.test>", DOMAIN) == ""
    assert sales_request_of("<ticket-42@helpdesk.test>", DOMAIN) == ""
    assert sales_request_of("<sales-a b@helpdesk.test>", DOMAIN) == ""
    with pytest.raises(ValueError, match="not usable"):
        sales_thread_id("a>b", DOMAIN)
    # A ticket's references still read as before: the sales thread is beside them.
    ids = MessageIds("key", DOMAIN)
    assert ids.parse(ref) is None
    parsed = ids.parse("<ticket-42@helpdesk.test>")
    assert parsed is not None and parsed.ticket_id == 42


@pytest.mark.unit
def test_a_sales_event_body_is_checked() -> None:
    good = sales_event("created", "r1", sales_emails=[], body="x")
    assert decode_sales_event(json.dumps(good).encode())["type"] == "created"
    for bad, why in (
        (b"[]", "not a JSON object"),
        (b'{"type": "created"}', "event_id"),
        (b"nope", "not JSON"),
    ):
        with pytest.raises(ValueError, match=why):
            decode_sales_event(bad)
    with pytest.raises(ValueError, match="type"):
        decode_sales_event(json.dumps(sales_event("closed", "r1")).encode())
    with pytest.raises(ValueError, match="sales_emails"):
        decode_sales_event(json.dumps(sales_event("created", "r1")).encode())
    assert first_lines("a\nb") == "a\nb"
    assert first_lines("\n".join(str(i) for i in range(20))).endswith("7\n…")


# -- servers -------------------------------------------------------------------------------


async def publish(pub: EventPublisher, event: dict[str, Any], msg_id: str = "") -> None:
    await pub.publish(sales_subject(event["type"]), msg_id or event["event_id"], event)


# -- mail ----------------------------------------------------------------------------------


@pytest.mark.db
async def test_a_new_sales_request_is_mailed_to_every_sales_agent_in_their_language(
    notify: NotifyApp, relay: Relay, publisher: EventPublisher
) -> None:
    request_id = uuid.uuid4().hex
    body = "Buongiorno,\nvorrei sapere i prezzi del gestionale per 5 postazioni.\nGrazie"
    event = sales_event(
        "created",
        request_id,
        source="EMAIL",
        body=body,
        company="Verdi S.n.c.",
        sales_emails=[
            {"id": 3, "name": "Sara Commerciale", "email": "sara@helpdesk.test", "locale": "it"},
            {"id": 4, "name": "Tom Sales", "email": "tom@helpdesk.test", "locale": "en"},
            {"id": 5, "name": "Senza indirizzo", "email": "", "locale": "it"},
        ],
    )
    await publish(publisher, event)
    received = await wait_for_mail(relay, 2)
    by_rcpt = {r.rcpt_tos[0]: r.message for r in received}
    assert set(by_rcpt) == {"sara@helpdesk.test", "tom@helpdesk.test"}
    italian, english = by_rcpt["sara@helpdesk.test"], by_rcpt["tom@helpdesk.test"]
    assert italian["Subject"] == "[V-12] Nuova richiesta commerciale: Informazioni sul gestionale"
    assert english["Subject"] == "[V-12] New sales request: Informazioni sul gestionale"
    text = body_of(italian)
    for expected in (
        "Ciao Sara Commerciale",
        "Tipo: informazioni",
        "Eva Verdi <eva.verdi@example.com>",
        "Azienda: Verdi S.n.c.",
        "vorrei sapere i prezzi",
        f"{PORTAL_URL}/agent/sales/{request_id}",
    ):
        assert expected in text, expected
    assert "Kind: information" in body_of(english)
    thread = f"<sales-{request_id}@{DOMAIN}>"
    for message in (italian, english):
        assert message["References"] == thread
        assert message["Content-Language"] in ("it", "en")
    # One Message-ID per recipient, both sealed by us.
    ids = MessageIds(notify.settings.token_signing_key(), DOMAIN)
    assert italian["Message-ID"] != english["Message-ID"]
    for message in (italian, english):
        parsed = ids.parse(message["Message-ID"])
        assert parsed is not None and parsed.verified and parsed.template == "sales_new"


@pytest.mark.db
async def test_a_redelivered_answer_is_sent_once_with_one_message_id(
    notify: NotifyApp, relay: Relay, publisher: EventPublisher
) -> None:
    request_id = uuid.uuid4().hex
    original = "<CAF0prospect@example.com>"
    event = sales_event(
        "replied",
        request_id,
        status="CONTACTED",
        message_id=uuid.uuid4().hex,
        body="Gentile Eva,\nle invio in allegato il listino.\n",
        author_name="Sara Commerciale",
        in_reply_to=original,
    )
    await publish(publisher, event)
    # The same event again under another Nats-Msg-Id (JetStream cannot drop it: notify must),
    # then another request's event, so that the first is surely handled twice by then.
    await publish(publisher, event, msg_id=f"{event['event_id']}-again")
    other = sales_event("replied", uuid.uuid4().hex, body="Altro", in_reply_to="")
    await publish(publisher, other)
    received = await wait_for_mail(relay, 2)
    await asyncio.sleep(0.5)
    assert len(received) == 2, relay.handler.subjects()
    answer = received[0].message
    assert received[0].rcpt_tos == ["eva.verdi@example.com"]
    assert answer["Subject"] == "Re: Informazioni sul gestionale [V-12]"
    assert answer["Message-ID"] == notification_id(notify, event["event_id"], "sales_answer")
    assert answer["In-Reply-To"] == original
    assert answer["References"].split() == [f"<sales-{request_id}@{DOMAIN}>", original]
    assert "le invio in allegato il listino" in body_of(answer)
    assert "Sara Commerciale" in body_of(answer)
    # Without a first mail to answer (a web form): the thread only.
    assert received[1].message["In-Reply-To"] is None
    assert received[1].message["References"] == f"<sales-{other['sales_request_id']}@{DOMAIN}>"
    rows = await sent_rows(notify, 2)
    assert [r.template for r in rows] == ["sales_answer", "sales_answer"]


@pytest.mark.db
async def test_the_owner_hears_of_an_assignment_by_someone_else_and_of_the_answer(
    notify: NotifyApp, relay: Relay, publisher: EventPublisher
) -> None:
    request_id = uuid.uuid4().hex
    owner = {"owner_id": 3, "owner_name": "Sara Commerciale", "owner_email": "sara@helpdesk.test"}
    took_it = sales_event(
        "assigned", request_id, assigned_by_id=3, assigned_by_name="Sara Commerciale", **owner
    )
    updated = sales_event(
        "updated", request_id, status="QUOTED", previous_status="NEW", note="", **owner
    )
    given = sales_event(
        "assigned", request_id, assigned_by_id=9, assigned_by_name="Luca Capo", **owner
    )
    wrote = sales_event(
        "message_received",
        request_id,
        message_id=uuid.uuid4().hex,
        body="Grazie, mi chiami domani.",
        **owner,
    )
    unowned = sales_event("message_received", uuid.uuid4().hex, message_id="m", body="x")
    for event in (took_it, updated, unowned, given, wrote):
        await publish(publisher, event)
    received = await wait_for_mail(relay, 2)
    await asyncio.sleep(0.5)
    assert len(received) == 2, relay.handler.subjects()
    assigned, message = (r.message for r in received)
    assert [r.rcpt_tos for r in received] == [["sara@helpdesk.test"]] * 2
    assert assigned["Subject"] == (
        "[V-12] Richiesta commerciale assegnata a te: Informazioni sul gestionale"
    )
    assert "Luca Capo ti ha assegnato" in body_of(assigned)
    assert message["Subject"] == (
        "[V-12] Nuovo messaggio del richiedente: Informazioni sul gestionale"
    )
    assert "Grazie, mi chiami domani." in body_of(message)
    for got in (assigned, message):
        assert got["References"] == f"<sales-{request_id}@{DOMAIN}>"


@pytest.mark.db
async def test_the_polite_reply_to_a_prospect_is_in_the_request_thread(
    notify: NotifyApp, relay: Relay, publisher: EventPublisher
) -> None:
    """Intake's ``prospect`` event names its row, which is the sales request: an answer to
    the polite reply threads back to it too."""
    request_id = uuid.uuid4().hex
    event_id = f"mail-prospect:{request_id}"
    original = "<first-mail@example.com>"
    event = {
        "event_id": event_id,
        "type": "prospect",
        "request_id": request_id,
        "sender": "eva.verdi@example.com",
        "sender_name": "Eva Verdi",
        "subject": "Informazioni",
        "message_id": original,
        "locale": "it",
    }
    await publisher.publish(mail_subject("prospect"), event_id, event)
    [got] = await wait_for_mail(relay, 1)
    assert got.message["References"].split() == [f"<sales-{request_id}@{DOMAIN}>", original]
    assert got.message["In-Reply-To"] == original
