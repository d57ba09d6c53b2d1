"""Notify's SMTP mailer against a real relay on loopback: messages one after another share
one kept connection, several at once use one each, a refusal keeps the connection, and a
relay restarted between two messages (its kept connections gone) still gets the second."""

from __future__ import annotations

import asyncio
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from services.common.embedded import free_port
from services.notify.mailer import SendError, SmtpMailer
from tests.services.notify_fixtures import CollectingHandler

pytestmark = pytest.mark.timeout(60)


class CountingHandler(CollectingHandler):
    """Also counts the SMTP sessions (one EHLO each)."""

    sessions = 0

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        self.sessions += 1
        session.host_name = hostname
        return responses


def message(n: int) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "assistenza@helpdesk.test"
    msg["To"] = "mario.rossi@acme.test"
    msg["Subject"] = f"[#{n}] Richiesta ricevuta"
    msg["Message-ID"] = f"<notify.created.t{n}.{n:032x}@helpdesk.test>"
    msg.set_content("Abbiamo ricevuto la sua richiesta.")
    return msg


def relay(handler: CountingHandler, port: int) -> Controller:
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    return controller


async def test_messages_in_turn_share_one_connection_and_at_once_one_each() -> None:
    handler, port = CountingHandler(), free_port()
    controller = relay(handler, port)
    mailer = SmtpMailer(f"127.0.0.1:{port}")
    try:
        for n in range(5):
            await mailer.send(message(n), "assistenza@helpdesk.test", "mario.rossi@acme.test")
        assert handler.subjects() == [f"[#{n}] Richiesta ricevuta" for n in range(5)]
        assert (handler.sessions, mailer.connections_opened) == (1, 1)

        await asyncio.gather(
            *(
                mailer.send(message(n), "assistenza@helpdesk.test", "mario.rossi@acme.test")
                for n in range(5, 8)
            )
        )
        assert len(handler.received) == 8
        assert mailer.connections_opened == 3  # the kept one, and one more for each other
    finally:
        await mailer.close()
        controller.stop()


async def test_a_refused_recipient_keeps_the_connection_for_the_next_message() -> None:
    handler, port = CountingHandler(), free_port()
    handler.refusals["gone@acme.test"] = ["550 5.1.1 no such user"]
    controller = relay(handler, port)
    mailer = SmtpMailer(f"127.0.0.1:{port}")
    try:
        with pytest.raises(SendError) as refused:
            await mailer.send(message(1), "assistenza@helpdesk.test", "gone@acme.test")
        assert refused.value.permanent
        await mailer.send(message(2), "assistenza@helpdesk.test", "mario.rossi@acme.test")
        assert handler.subjects() == ["[#2] Richiesta ricevuta"]
        assert mailer.connections_opened == 1
    finally:
        await mailer.close()
        controller.stop()


async def test_a_relay_restarted_between_two_messages_still_gets_the_second() -> None:
    first, port = CountingHandler(), free_port()
    controller = relay(first, port)
    mailer = SmtpMailer(f"127.0.0.1:{port}")
    try:
        await mailer.send(message(1), "assistenza@helpdesk.test", "mario.rossi@acme.test")
        controller.stop()  # the kept connection is closed by the relay going away
        second = CountingHandler()
        controller = relay(second, port)
        await mailer.send(message(2), "assistenza@helpdesk.test", "mario.rossi@acme.test")
        assert first.subjects() == ["[#1] Richiesta ricevuta"]
        assert second.subjects() == ["[#2] Richiesta ricevuta"]  # once, not twice
        assert mailer.connections_opened == 2
    finally:
        await mailer.close()
        controller.stop()


async def test_a_relay_that_is_down_is_a_temporary_failure() -> None:
    mailer = SmtpMailer(f"127.0.0.1:{free_port()}", timeout=2)
    with pytest.raises(SendError) as down:
        await mailer.send(message(1), "assistenza@helpdesk.test", "mario.rossi@acme.test")
    assert not down.value.permanent
