"""Notify against real servers: nats-server (JetStream), an SMTP relay on loopback, the database.

Each in-process test runs the whole notify service (``NotifyApp``) with its
own durable consumer that starts at new messages, its own database and its
own relay, so tests never see each other's events.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import mailbox
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import notify_pb2, tickets_pb2, tickets_pb2_grpc
from services.common.embedded import free_port, start_nats
from services.common.events import STREAM, EventPublisher, connect
from services.common.mail_threading import MessageIds
from services.common.messages.mail import subject as mail_subject
from services.common.messages.tickets import decode as decode_ticket_event
from services.common.settings import Settings
from services.common.tokens import TokenSigner
from services.notify.app import NotifyApp
from services.notify.models import DeliveryStatus
from services.notify.render import in_the_last
from services.notify.rules import plan, template_for
from services.notify.server import decode_page_token, encode_page_token
from services.notify.store import DeliveryDraft
from tests.services.notify_fixtures import (
    ADMIN_TOKEN,
    DEADLINE,
    FAST_RETRY,
    MAIL_FROM,
    PORTAL_URL,
    SERVICE_TOKEN,
    Relay,
    body_of,
    eventually,
    list_notifications,
    make_comment,
    make_event,
    make_settings,
    notification_id,
    publish,
    sent_rows,
    wait_for_mail,
)

LINK = re.compile(re.escape(PORTAL_URL) + r"/link/(confirm|reopen)\?token=([\w.-]+)")
REPO_ROOT = Path(__file__).resolve().parents[2]

# Every test here is quick; a hang fails fast instead of waiting for the global timeout.
pytestmark = pytest.mark.timeout(60)


# -- pure logic --------------------------------------------------------------------


@pytest.mark.unit
def test_which_events_send_which_template() -> None:
    agent_public = make_comment("PUBLIC", "AGENT", "Risposta")
    assert template_for(make_event("created")) == "created"
    assert template_for(make_event("follow_up_opened", follow_up_of=41)) == "follow_up_opened"
    assert template_for(make_event("comment_added", comment=agent_public)) == "agent_reply"
    for visibility, author in (("INTERNAL", "AGENT"), ("PUBLIC", "CONTACT"), ("PUBLIC", "SYSTEM")):
        event = make_event("comment_added", comment=make_comment(visibility, author, "x"))
        assert template_for(event) is None
    assert template_for(make_event("solved")) == "solved"
    assert template_for(make_event("closed", close_reason="AUTO_CLOSED")) == "closed_auto"
    assert template_for(make_event("closed", close_reason="CONFIRMED")) == "closed_confirmed"
    assert template_for(make_event("closed", close_reason="VERIFIED")) == "closed_verified"
    for kind in ("assigned", "status_changed", "reopened", "reactivated", "priority_changed"):
        assert template_for(make_event(kind)) is None
    # Service levels: the breach goes to the team leads, the warning to the assignee.
    assert template_for(make_event("sla_breached")) == "sla_breached"
    assert template_for(make_event("sla_warning")) == "sla_warning"
    assert plan(make_event("created", email_address="")) == []
    [planned] = plan(make_event("created", locale="fr", email_address="Mario@ACME.test"))
    assert (planned.recipient, planned.locale) == ("mario@acme.test", "it")


@pytest.mark.unit
def test_event_bodies_that_are_not_events_are_rejected() -> None:
    assert decode_ticket_event(json.dumps(make_event("created")).encode())["ticket_id"] == 42
    for bad in (b"not json", b"[]", b'{"type": "created"}', b'{"event_id": "e", "type": "x"}'):
        with pytest.raises(ValueError):
            decode_ticket_event(bad)


@pytest.mark.unit
def test_durations_read_naturally() -> None:
    assert in_the_last(timedelta(days=14), "it") == "negli ultimi 14 giorni"
    assert in_the_last(timedelta(hours=12), "it") == "nelle ultime 12 ore"
    assert in_the_last(timedelta(days=1), "it") == "nell'ultimo giorno"
    assert in_the_last(timedelta(hours=1), "it") == "nell'ultima ora"
    assert in_the_last(timedelta(days=14), "en") == "in the last 14 days"
    assert in_the_last(timedelta(days=1), "en") == "in the last day"


@pytest.mark.unit
def test_page_tokens_and_message_ids_are_stable() -> None:
    token = encode_page_token(17, 42, "")
    assert decode_page_token(token, 42, "") == 17
    ids = MessageIds("key", "x.test")
    assert ids.notification("ev-1", "created") == ids.notification("ev-1", "created")
    assert ids.notification("ev-1", "created") != ids.notification("ev-1", "solved")


# -- the service against real servers ----------------------------------------------


@pytest.mark.db
async def test_created_email_in_italian_reaches_the_relay(
    notify: NotifyApp, relay: Relay, publisher: EventPublisher
) -> None:
    event = make_event("created")
    await publish(publisher, event)

    [got] = await wait_for_mail(relay, 1)
    msg = got.message
    assert got.rcpt_tos == ["mario.rossi@acme.test"]
    assert "[#42]" in msg["Subject"]
    assert "La stampante in rete non stampa" in msg["Subject"]
    body = body_of(msg)
    assert "Gentile Mario Rossi" in body
    assert "abbiamo registrato la tua richiesta" in body
    assert "#42" in body and "citare" in body
    assert msg["From"] == MAIL_FROM
    assert msg["Reply-To"] == MAIL_FROM
    assert "mario.rossi@acme.test" in msg["To"]
    assert msg["Date"]
    # The acknowledgement answers the customer (RFC 3834 auto-replied) and carries our
    # loop header; nobody told notify which message opened this (old) ticket, so it
    # goes without In-Reply-To.
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["Precedence"] == "auto_reply" and msg["X-Loop"] == MAIL_FROM
    assert msg["X-Helpdesk-Ticket"] == "42"
    assert msg["Message-ID"] == notification_id(notify, event["event_id"], "created", 42)
    assert ".t42." in msg["Message-ID"]  # an answer quoting only this ID finds the ticket

    rows = await sent_rows(notify, 1)
    assert rows[0].status == DeliveryStatus.SENT and rows[0].attempts == 1


@pytest.mark.db
async def test_created_email_in_english_for_an_english_contact(
    notify: NotifyApp, relay: Relay, publisher: EventPublisher
) -> None:
    await publish(publisher, make_event("created", locale="en", email_address="john@acme.test"))

    [got] = await wait_for_mail(relay, 1)
    assert got.message["Subject"].startswith("[#42] Request received")
    body = body_of(got.message)
    assert "Dear John Smith" in body
    assert "we have registered your support request with the number #42" in body
    assert got.message["Content-Language"] == "en"


@pytest.mark.db
async def test_follow_up_email_names_the_closed_ticket(
    notify: NotifyApp, relay: Relay, publisher: EventPublisher
) -> None:
    await publish(publisher, make_event("follow_up_opened", ticket_id=43, follow_up_of=42))

    [got] = await wait_for_mail(relay, 1)
    assert "[#43]" in got.message["Subject"]
    body = body_of(got.message)
    assert "la richiesta #42 è chiusa" in body
    assert "#43" in body
    assert got.message["X-Helpdesk-Ticket"] == "43"


@pytest.mark.db
async def test_only_public_agent_comments_are_copied_to_the_requester(
    notify: NotifyApp, relay: Relay, publisher: EventPublisher
) -> None:
    internal = make_comment("INTERNAL", "AGENT", "Nota interna: chiedere al reparto reti")
    customer = make_comment("PUBLIC", "CONTACT", "Ancora non funziona")
    answer = make_comment("PUBLIC", "AGENT", "Abbiamo aggiornato il driver: provi ora.")
    await publish(publisher, make_event("comment_added", comment=internal))
    await publish(publisher, make_event("comment_added", comment=customer))
    await publish(publisher, make_event("assigned"))
    await publish(publisher, make_event("comment_added", comment=answer))
    # A marker: events are handled in stream order, so once it arrives the rest is done.
    await publish(publisher, make_event("created", ticket_id=99))

    received = await wait_for_mail(relay, 2)
    assert len(received) == 2, relay.handler.subjects()
    reply, marker = received
    assert reply.message["Subject"].startswith("[#42]")
    assert "Laura Bianchi ha risposto" in body_of(reply.message)
    assert "Abbiamo aggiornato il driver: provi ora." in body_of(reply.message)
    assert "Nota interna" not in body_of(reply.message)
    assert "[#99]" in marker.message["Subject"]


@pytest.mark.db
async def test_solved_email_offers_reopening_and_announces_the_auto_close(
    notify: NotifyApp, relay: Relay, publisher: EventPublisher
) -> None:
    await publish(publisher, make_event("solved"))

    closes = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    english = make_event("solved", ticket_id=43, locale="en")
    english["ticket"]["auto_close_at"] = closes.isoformat()
    await publish(publisher, english)

    got, got_en = await wait_for_mail(relay, 2)
    assert "[#42]" in got.message["Subject"]
    body = body_of(got.message)
    assert "la richiesta (#42) è stata risolta. Per riaprirla, rispondi a questo messaggio" in body
    assert "chiusa automaticamente tra 14 giorni" in body
    # One click confirms or reopens, as the requester, until the ticket would close itself:
    # without its auto-close instant in the event, 14 days from now.
    signer = TokenSigner(notify.settings.token_signing_key())
    links = dict(LINK.findall(body))
    assert set(links) == {"confirm", "reopen"}
    assert "per confermare che il problema è risolto" in body
    assert "per riaprire la richiesta perché il problema non è risolto" in body
    for action, token in links.items():
        assert signer.link_claims(token) == (42, action)
        expires = jwt.decode(token, options={"verify_signature": False})["exp"]
        assert abs(expires - (time.time() + 14 * 86400)) < 120
    en_body = body_of(got_en.message)
    assert "To reopen it, reply to this message." in en_body
    assert "to confirm that the problem is solved" in en_body
    en_links = dict(LINK.findall(en_body))
    for action, token in en_links.items():
        assert signer.link_claims(token) == (43, action)
        assert jwt.decode(token, options={"verify_signature": False})["exp"] == int(
            closes.timestamp()
        )
    assert set(en_links) == {"confirm", "reopen"}


@pytest.mark.db
async def test_a_sales_request_from_the_web_form_gets_the_polite_reply(
    notify: NotifyApp, relay: Relay, publisher: EventPublisher
) -> None:
    """Intake's ``prospect`` event for the web form (IntakeService.SubmitSalesRequest):
    no message to answer, and a known contact is not told they are no customer."""
    for sender, known in (("eva@example.com", False), ("mario.rossi@acme.test", True)):
        event_id = f"mail-prospect:{uuid.uuid4().hex}"
        event = {
            "event_id": event_id,
            "type": "prospect",
            "request_id": event_id.split(":")[1],
            "sender": sender,
            "sender_name": "Eva Verdi",
            "subject": "Preventivo",
            "message_id": "",
            "locale": "it",
            "known_contact": known,
        }
        await publisher.publish(mail_subject("prospect"), event_id, event)
    stranger, contact = await wait_for_mail(relay, 2)
    assert stranger.rcpt_tos == ["eva@example.com"]
    assert contact.rcpt_tos == ["mario.rossi@acme.test"]
    for got in (stranger, contact):
        assert got.message["Subject"] == "Richiesta ricevuta: Preventivo"
        assert got.message["In-Reply-To"] is None
        assert "abbiamo inoltrato la sua richiesta" in body_of(got.message).lower()
    assert "non risulta tra quelli dei nostri clienti" in body_of(stranger.message)
    assert "non risulta tra quelli dei nostri clienti" not in body_of(contact.message)


@pytest.mark.db
async def test_the_sender_is_told_which_files_were_left_out(
    notify: NotifyApp, relay: Relay, publisher: EventPublisher
) -> None:
    """Intake's ``attachments_refused`` event: the sender gets one answer to their mail
    naming the files and the limits, in their language; a redelivery sends nothing more,
    and a mail that must get no automatic reply gets none."""
    events = []
    for n, (locale, auto_reply) in enumerate((("it", True), ("en", True), ("it", False))):
        event_id = f"mail-refused:{60 + n}:{uuid.uuid4().hex[:24]}"
        events.append(
            {
                "event_id": event_id,
                "type": "attachments_refused",
                "ticket_id": 60 + n,
                "message_id": f"<m{n}@acme.test>",
                "sender": f"mario{n}@acme.test",
                "sender_name": "Mario Rossi",
                "locale": locale,
                "subject": "Filmato",
                "auto_reply": auto_reply,
                "no_auto_reply_reason": "" if auto_reply else "Auto-Submitted: auto-replied",
                "files": ["video.mp4 (31 MiB, oltre il limite di 20 MiB)"],
                "more": 0,
            }
        )
    for event in (*events, events[0]):
        await publisher.publish(mail_subject("attachments_refused"), str(event["event_id"]), event)
    await wait_for_mail(relay, 2)
    await asyncio.sleep(1.0)  # the redelivery and the suppressed one: nothing more comes
    it_mail, en_mail = relay.handler.received
    assert it_mail.rcpt_tos == ["mario0@acme.test"]
    assert it_mail.message["Subject"] == "[#60] Allegati non accettati: Filmato"
    assert it_mail.message["In-Reply-To"] == "<m0@acme.test>"
    body = body_of(it_mail.message)
    assert "- video.mp4 (31 MiB, oltre il limite di 20 MiB)" in body
    assert "fino a 20 file per messaggio, ciascuno al massimo di 20 MiB" in body
    assert en_mail.message["Subject"] == "[#61] Attachments not accepted: Filmato"
    assert "each at most 20 MiB and at most 25 MiB in all" in body_of(en_mail.message)
    rows = await notify.store.list_page(ticket_id=0, recipient="", after_id=0, limit=100)
    assert sorted((r.ticket_id, r.status) for r in rows) == [
        (60, DeliveryStatus.SENT),
        (61, DeliveryStatus.SENT),
        (62, DeliveryStatus.SUPPRESSED),
    ]


@pytest.mark.db
async def test_closed_emails_say_why(
    notify: NotifyApp, relay: Relay, publisher: EventPublisher
) -> None:
    await publish(publisher, make_event("closed", close_reason="AUTO_CLOSED"))
    await publish(publisher, make_event("closed", ticket_id=50, close_reason="CONFIRMED"))
    await publish(
        publisher, make_event("closed", ticket_id=51, close_reason="VERIFIED", locale="en")
    )

    # Each closed email is followed by the satisfaction survey (tests/services/
    # test_survey_and_report.py); here only the closed ones.
    received = await wait_for_mail(relay, 6)
    auto, confirmed, verified = [r for r in received if "X-Helpdesk-Survey" not in r.message]
    auto_body = body_of(auto.message)
    assert "[#42]" in auto.message["Subject"]
    assert "risulta chiusa" in auto_body
    assert "non abbiamo ricevuto risposta alla richiesta di conferma" in auto_body
    assert "negli ultimi 14 giorni" in auto_body
    assert "aprire una nuova richiesta" in auto_body
    assert "grazie per aver confermato" in body_of(confirmed.message)
    assert "we have verified that the problem is solved" in body_of(verified.message)


@pytest.mark.db
async def test_the_same_event_twice_sends_one_email(
    notify: NotifyApp, relay: Relay, publisher: EventPublisher
) -> None:
    event = make_event("solved", event_id="ticket-42-ev-7")
    await publish(publisher, event)
    # The same event again under another Nats-Msg-Id: JetStream cannot drop it, notify must.
    await publish(publisher, event, msg_id="ticket-42-ev-7-retry")
    await publish(publisher, make_event("created", ticket_id=99))

    received = await wait_for_mail(relay, 2)
    assert len(received) == 2, relay.handler.subjects()
    assert "[#42]" in received[0].message["Subject"]
    assert "[#99]" in received[1].message["Subject"]
    rows = await sent_rows(notify, 2)
    assert len(rows) == 2
    assert rows[0].event_id == "ticket-42-ev-7" and rows[1].ticket_id == 99


@pytest.mark.db
async def test_a_pending_delivery_is_sent_again_with_the_same_message_id(
    notify: NotifyApp, relay: Relay, publisher: EventPublisher
) -> None:
    event = make_event("created", event_id="ticket-42-ev-1")
    message_id = notification_id(notify, event["event_id"], "created", 42)
    # As if a previous run crashed after recording the delivery and before marking it sent.
    row = await notify.store.claim(
        DeliveryDraft(
            event_id=event["event_id"],
            event_type="created",
            ticket_id=42,
            recipient="mario.rossi@acme.test",
            subject="[#42] Richiesta registrata: La stampante in rete non stampa",
            template="created",
            locale="it",
            message_id=message_id,
        )
    )
    await notify.store.start_attempt(row.id)
    await publish(publisher, event)

    [got] = await wait_for_mail(relay, 1)
    assert got.message["Message-ID"] == message_id
    [sent] = await sent_rows(notify, 1)
    assert (sent.id, sent.attempts) == (row.id, 2)


@pytest.mark.db
async def test_a_temporary_refusal_is_retried(
    notify: NotifyApp, relay: Relay, publisher: EventPublisher
) -> None:
    relay.handler.refusals["mario.rossi@acme.test"] = ["451 4.3.0 Try again later"]
    await publish(publisher, make_event("created"))

    [got] = await wait_for_mail(relay, 1)
    assert "[#42]" in got.message["Subject"]
    [sent] = await sent_rows(notify, 1)
    assert sent.attempts == 2


@pytest.mark.db
async def test_a_permanent_refusal_ends_failed_with_the_error(
    notify: NotifyApp, relay: Relay, publisher: EventPublisher
) -> None:
    relay.handler.refusals["nobody@acme.test"] = ["550 5.1.1 No such user"] * 10
    await publish(publisher, make_event("created", email_address="nobody@acme.test"))
    await publish(publisher, make_event("created", ticket_id=99))

    [marker] = await wait_for_mail(relay, 1)
    assert "[#99]" in marker.message["Subject"]

    async def failed_row() -> Any:
        rows = await notify.store.list_page(ticket_id=42, recipient="", after_id=0, limit=10)
        return rows[0] if rows and rows[0].status == DeliveryStatus.FAILED else None

    deadline = time.monotonic() + DEADLINE
    failed = None
    while failed is None and time.monotonic() < deadline:
        failed = await failed_row()
        await asyncio.sleep(0.05)
    assert failed is not None, "the refused delivery never ended FAILED"
    assert failed.attempts == FAST_RETRY.max_permanent_attempts
    assert "550" in failed.error and "No such user" in failed.error


@pytest.mark.db
async def test_list_notifications_over_grpc(
    notify: NotifyApp, relay: Relay, publisher: EventPublisher
) -> None:
    await publish(publisher, make_event("created", ticket_id=42))
    await publish(publisher, make_event("solved", ticket_id=42))
    await publish(publisher, make_event("created", ticket_id=43, email_address="anna@acme.test"))
    await wait_for_mail(relay, 3)
    await sent_rows(notify, 3)
    port = notify.port

    everything = await list_notifications(port, notify_pb2.ListNotificationsRequest())
    assert [n.template for n in everything.notifications] == ["created", "solved", "created"]
    assert everything.next_page_token == ""
    first = everything.notifications[0]
    assert first.ticket_id == 42 and first.channel == "email"
    assert first.recipient == "mario.rossi@acme.test"
    assert first.status == notify_pb2.DELIVERY_STATUS_SENT
    assert "[#42]" in first.subject and first.locale == "it" and first.attempts == 1
    assert first.message_id.endswith("@helpdesk.test>")
    assert first.created_at.seconds > 0

    by_ticket = await list_notifications(port, notify_pb2.ListNotificationsRequest(ticket_id=42))
    assert [n.event_type for n in by_ticket.notifications] == ["created", "solved"]
    by_recipient = await list_notifications(
        port, notify_pb2.ListNotificationsRequest(recipient="Anna@ACME.test")
    )
    assert [n.ticket_id for n in by_recipient.notifications] == [43]

    seen: list[str] = []
    token = ""
    while True:
        page = await list_notifications(
            port, notify_pb2.ListNotificationsRequest(page_size=2, page_token=token)
        )
        assert len(page.notifications) <= 2
        seen += [n.id for n in page.notifications]
        token = page.next_page_token
        if not token:
            break
    assert seen == [n.id for n in everything.notifications]

    with pytest.raises(grpc.aio.AioRpcError) as bad_token:
        await list_notifications(port, notify_pb2.ListNotificationsRequest(page_token="%%%"))
    assert bad_token.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "page_token" in (bad_token.value.details() or "")

    first_page = await list_notifications(port, notify_pb2.ListNotificationsRequest(page_size=1))
    with pytest.raises(grpc.aio.AioRpcError) as other_filters:
        await list_notifications(
            port,
            notify_pb2.ListNotificationsRequest(
                ticket_id=43, page_token=first_page.next_page_token
            ),
        )
    assert other_filters.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    with pytest.raises(grpc.aio.AioRpcError) as no_token:
        await list_notifications(port, notify_pb2.ListNotificationsRequest(), token=None)
    assert no_token.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as wrong_token:
        await list_notifications(port, notify_pb2.ListNotificationsRequest(), token="nope")
    assert wrong_token.value.code() == grpc.StatusCode.UNAUTHENTICATED
    service = await list_notifications(
        port, notify_pb2.ListNotificationsRequest(ticket_id=43), token=SERVICE_TOKEN
    )
    assert len(service.notifications) == 1


@pytest.mark.db
async def test_without_a_relay_mail_goes_to_the_maildir(
    start_notify: Callable[[Settings], Any],
    tmp_path: Path,
    database_url: str,
    nats_url: str,
    publisher: EventPublisher,
) -> None:
    app: NotifyApp = await start_notify(make_settings(tmp_path, database_url, nats_url))
    maildir = tmp_path / "maildir"
    await publish(publisher, make_event("created"))

    def spooled() -> list[str]:
        new = maildir / "new"
        return [p.name for p in new.iterdir()] if new.is_dir() else []

    await eventually(spooled, "a file in the Maildir")
    [message] = list(mailbox.Maildir(maildir, create=False))
    assert "[#42]" in message["Subject"]
    assert message["X-Helpdesk-Ticket"] == "42"
    [row] = await sent_rows(app, 1)
    assert row.message_id == message["Message-ID"]


def spawn_notify(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """``python -m services.notify`` with ``env``, output to ``log_path``."""
    with open(log_path, "wb") as log_file:
        return subprocess.Popen(
            [sys.executable, "-m", "services.notify"],
            env=env,
            cwd=REPO_ROOT,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )


@pytest.mark.db
@pytest.mark.system
async def test_the_process_serves_health_sends_mail_and_stops_on_sigterm(
    tmp_path: Path, database_url: str, relay: Relay
) -> None:
    # Its own nats-server: the real durable "notify" replays the whole stream.
    nats = start_nats(None)
    port = free_port()
    env = {
        **os.environ,
        "HELPDESK_DATA_DIR": str(tmp_path),
        "HELPDESK_DATABASE_URL": database_url,
        "HELPDESK_NATS_URL": nats.addresses["nats"],
        "HELPDESK_NOTIFY_ADDR": f"127.0.0.1:{port}",
        "HELPDESK_SMTP_RELAY": relay.address,
        "HELPDESK_MAIL_FROM": MAIL_FROM,
        "HELPDESK_ADMIN_TOKEN": ADMIN_TOKEN,
        "HELPDESK_SERVICE_TOKEN": SERVICE_TOKEN,
    }
    log_path = tmp_path / "notify.log"
    proc = spawn_notify(env, log_path)
    pub = EventPublisher(nats.addresses["nats"], "test-tickets")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            deadline = time.monotonic() + DEADLINE
            status = None
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    reply = await health.Check(
                        health_pb2.HealthCheckRequest(service="helpdesk.v1.NotifyService"),
                        timeout=1,
                    )
                    status = reply.status
                    if status == health_pb2.HealthCheckResponse.SERVING:
                        break
                except grpc.aio.AioRpcError:
                    pass
                await asyncio.sleep(0.1)
            assert status == health_pb2.HealthCheckResponse.SERVING, log_path.read_text()

        await publish(pub, make_event("created"))
        [got] = await wait_for_mail(relay, 1)
        assert "[#42]" in got.message["Subject"]
        listed = await list_notifications(port, notify_pb2.ListNotificationsRequest(ticket_id=42))
        assert len(listed.notifications) == 1

        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(asyncio.to_thread(proc.wait), DEADLINE)
        assert code == 0, log_path.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        await pub.close()
        nats.stop()


# -- automatic replies: the hourly limit per address --------------------------------------


@pytest.mark.db
async def test_at_most_five_automatic_replies_to_one_address_per_hour(
    notify: NotifyApp, relay: Relay, publisher: EventPublisher
) -> None:
    # Six new tickets from one sender within the hour: five acknowledgements, then silence
    # (RFC 3834: no endless conversation with a robot that keeps opening tickets).
    for ticket_id in range(60, 66):
        await publish(publisher, make_event("created", ticket_id=ticket_id))
    # Not an automatic reply: the limit does not hold it back.
    await publish(publisher, make_event("solved", ticket_id=60))
    # A marker to someone else: events are handled in stream order.
    await publish(publisher, make_event("created", ticket_id=99, email_address="anna@acme.test"))

    received = await wait_for_mail(relay, 7)
    await asyncio.sleep(0.3)  # nothing else may arrive
    subjects = relay.handler.subjects()
    assert len(subjects) == 7, subjects
    assert [s.split("]")[0] for s in subjects] == [f"[#{n}" for n in (60, 61, 62, 63, 64, 60, 99)]
    assert received[5].message["Auto-Submitted"] == "auto-generated"  # the solved email
    rows = list(await notify.store.list_page(ticket_id=65, recipient="", after_id=0, limit=10))
    assert [(r.template, r.status) for r in rows] == [("created", DeliveryStatus.SUPPRESSED)]
    assert "5 automatic replies" in rows[0].error
    assert rows[0].attempts == 0 and rows[0].sent_at is None
    acks = await notify.store.list_page(
        ticket_id=0, recipient="mario.rossi@acme.test", after_id=0, limit=20
    )
    assert sorted((r.ticket_id, r.status) for r in acks if r.template == "created") == [
        *((n, "SENT") for n in range(60, 65)),
        (65, "SUPPRESSED"),
    ]


# -- bounces: an internal note on the ticket ---------------------------------------------


@dataclass
class FakeTickets(tickets_pb2_grpc.TicketServiceServicer):
    """A TicketService that records the notes it is given; the first calls fail as a
    restarting tickets service does (UNAVAILABLE)."""

    unavailable: int = 1
    notes: list[tuple[tickets_pb2.AddCommentRequest, str]] = field(default_factory=list)

    async def AddComment(
        self, request: tickets_pb2.AddCommentRequest, context: Any
    ) -> tickets_pb2.AddCommentResponse:
        if self.unavailable > 0:
            self.unavailable -= 1
            await context.abort(grpc.StatusCode.UNAVAILABLE, "tickets restarting")
        auth = dict(context.invocation_metadata()).get("authorization", "")
        self.notes.append((request, auth))
        return tickets_pb2.AddCommentResponse()


@pytest.mark.db
async def test_a_bounce_becomes_an_internal_note_on_its_ticket_retried_until_filed(
    start_notify: Callable[[Settings], Any],
    tmp_path: Path,
    database_url: str,
    nats_url: str,
    relay: Relay,
    publisher: EventPublisher,
) -> None:
    fake = FakeTickets()
    server = grpc.aio.server()
    tickets_pb2_grpc.add_TicketServiceServicer_to_server(fake, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        settings = dataclasses.replace(
            make_settings(tmp_path, database_url, nats_url, relay.address),
            tickets_addr=f"127.0.0.1:{port}",
        )
        app: NotifyApp = await start_notify(settings)
        event = make_event("created", ticket_id=42, email_address="ex.dipendente@acme.test")
        await publish(publisher, event)
        [got] = await wait_for_mail(relay, 1)
        bounce = {
            "event_id": "mail-bounce:0123456789abcdef",
            "type": "bounce",
            "original_message_ids": [str(got.message["Message-ID"])],
            "recipients": ["ex.dipendente@acme.test"],
            "action": "failed",
            "status": "5.1.1",
            "diagnostic": "smtp; 550 5.1.1 <ex.dipendente@acme.test>: user unknown",
        }
        await publisher.publish(mail_subject("bounce"), bounce["event_id"], bounce)
        await eventually(lambda: fake.notes, "the note on the ticket")
        # The same report again (another Nats-Msg-Id: JetStream cannot drop it): the note
        # carries the same request_id, so the tickets service files it once.
        await publisher.publish(mail_subject("bounce"), "bounce-again", bounce)
        await eventually(lambda: len(fake.notes) >= 2, "the repeated note")
    finally:
        await server.stop(0)
    first, again = fake.notes[0][0], fake.notes[1][0]
    assert first.ticket_id == 42
    assert first.author.kind == pb.AUTHOR_KIND_SYSTEM
    assert first.visibility == pb.COMMENT_VISIBILITY_INTERNAL
    assert first.body == (
        "Email to ex.dipendente@acme.test bounced: 5.1.1 "
        "smtp; 550 5.1.1 <ex.dipendente@acme.test>: user unknown"
    )
    assert first.request_id and first.request_id == again.request_id
    assert fake.notes[0][1] == f"Bearer {SERVICE_TOKEN}"
    assert fake.unavailable == 0  # the first call failed, and was retried
    [row] = await app.store.list_page(ticket_id=42, recipient="", after_id=0, limit=10)
    assert row.status == DeliveryStatus.BOUNCED and "5.1.1" in row.error


@pytest.mark.db
async def test_a_forged_bounce_marks_nothing_and_files_no_note(
    start_notify: Callable[[Settings], Any],
    tmp_path: Path,
    database_url: str,
    nats_url: str,
    relay: Relay,
    publisher: EventPublisher,
) -> None:
    fake = FakeTickets(unavailable=0)
    server = grpc.aio.server()
    tickets_pb2_grpc.add_TicketServiceServicer_to_server(fake, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        settings = dataclasses.replace(
            make_settings(tmp_path, database_url, nats_url, relay.address),
            tickets_addr=f"127.0.0.1:{port}",
        )
        app: NotifyApp = await start_notify(settings)
        victim = make_event("created", ticket_id=42, event_id="ticket-42-ev-1")
        await publish(publisher, victim)
        await publish(publisher, make_event("created", ticket_id=43))
        received = await wait_for_mail(relay, 2)
        genuine_id = str(received[1].message["Message-ID"])
        # What anyone could compute from a guessable event ID without our key: the unsealed
        # Message-ID notify used to write; and our real ID with another ticket in it.
        digest = hashlib.sha256(b"ticket-42-ev-1\x00created").hexdigest()[:32]
        unsealed = f"<notify.created.t42.{digest}@helpdesk.test>"
        real_42 = str(received[0].message["Message-ID"])
        retargeted = genuine_id.replace(".t43.", ".t42.")
        for n, ids in enumerate(([unsealed], [retargeted])):
            forged = {
                "event_id": f"mail-bounce:forged-{n}",
                "type": "bounce",
                "original_message_ids": ids,
                "recipients": ["mario.rossi@acme.test"],
                "action": "failed",
                "status": "5.1.1",
                "diagnostic": "forged",
            }
            await publisher.publish(mail_subject("bounce"), forged["event_id"], forged)
        # The real report about ticket 43's mail, after them in the stream: when its note is
        # filed, the forged reports were handled.
        real = {
            "event_id": "mail-bounce:real",
            "type": "bounce",
            "original_message_ids": [genuine_id],
            "recipients": ["mario.rossi@acme.test"],
            "action": "failed",
            "status": "5.1.1",
            "diagnostic": "user unknown",
        }
        await publisher.publish(mail_subject("bounce"), real["event_id"], real)
        await eventually(lambda: fake.notes, "the note of the real report")
    finally:
        await server.stop(0)
    assert [note.ticket_id for note, _ in fake.notes] == [43]
    [row_42] = await app.store.list_page(ticket_id=42, recipient="", after_id=0, limit=10)
    [row_43] = await app.store.list_page(ticket_id=43, recipient="", after_id=0, limit=10)
    assert (row_42.status, row_43.status) == (DeliveryStatus.SENT, DeliveryStatus.BOUNCED)
    assert real_42 != unsealed  # our real ID cannot be computed from the event ID


@pytest.mark.db
async def test_a_name_with_a_line_break_is_folded_into_one_header_line(
    notify: NotifyApp, relay: Relay, publisher: EventPublisher
) -> None:
    event = make_event("created")
    event["ticket"]["requester"]["name"] = "Mario\r\nBcc: spia@evil.test"
    await publish(publisher, event)

    [got] = await wait_for_mail(relay, 1)
    assert got.rcpt_tos == ["mario.rossi@acme.test"]
    assert got.message["Bcc"] is None
    assert got.message["To"] == '"Mario Bcc: spia@evil.test" <mario.rossi@acme.test>'
    [sent] = await sent_rows(notify, 1)
    assert sent.attempts == 1


async def _consumer_settled(nats_url: str, durable: str) -> Any:
    """The consumer's state once nothing it was given waits for an ack."""
    nc = await connect(nats_url, "test-consumer-info")
    try:
        deadline = time.monotonic() + DEADLINE
        while True:
            info = await nc.jetstream().consumer_info(STREAM, durable)
            if info.num_ack_pending == 0 or time.monotonic() > deadline:
                return info
            await asyncio.sleep(0.05)
    finally:
        await nc.close()


