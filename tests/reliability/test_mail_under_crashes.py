"""Scorecard 2: mails over 8 concurrent SMTP sessions while intake is killed (SIGKILL)
again and again: every mail answered 250 becomes exactly one ticket or comment, and
nothing is left RECEIVED."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from temporalio.client import Client

from helpdesk.v1 import directory_pb2 as dpb
from services.common.embedded import EmbeddedProcess
from tests.reliability.conftest import sized
from tests.reliability.mail import mail, send
from tests.reliability.mail_checks import marks_found, settled_statuses
from tests.support import eventually
from tests.system.conftest import CORE, running_system

pytestmark = [pytest.mark.reliability, pytest.mark.system, pytest.mark.timeout(900)]

SESSIONS = 8


def message(n: int, sender: str, previous: str) -> tuple[str, object]:
    """The n-th mail of the run: new requests, replies, HTML-only, with a file."""
    message_id = f"<rel-{n}-{uuid.uuid4().hex[:8]}@clienti.it>"
    kind = n % 4
    if kind == 1 and previous:
        msg = mail(
            sender,
            "Re: la mia richiesta",
            f"Aggiungo un dettaglio. REL-{n}",
            message_id,
            In_Reply_To=previous,
        )
    else:
        msg = mail(
            sender, f"Problema numero {n}", f"Buongiorno, ho un problema. REL-{n}", message_id
        )
        if kind == 2:
            msg.add_alternative(f"<p>Buongiorno, <b>problema</b>. REL-{n}</p>", subtype="html")
        if kind == 3:
            msg.add_attachment(
                b"log " * 500, maintype="text", subtype="plain", filename=f"log-{n}.txt"
            )
    return message_id, msg


async def test_mail_while_intake_is_killed(
    tmp_path: Path,
    temporal_dev_server: EmbeddedProcess,
    temporal_client: Client,
    nats_url: str,
    database_url: str,
    scorecard: Callable[[str, str], None],
) -> None:
    count = sized(150, least=40)
    async with running_system(tmp_path, temporal_dev_server, nats_url, database_url, CORE) as (
        sut,
        _box,
    ):
        org = await sut.directory().CreateOrganization(
            dpb.CreateOrganizationRequest(name="Clienti Spa", email_domains=["clienti.it"]),
            metadata=sut.metadata,
        )
        stop = asyncio.Event()
        kills = 0

        async def chaos() -> None:
            nonlocal kills
            pause = 0.3  # the first crash comes while the first mails arrive
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), pause)
                if stop.is_set():
                    return
                pause = 2.5
                sut.kill("intake")
                sut.start("intake")
                kills += 1
                await sut.wait_serving("intake")

        def session(k: int) -> int:
            sender = f"utente{k}@clienti.it"
            previous, tries = "", 0
            for n in range(k, count, SESSIONS):
                message_id, msg = message(n, sender, previous)
                tries += send(sut, msg, retry_for=120)  # type: ignore[arg-type]
                previous = message_id
                time.sleep(0.1)  # a mail server's pace, so that crashes land mid-stream
            return tries

        killer = asyncio.create_task(chaos())
        try:
            tries = sum(
                await asyncio.gather(*(asyncio.to_thread(session, k) for k in range(SESSIONS)))
            )
        finally:
            stop.set()
            await killer
        await sut.wait_serving("intake")

        async def all_marked() -> object:
            found = await marks_found(sut, org.id)
            return found if len(found) >= count else None

        found = await eventually(all_marked, timeout=240, every=2)
        assert sorted(found) == list(range(count))
        assert set(found.values()) == {1}, {n: c for n, c in found.items() if c != 1}
        await settled_statuses(tmp_path, database_url, timeout=60)
        assert kills >= 1
        scorecard(
            "mail_under_intake_sigkill",
            f"{count}/{count} mails one ticket or comment each over {SESSIONS} sessions, "
            f"{tries - count} resent after a crash, intake killed {kills}x, 0 left RECEIVED",
        )
