"""Notify's second-level emails against real servers: nats-server, an SMTP relay, the database.

Ticket events of the second level (``helpdesk.ticket.development_update_shipped``,
``third_party_reminder``, ``programming_ticket_cancelled``) go to the requester or the
assignee; programming-ticket events (``helpdesk.progticket.<type>``) go to the recipients
dev_escalation resolved (on-call developers, development leads, the organisation's
referents). Every email is recorded once per (event, recipient), whatever JetStream redelivers.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from nats.js.api import DeliverPolicy

from helpdesk.v1 import notify_pb2
from services.common.events import STREAM, EventPublisher, connect
from services.common.messages.programming import (
    ProgEventPayload,
    ProgTicketPayload,
    RecipientPayload,
)
from services.common.messages.programming import subject as progticket_subject
from services.common.messages.tickets import TicketEventPayload
from services.notify.app import NotifyApp
from services.notify.models import DeliveryStatus
from tests.services.notify_fixtures import (
    DEADLINE,
    Received,
    Relay,
    body_of,
    list_notifications,
    make_event,
    make_settings,
    notification_id,
    publish,
    sent_rows,
    wait_for_mail,
)

pytestmark = pytest.mark.timeout(60)

# 17:00-18:00 UTC is 18:00-19:00 in Rome (CET) on Friday 27 November 2026.
WINDOW = {"starts_at": "2026-11-27T17:00:00+00:00", "ends_at": "2026-11-27T18:00:00+00:00"}
START_WORK_DUE = "2026-11-27T09:30:00+00:00"  # 10:30 in Rome


# -- events --------------------------------------------------------------------------------


def second_level_event(
    kind: str,
    detail: str,
    *,
    locale: str = "it",
    email_address: str = "mario.rossi@acme.test",
    assignee_email: str | None = "laura.bianchi@helpdesk.test",
    event_id: str | None = None,
) -> TicketEventPayload:
    """A second-level ticket event as the tickets service publishes it."""
    event = make_event(kind, locale=locale, email_address=email_address, event_id=event_id)
    event["detail"] = detail
    event["ticket"]["status"] = "ON_HOLD"
    if assignee_email is not None:
        event["ticket"]["assignee"] = {
            "id": 3,
            "name": "Laura Bianchi",
            "email": assignee_email,
            "locale": "it",
        }
    return event


def recipient(
    email: str, name: str, locale: str = "it", kind: str = "AGENT", person_id: int = 5
) -> RecipientPayload:
    return {"kind": kind, "id": person_id, "name": name, "email": email, "locale": locale}


def make_prog_event(
    kind: str,
    recipients: list[RecipientPayload],
    *,
    prog_id: int = 7,
    support_ticket_id: int = 42,
    urgency: str = "HIGH",
    event_id: str | None = None,
    remote_update: dict[str, str] | None = None,
) -> ProgEventPayload:
    """A programming-ticket event as dev_escalation publishes it."""
    ticket: ProgTicketPayload = {
        "id": prog_id,
        "display_id": f"P-{prog_id}",
        "support_ticket_id": support_ticket_id,
        "support_display_id": f"#{support_ticket_id}",
        "organization_id": 1,
        "organization_name": "ACME S.r.l.",
        "title": "La stampa delle fatture va in errore",
        "urgency": urgency,
        "status": "OPEN",
        "assignee": None,
        "target_release": "",
        "planned_date": None,
        "fix_version": "",
        "fix_notes": "",
        "release_notes": "",
        "cancel_reason": "",
        "start_work_due": START_WORK_DUE if urgency == "HIGH" else None,
        "escalated_to_lead": kind == "start_overdue",
        "remote_update": (
            {"starts_at": remote_update["starts_at"], "ends_at": remote_update["ends_at"]}
            if remote_update
            else None
        ),
        "created_at": "2026-11-27T08:30:00+00:00",
    }
    return {
        "event_id": event_id or f"progticket-{prog_id}-ev-{uuid.uuid4().hex[:8]}",
        "type": kind,
        "programming_ticket_id": prog_id,
        "occurred_at": "2026-11-27T08:30:00+00:00",
        "actor": {"kind": "SYSTEM", "id": 0, "name": ""},
        "from_status": "",
        "to_status": "OPEN",
        "detail": "",
        "programming_ticket": ticket,
        "recipients": recipients,
    }


async def publish_prog(
    pub: EventPublisher, event: ProgEventPayload, msg_id: str | None = None
) -> None:
    await pub.publish(progticket_subject(event["type"]), msg_id or event["event_id"], dict(event))


ON_CALL = [
    recipient("dev.uno@helpdesk.test", "Dev Uno", "it", person_id=11),
    recipient("Dev.Two@Helpdesk.test", "Dev Two", "en", person_id=12),
    recipient("noreply@helpdesk.test", "Robot", "it", person_id=13),
    recipient("", "No Address", "it", person_id=14),
]
LEADS = [recipient("capo.sviluppo@helpdesk.test", "Carla Capo", "it", person_id=20)]
REFERENTS = [
    recipient("referente@acme.test", "Giulia Verdi", "it", "CONTACT", 30),
    recipient("it.manager@acme.test", "Jane Doe", "en", "CONTACT", 31),
]


# -- servers -------------------------------------------------------------------------------


def subject_of(got: Received) -> str:
    """The subject, unfolded (a long one is folded onto the next line by the sender)."""
    return str(got.message["Subject"]).strip()


def mail_to(received: list[Received], address: str) -> list[Received]:
    return [r for r in received if r.rcpt_tos == [address]]


MARKER = "marker@acme.test"


async def marker(
    pub: EventPublisher, relay: Relay, count: int, *, prog: bool = False
) -> list[Received]:
    """Publish one more event that mails ``MARKER`` and wait for ``count`` emails: each
    consumer handles its subjects in stream order, so whatever was published before the
    marker on the same consumer has been handled by then."""
    if prog:
        await publish_prog(
            pub,
            make_prog_event(
                "start_overdue", [recipient(MARKER, "M")], prog_id=99, support_ticket_id=999
            ),
        )
    else:
        await publish(pub, make_event("created", ticket_id=999, email_address=MARKER))
    received = await wait_for_mail(relay, count)
    assert any(r.rcpt_tos == [MARKER] for r in received)
    return received


# -- second-level ticket events ------------------------------------------------------------


@pytest.mark.db
async def test_the_shipped_update_reaches_the_requester_in_their_language(
    notify: NotifyApp, relay: Relay, publisher: EventPublisher
) -> None:
    notes = "Corretto l'errore nella stampa delle fatture.\nAggiunto il controllo della P.IVA."
    await publish(
        publisher,
        second_level_event("development_update_shipped", f"P-7 (v2.3.1): {notes}"),
    )
    await publish(
        publisher,
        second_level_event(
            "development_update_shipped",
            "P-8: Fixed the invoice printout.",
            locale="en",
            email_address="john.smith@acme.test",
        ),
    )

    received = await wait_for_mail(relay, 2)
    [it] = mail_to(received, "mario.rossi@acme.test")
    assert subject_of(it) == ("[#42] Aggiornamento disponibile: La stampante in rete non stampa")
    body = body_of(it.message)
    assert "Gentile Mario Rossi" in body
    assert "è disponibile l'aggiornamento preparato dallo sviluppo" in body
    assert "versione v2.3.1" in body
    assert "    Corretto l'errore nella stampa delle fatture." in body
    assert "    Aggiunto il controllo della P.IVA." in body
    assert "verificare insieme" in body
    assert it.message["Content-Language"] == "it"
    assert it.message["X-Helpdesk-Ticket"] == "42"

    [en] = mail_to(received, "john.smith@acme.test")
    assert subject_of(en) == "[#42] Update available: La stampante in rete non stampa"
    body = body_of(en.message)
    assert "Dear John Smith" in body
    assert "update prepared by our development team" in body and "version" not in body
    assert "    Fixed the invoice printout." in body
    assert "verify with you" in body
    assert en.message["Content-Language"] == "en"


@pytest.mark.db
async def test_the_assignee_hears_of_the_vendor_and_of_a_cancelled_programming_ticket(
    notify: NotifyApp, relay: Relay, publisher: EventPublisher
) -> None:
    agent = "laura.bianchi@helpdesk.test"
    await publish(
        publisher,
        second_level_event("third_party_reminder", "still waiting for Fastweb (ref. TT-991)"),
    )
    await publish(
        publisher,
        second_level_event("programming_ticket_cancelled", "P-7 cancelled: not reproducible"),
    )

    received = await wait_for_mail(relay, 2)
    assert all(r.rcpt_tos == [agent] for r in received), [r.rcpt_tos for r in received]
    reminder, cancelled = received
    assert subject_of(reminder) == (
        "[#42] Promemoria: in attesa di Fastweb: La stampante in rete non stampa"
    )
    body = body_of(reminder.message)
    assert "Ciao Laura Bianchi" in body
    assert "è ancora sospesa in attesa di Fastweb (riferimento TT-991)" in body
    assert subject_of(cancelled) == (
        "[#42] Ticket di programmazione P-7 annullato: La stampante in rete non stampa"
    )
    body = body_of(cancelled.message)
    assert "annullato il ticket di programmazione P-7" in body
    assert "    not reproducible" in body
    assert "tornata aperta" in body
    # The customer is told nothing about either.
    assert not mail_to(received, "mario.rossi@acme.test")


@pytest.mark.db
async def test_other_second_level_events_send_nothing(
    notify: NotifyApp, relay: Relay, publisher: EventPublisher
) -> None:
    for kind, detail in (
        ("escalated", "programming ticket P-7 (HIGH): La stampa va in errore"),
        ("programming_ticket_detached", "P-7 detached: workaround accepted"),
        ("third_party_hold", "waiting for Fastweb (ref. TT-991)"),
        ("time_logged", "1.5 h"),
    ):
        await publish(publisher, second_level_event(kind, detail))
    # No assignee to remind, a robot assignee: nothing either.
    await publish(
        publisher,
        second_level_event("third_party_reminder", "still waiting for X", assignee_email=None),
    )
    await publish(
        publisher,
        second_level_event(
            "programming_ticket_cancelled",
            "P-7 cancelled: duplicate",
            assignee_email="postmaster@helpdesk.test",
        ),
    )

    received = await marker(publisher, relay, 1)
    assert [r.rcpt_tos for r in received] == [[MARKER]]


@pytest.mark.db
async def test_a_redelivered_shipped_update_is_sent_once(
    notify: NotifyApp, relay: Relay, publisher: EventPublisher
) -> None:
    event = second_level_event(
        "development_update_shipped", "P-7 (v2.3.1): fixed", event_id="ticket-42-ev-9"
    )
    await publish(publisher, event)
    await publish(publisher, event, msg_id="ticket-42-ev-9-retry")

    received = await marker(publisher, relay, 2)
    assert [r.rcpt_tos for r in received] == [["mario.rossi@acme.test"], [MARKER]]
    rows = await sent_rows(notify, 2)
    assert [r.template for r in rows] == ["development_update_shipped", "created"]


# -- programming-ticket events ---------------------------------------------------------------


@pytest.mark.db
async def test_a_high_programming_ticket_calls_every_on_call_developer_once(
    notify: NotifyApp, relay: Relay, publisher: EventPublisher
) -> None:
    event = make_prog_event("created", ON_CALL, event_id="progticket-7-ev-1")
    await publish_prog(publisher, event)
    # Redelivered under another Nats-Msg-Id: JetStream cannot drop it, notify must.
    await publish_prog(publisher, event, msg_id="progticket-7-ev-1-retry")
    # A LOW one is planned in ordinary development: nobody is called (and nobody listed).
    await publish_prog(publisher, make_prog_event("created", [], prog_id=8, urgency="LOW"))
    await publish_prog(publisher, make_prog_event("created", ON_CALL[:1], prog_id=9, urgency="LOW"))

    received = await marker(publisher, relay, 3, prog=True)
    assert len(received) == 3, [r.rcpt_tos for r in received]
    [uno] = mail_to(received, "dev.uno@helpdesk.test")
    assert subject_of(uno) == (
        "[P-7] Bloccante, da iniziare subito: La stampa delle fatture va in errore"
        " (richiesta #42, ACME S.r.l.)"
    )
    body = body_of(uno.message)
    assert "Ciao Dev Uno" in body
    assert "ticket di programmazione P-7 con urgenza ALTA" in body
    assert "Richiesta:     #42 di ACME S.r.l." in body
    assert "Inizio entro:  venerdì 27 novembre 2026 alle 10:30 (ora italiana)" in body
    assert uno.message["X-Helpdesk-Ticket"] == "42"

    [two] = mail_to(received, "dev.two@helpdesk.test")
    assert subject_of(two).startswith("[P-7] Blocking, start now:")
    body = body_of(two.message)
    assert "Hello Dev Two" in body
    assert "Start by:      Friday 27 November 2026 at 10:30 (Italian time)" in body
    # Each message its own Message-ID, stable across resends.
    assert uno.message["Message-ID"] != two.message["Message-ID"]
    assert str(uno.message["Message-ID"]).strip() == notification_id(
        notify, "progticket-7-ev-1\x00dev.uno@helpdesk.test", "progticket_created"
    )

    # The delivery log, as ListNotifications shows it, under the support ticket.
    await sent_rows(notify, 3)
    listed = await list_notifications(
        notify.port, notify_pb2.ListNotificationsRequest(ticket_id=42)
    )
    assert sorted(
        (n.recipient, n.event_type, n.template, n.locale) for n in listed.notifications
    ) == [
        ("dev.two@helpdesk.test", "progticket.created", "progticket_created", "en"),
        ("dev.uno@helpdesk.test", "progticket.created", "progticket_created", "it"),
    ]
    assert all(n.status == notify_pb2.DELIVERY_STATUS_SENT for n in listed.notifications)
    assert all(n.event_id == "progticket-7-ev-1" for n in listed.notifications)


@pytest.mark.db
async def test_a_missed_start_deadline_reaches_the_development_leads(
    notify: NotifyApp, relay: Relay, publisher: EventPublisher
) -> None:
    await publish_prog(publisher, make_prog_event("start_overdue", LEADS))
    # Moves that write to nobody.
    for kind in ("started", "scheduled", "fixed", "shipped", "cancelled", "moved"):
        await publish_prog(publisher, make_prog_event(kind, []))

    received = await marker(publisher, relay, 2, prog=True)
    assert [r.rcpt_tos for r in received if r.rcpt_tos != [MARKER]] == [
        ["capo.sviluppo@helpdesk.test"]
    ]
    [lead] = mail_to(received, "capo.sviluppo@helpdesk.test")
    assert subject_of(lead) == (
        "[P-7] Nessuno ha iniziato il lavoro entro la scadenza:"
        " La stampa delle fatture va in errore"
    )
    body = body_of(lead.message)
    assert "Ciao Carla Capo" in body
    assert "nessuno ha ancora iniziato il lavoro" in body
    assert "venerdì 27 novembre 2026 alle 10:30 (ora italiana)" in body


@pytest.mark.db
async def test_referents_are_told_before_and_after_a_remote_update(
    notify: NotifyApp, relay: Relay, publisher: EventPublisher
) -> None:
    await publish_prog(
        publisher,
        make_prog_event("remote_update_announced", REFERENTS, remote_update=WINDOW),
    )
    await publish_prog(
        publisher,
        make_prog_event("remote_update_completed", REFERENTS, remote_update=WINDOW),
    )

    received = await wait_for_mail(relay, 4)
    it_before, it_after = mail_to(received, "referente@acme.test")
    assert subject_of(it_before) == (
        "Aggiornamento remoto programmato: venerdì 27 novembre 2026, 18:00-19:00"
    )
    body = body_of(it_before.message)
    assert "Gentile Giulia Verdi" in body
    assert "    venerdì 27 novembre 2026, 18:00-19:00 (ora italiana)" in body
    assert "utenti restino scollegati dall'applicazione" in body
    assert "#42" in body
    assert subject_of(it_after) == (
        "Aggiornamento remoto completato: venerdì 27 novembre 2026, 18:00-19:00"
    )
    assert "gli utenti possono ricollegarsi" in body_of(it_after.message)

    en_before, en_after = mail_to(received, "it.manager@acme.test")
    assert subject_of(en_before) == (
        "Scheduled remote update: Friday 27 November 2026, 18:00-19:00"
    )
    body = body_of(en_before.message)
    assert "Dear Jane Doe" in body
    assert "Friday 27 November 2026, 18:00-19:00 (Italian time)" in body
    assert "users stay disconnected from the application" in body
    assert en_before.message["Content-Language"] == "en"
    assert "users may reconnect" in body_of(en_after.message)


@pytest.mark.db
async def test_a_restarted_notify_sends_nothing_twice(
    start_notify: Callable[..., Any],
    tmp_path: Path,
    database_url: str,
    nats_url: str,
    relay: Relay,
    publisher: EventPublisher,
) -> None:
    """The same durables and the same delivery log after a restart: a replay of the
    stream (every message delivered again) sends nothing new."""
    settings = make_settings(tmp_path, database_url, nats_url, relay.address)
    durable = f"notify-test-{uuid.uuid4().hex[:10]}"
    secrets_durable = f"notify-secrets-test-{uuid.uuid4().hex[:10]}"
    first = await start_notify(
        settings,
        durable=durable,
        secrets_durable=secrets_durable,
        deliver_policy=DeliverPolicy.ALL,
    )
    await publish_prog(
        publisher,
        make_prog_event("remote_update_announced", REFERENTS, remote_update=WINDOW),
    )
    await wait_for_mail(relay, 2)
    await sent_rows(first, 2)
    await asyncio.wait_for(first.stop(), DEADLINE)

    # Forget what the durable consumer acked: the stream is delivered again from the start.
    nc = await connect(nats_url, "test-reset")
    await nc.jetstream().delete_consumer(STREAM, f"{durable}-progticket")
    await nc.close()
    second = await start_notify(
        settings,
        durable=durable,
        secrets_durable=secrets_durable,
        deliver_policy=DeliverPolicy.ALL,
    )
    await publish_prog(
        publisher, make_prog_event("start_overdue", LEADS, event_id="progticket-7-ev-5")
    )
    received = await wait_for_mail(relay, 3)
    await asyncio.sleep(0.3)
    assert len(received) == 3, [r.rcpt_tos for r in received]
    rows = await sent_rows(second, 3)
    assert all(r.status == DeliveryStatus.SENT for r in rows)
    assert [r.event_type for r in rows] == [
        "progticket.remote_update_announced",
        "progticket.remote_update_announced",
        "progticket.start_overdue",
    ]