@pytest.mark.db
async def test_an_email_that_cannot_be_composed_fails_at_once_and_its_event_is_acked(
    notify: NotifyApp, relay: Relay, publisher: EventPublisher, nats_url: str
) -> None:
    # A line break in the address: the email library refuses the To header.
    await publish(
        publisher, make_event("created", email_address="mario@acme.test\nbcc: spia@evil.test")
    )
    # A template that fails on the event (the ticket lacks its organisation's name).
    reminder = make_event("third_party_reminder", ticket_id=43)
    reminder["ticket"]["assignee"] = {
        "id": 3,
        "name": "Laura Bianchi",
        "email": "laura@helpdesk.test",
        "locale": "it",
    }
    del reminder["ticket"]["organization_name"]  # type: ignore[misc]
    await publish(publisher, reminder)
    await publish(publisher, make_event("created", ticket_id=99))  # a marker

    [marker] = await wait_for_mail(relay, 1)
    assert "[#99]" in marker.message["Subject"]

    async def failed() -> list[Any]:
        rows = await notify.store.list_page(ticket_id=0, recipient="", after_id=0, limit=10)
        return [r for r in rows if r.status == DeliveryStatus.FAILED]

    deadline = time.monotonic() + DEADLINE
    rows: list[Any] = []
    while len(rows) < 2 and time.monotonic() < deadline:
        rows = await failed()
        await asyncio.sleep(0.05)
    by_ticket = {r.ticket_id: r for r in rows}
    assert sorted(by_ticket) == [42, 43], "the emails never ended FAILED"
    assert by_ticket[42].attempts == 1
    assert "linefeed" in by_ticket[42].error
    assert by_ticket[43].attempts == 0  # nothing to send: the template failed first
    assert "third_party_reminder" in by_ticket[43].error
    assert "organization_name" in by_ticket[43].error
    info = await _consumer_settled(nats_url, notify._durable)
    assert (info.num_ack_pending, info.num_redelivered) == (0, 0)
    assert len(relay.handler.received) == 1
