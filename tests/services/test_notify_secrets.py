"""Notify's secret emails against real servers: nats-server, an SMTP relay, the database.

The tickets service publishes credentials and password-reset codes on
``helpdesk.secret.<type>`` (stream ``HELPDESK_SECRETS``, kept one hour at
most); notify emails them once and logs each delivery without the secret.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from nats.js.api import AckPolicy, StreamConfig
from sqlalchemy import text

from services.common.db import make_engine
from services.common.events import (
    DUPLICATE_WINDOW_SECONDS,
    SECRET_SUBJECTS,
    SECRETS_MAX_AGE_SECONDS,
    SECRETS_STREAM,
    STREAM,
    SUBJECTS,
    EventPublisher,
    connect,
    ensure_secrets_stream,
    ensure_stream,
)
from services.common.messages.secrets import SecretEventPayload
from services.common.messages.secrets import decode as decode_secret_event
from services.common.messages.secrets import subject as secret_subject
from services.notify.app import NotifyApp
from services.notify.secrets import (
    DURABLE,
    format_expiry,
    plan_secret,
)
from tests.services.notify_fixtures import (
    DEADLINE,
    MAIL_FROM,
    PORTAL_URL,
    Relay,
    body_of,
    make_event,
    make_settings,
    notification_id,
    sent_rows,
    wait_for_mail,
)

PASSWORD = "Vq7-pLm2-Xr9t"
RESET_CODE = "482913"
EXPIRES_AT = "2026-03-02T10:15:00+00:00"  # 11:15 in Rome (CET)

pytestmark = pytest.mark.timeout(60)


def make_secret_event(
    kind: str,
    *,
    event_id: str | None = None,
    locale: str = "it",
    email_address: str = "Mario.Rossi@ACME.test",
    secret: str = PASSWORD,
    expires_at: str | None = None,
    person_kind: str = "CONTACT",
    organization_name: str = "ACME S.r.l.",
) -> SecretEventPayload:
    """A secret event as the tickets service publishes it."""
    return {
        "event_id": event_id or f"secret-{uuid.uuid4().hex}",
        "type": kind,
        "recipient": {
            "email": email_address,
            "name": "Mario Rossi" if locale == "it" else "John Smith",
            "locale": locale,
        },
        "kind": person_kind,
        "secret": secret,
        "expires_at": expires_at,
        "organization_name": organization_name,
    }


def reset_event(**kwargs: Any) -> SecretEventPayload:
    return make_secret_event("password_reset", secret=RESET_CODE, expires_at=EXPIRES_AT, **kwargs)


class SecretPublisher:
    """Publishes secret events the way the contract says: JSON, event ID as Nats-Msg-Id."""

    def __init__(self, nats_url: str) -> None:
        self._url = nats_url
        self._nc: Any = None

    async def publish(self, event: SecretEventPayload, msg_id: str | None = None) -> bool:
        if self._nc is None:
            self._nc = await connect(self._url, "test-tickets-secrets")
            await ensure_secrets_stream(self._nc.jetstream())
        ack = await self._nc.jetstream().publish(
            secret_subject(event["type"]),
            json.dumps(event).encode(),
            headers={"Nats-Msg-Id": msg_id or event["event_id"]},
            timeout=10,
        )
        return not ack.duplicate

    async def close(self) -> None:
        if self._nc is not None:
            await self._nc.drain()


@pytest.fixture
async def secrets(nats_url: str) -> AsyncIterator[SecretPublisher]:
    pub = SecretPublisher(nats_url)
    yield pub
    await pub.close()


async def stored_rows(app: NotifyApp) -> list[dict[str, Any]]:
    """Every row of the delivery log, every column, as the database holds it."""
    engine = make_engine(app.settings.database_url_for("notify"))
    try:
        async with engine.connect() as conn:
            result = await conn.execute(text("SELECT * FROM notify_deliveries ORDER BY id"))
            return [dict(row._mapping) for row in result]
    finally:
        await engine.dispose()


# -- pure logic --------------------------------------------------------------------


@pytest.mark.unit
def test_secret_event_bodies_are_checked_without_echoing_the_secret() -> None:
    event = reset_event()
    assert decode_secret_event(json.dumps(event).encode())["secret"] == RESET_CODE
    no_expiry = dict(event, expires_at=None)
    bad_bodies: list[Any] = [
        b"not json",
        b"[]",
        dict(event, secret=""),
        dict(event, recipient="mario@acme.test"),
        dict(event, expires_at="tomorrow"),
        no_expiry,
    ]
    for bad in bad_bodies:
        data = bad if isinstance(bad, bytes) else json.dumps(bad).encode()
        with pytest.raises(ValueError) as err:
            decode_secret_event(data)
        assert RESET_CODE not in str(err.value)
    credentials = decode_secret_event(json.dumps(make_secret_event("credentials_issued")).encode())
    planned = plan_secret(credentials)
    assert planned is not None
    assert (planned.template, planned.recipient, planned.locale) == (
        "credentials_issued",
        "mario.rossi@acme.test",
        "it",
    )
    assert plan_secret(make_secret_event("credentials_issued", locale="fr")) is not None
    assert plan_secret(make_secret_event("something_else")) is None
    assert plan_secret(make_secret_event("credentials_issued", email_address="")) is None


@pytest.mark.unit
def test_expiry_is_shown_on_the_italian_clock() -> None:
    assert format_expiry(EXPIRES_AT, "it") == "02/03/2026 alle 11:15 (ora italiana)"
    assert format_expiry(EXPIRES_AT, "en") == "2 March 2026 at 11:15 (Italian time)"
    assert format_expiry("2026-07-01T10:00:00Z", "it") == "01/07/2026 alle 12:00 (ora italiana)"


# -- the streams ---------------------------------------------------------------------


async def test_the_secrets_stream_keeps_messages_one_hour_at_most(nats_url: str) -> None:
    nc = await connect(nats_url, "test-streams")
    try:
        js = nc.jetstream()
        # The ticket stream as earlier versions created it: ``helpdesk.>`` covered secrets too.
        await js.add_stream(
            StreamConfig(
                name=STREAM, subjects=["helpdesk.>"], duplicate_window=DUPLICATE_WINDOW_SECONDS
            )
        )
        await ensure_secrets_stream(js)
        await ensure_secrets_stream(js)  # idempotent
        info = await js.stream_info(SECRETS_STREAM)
        assert info.config.subjects == SECRET_SUBJECTS == ["helpdesk.secret.>"]
        assert info.config.max_age == SECRETS_MAX_AGE_SECONDS == 3600
        assert info.config.duplicate_window == 600
        # No secret can land in the long-lived ticket stream any more; tickets still do.
        tickets = (await js.stream_info(STREAM)).config
        assert tickets.subjects == SUBJECTS
        assert tickets.duplicate_window == DUPLICATE_WINDOW_SECONDS
        ack = await js.publish(secret_subject("password_reset"), b"{}")
        assert ack.stream == SECRETS_STREAM
        ack = await js.publish("helpdesk.ticket.created", b"{}")
        assert ack.stream == STREAM
        await ensure_stream(js)  # the ticket side's own check still passes
    finally:
        await nc.close()


async def test_the_secrets_stream_may_come_first(nats_url: str) -> None:
    nc = await connect(nats_url, "test-streams")
    try:
        js = nc.jetstream()
        await ensure_secrets_stream(js)
        await ensure_stream(js)
        assert (await js.stream_info(STREAM)).config.subjects == SUBJECTS
        assert (await js.stream_info(SECRETS_STREAM)).config.max_age == 3600
    finally:
        await nc.close()


async def test_an_unrelated_ticket_stream_is_left_alone(nats_url: str) -> None:
    nc = await connect(nats_url, "test-streams")
    try:
        js = nc.jetstream()
        await js.add_stream(StreamConfig(name=STREAM, subjects=["helpdesk.ticket.>", "x.y"]))
        await ensure_secrets_stream(js)
        assert (await js.stream_info(STREAM)).config.subjects == ["helpdesk.ticket.>", "x.y"]
    finally:
        await nc.close()


# -- the service against real servers ----------------------------------------------


@pytest.mark.db
async def test_credentials_email_in_italian_carries_the_password(
    notify: NotifyApp, relay: Relay, secrets: SecretPublisher
) -> None:
    event = make_secret_event("credentials_issued")
    await secrets.publish(event)

    [got] = await wait_for_mail(relay, 1)
    msg = got.message
    assert got.rcpt_tos == ["mario.rossi@acme.test"]
    assert "credenziali" in msg["Subject"] and PASSWORD not in msg["Subject"]
    body = body_of(msg)
    assert "Gentile Mario Rossi" in body
    assert "accedi al portale con questo indirizzo email e questa password" in body
    assert "mario.rossi@acme.test" in body
    assert f"Password: {PASSWORD}" in body
    assert "ti consigliamo di cambiarla" in body
    assert f"Accedi da qui: {PORTAL_URL}/login" in body  # the portal's sign-in page
    assert msg["From"] == MAIL_FROM
    assert msg["Reply-To"] == MAIL_FROM
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["Content-Language"] == "it"
    # Deterministic; long enough to be folded onto its own header line, hence the strip.
    assert str(msg["Message-ID"]).strip() == notification_id(
        notify, event["event_id"], "credentials_issued"
    )
    # Not about a ticket: no ticket thread.
    assert msg["X-Helpdesk-Ticket"] is None and msg["References"] is None


@pytest.mark.db
async def test_credentials_email_in_english_for_an_english_contact(
    notify: NotifyApp, relay: Relay, secrets: SecretPublisher
) -> None:
    await secrets.publish(
        make_secret_event("credentials_issued", locale="en", email_address="john@acme.test")
    )

    [got] = await wait_for_mail(relay, 1)
    assert got.rcpt_tos == ["john@acme.test"]
    assert got.message["Subject"].startswith("Your support portal credentials")
    body = body_of(got.message)
    assert "Dear John Smith" in body
    assert "To see your tickets, log in to the portal with this email address and this" in body
    assert f"Password: {PASSWORD}" in body
    assert "we recommend that you change it" in body
    assert f"Log in here: {PORTAL_URL}/login" in body
    assert got.message["Content-Language"] == "en"


@pytest.mark.db
async def test_password_reset_email_carries_the_code_and_its_expiry(
    notify: NotifyApp, relay: Relay, secrets: SecretPublisher
) -> None:
    await secrets.publish(reset_event())
    await secrets.publish(reset_event(locale="en", email_address="john@acme.test"))

    italian, english = await wait_for_mail(relay, 2)
    body = body_of(italian.message)
    assert RESET_CODE not in italian.message["Subject"]
    assert f"    {RESET_CODE}" in body.splitlines()
    assert "valido fino al 02/03/2026 alle 11:15 (ora italiana)" in body
    assert "Se non hai chiesto tu di reimpostare la password, ignora questo messaggio" in body
    # The portal's reset page, for this address (URL-encoded).
    assert f"{PORTAL_URL}/reset?email=mario.rossi%40acme.test" in body
    en_body = body_of(english.message)
    assert RESET_CODE in en_body
    assert "valid until 2 March 2026 at 11:15 (Italian time)" in en_body
    assert "If you did not ask to reset your password, ignore this message" in en_body
    assert f"open this page and enter the code: {PORTAL_URL}/reset?email=john%40acme.test" in (
        en_body
    )


@pytest.mark.db
async def test_the_delivery_log_keeps_neither_the_password_nor_the_code(
    notify: NotifyApp, relay: Relay, secrets: SecretPublisher
) -> None:
    credentials = make_secret_event("credentials_issued", event_id="secret-ev-1")
    reset = reset_event(event_id="secret-ev-2")
    await secrets.publish(credentials)
    await secrets.publish(reset)
    await wait_for_mail(relay, 2)
    await sent_rows(notify, 2)

    rows = await stored_rows(notify)
    assert len(rows) == 2
    first, second = rows
    assert (first["event_id"], first["event_type"], first["template"]) == (
        "secret-ev-1",
        "credentials_issued",
        "credentials_issued",
    )
    assert (second["event_id"], second["event_type"], second["template"]) == (
        "secret-ev-2",
        "password_reset",
        "password_reset",
    )
    for row in rows:
        assert row["ticket_id"] == 0
        assert row["recipient"] == "mario.rossi@acme.test"
        assert row["status"] == "SENT" and row["attempts"] == 1
        assert row["subject"] and row["locale"] == "it" and row["channel"] == "email"
        assert set(row) >= {"id", "subject", "error", "message_id", "created_at", "sent_at"}
        for column, value in row.items():
            assert PASSWORD not in str(value), f"the password is stored in {column}"
            assert RESET_CODE not in str(value), f"the reset code is stored in {column}"
    assert first["subject"] == relay.handler.received[0].message["Subject"]


@pytest.mark.db
async def test_a_refused_secret_email_logs_the_error_without_the_secret(
    notify: NotifyApp, relay: Relay, secrets: SecretPublisher
) -> None:
    # A relay that quotes the code back in its refusal must not put it in the log.
    relay.handler.refusals["nobody@acme.test"] = [f"550 5.1.1 No such user ({RESET_CODE})"] * 5
    await secrets.publish(reset_event(email_address="nobody@acme.test"))
    await secrets.publish(make_secret_event("credentials_issued"))  # marker, in stream order

    await wait_for_mail(relay, 1)

    async def failed() -> list[dict[str, Any]]:
        for _ in range(int(DEADLINE / 0.05)):
            rows = await stored_rows(notify)
            if rows and rows[0]["status"] == "FAILED":
                return rows
            await asyncio.sleep(0.05)
        pytest.fail("the refused delivery never ended FAILED")

    [refused, *_] = await failed()
    assert "550" in refused["error"] and "No such user" in refused["error"]
    for column, value in refused.items():
        assert RESET_CODE not in str(value), f"the reset code is stored in {column}"


@pytest.mark.db
async def test_the_same_secret_event_twice_sends_one_email(
    notify: NotifyApp, relay: Relay, secrets: SecretPublisher
) -> None:
    event = make_secret_event("credentials_issued", event_id="secret-ev-7")
    assert await secrets.publish(event)
    # The same Nats-Msg-Id again: JetStream's duplicate window drops it.
    assert not await secrets.publish(event)
    # The same event under another Nats-Msg-Id: JetStream cannot drop it, notify must.
    assert await secrets.publish(event, msg_id="secret-ev-7-retry")
    await secrets.publish(reset_event())  # marker: events are handled in stream order

    received = await wait_for_mail(relay, 2)
    await asyncio.sleep(0.3)
    assert len(relay.handler.received) == 2, relay.handler.subjects()
    assert PASSWORD in body_of(received[0].message)
    assert RESET_CODE in body_of(received[1].message)
    rows = await stored_rows(notify)
    assert [r["event_id"] for r in rows].count("secret-ev-7") == 1


@pytest.mark.db
async def test_both_consumers_start_and_stop_together(
    start_notify: Callable[..., Any],
    tmp_path: Path,
    database_url: str,
    nats_url: str,
    relay: Relay,
    secrets: SecretPublisher,
) -> None:
    app: NotifyApp = await start_notify(
        make_settings(tmp_path, database_url, nats_url, relay.address),
        secrets_durable=DURABLE,
    )
    nc = await connect(nats_url, "test-inspect")
    try:
        info = await nc.jetstream().consumer_info(SECRETS_STREAM, "notify-secrets")
        assert info.config.ack_policy == AckPolicy.EXPLICIT
        assert info.config.filter_subject == "helpdesk.secret.>"
    finally:
        await nc.close()

    publisher = EventPublisher(nats_url, "test-tickets")
    try:
        event = make_event("created")
        await publisher.publish(f"helpdesk.ticket.{event['type']}", event["event_id"], dict(event))
        await wait_for_mail(relay, 1)
        await secrets.publish(make_secret_event("credentials_issued"))
        await wait_for_mail(relay, 2)
    finally:
        await publisher.close()
    assert "[#42]" in relay.handler.received[0].message["Subject"]
    assert PASSWORD in body_of(relay.handler.received[1].message)

    tasks = app.consumer_tasks
    # tickets, secrets, mail (intake's events), programming tickets, reports, maintenance, sales
    assert len(tasks) == 7 and not any(t.done() for t in tasks)
    await asyncio.wait_for(app.stop(), DEADLINE)
    assert all(t.done() for t in tasks)
