"""Scorecard 6: parse bombs (an HTML body that is quadratic to parse, a flat multipart of
tiny parts, a 20,000-address To:) and then normal mails: the bombs end within a minute, and
the normal mails are all processed within a minute, behind them."""

from __future__ import annotations

import asyncio
import smtplib
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from temporalio.client import Client

from helpdesk.v1 import directory_pb2 as dpb
from services.common.embedded import EmbeddedProcess
from tests.reliability.conftest import sized
from tests.reliability.mail import SUPPORT, mail, send
from tests.reliability.mail_checks import marks_found, statuses_of
from tests.support import eventually
from tests.system.conftest import CORE, running_system

pytestmark = [pytest.mark.reliability, pytest.mark.system, pytest.mark.timeout(600)]

SENDER = "bombarolo@bombe.it"


def bombs() -> list[tuple[str, bytes]]:
    """(Message-ID, raw message) of each bomb."""
    made = []

    def head(kind: str, extra: str = "", to: str = SUPPORT) -> tuple[str, str]:
        mid = f"<bomb-{kind}-{uuid.uuid4().hex[:8]}@bombe.it>"
        return mid, (
            f"From: {SENDER}\r\nTo: {to}\r\nSubject: bomba {kind}\r\nMessage-ID: {mid}\r\n"
            f"MIME-Version: 1.0\r\n{extra}"
        )

    mid, text = head("html", "Content-Type: text/html; charset=utf-8\r\n\r\n")
    made.append((mid, text.encode() + b"<a" * (1024 * 1024)))  # 2 MiB of "<a"
    boundary = "b"
    mid, text = head("parts", f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n')
    part = f"--{boundary}\r\nContent-Type: text/plain\r\n\r\nx\r\n".encode()
    made.append((mid, text.encode() + part * 60_000 + f"--{boundary}--\r\n".encode()))
    crowd = ", ".join(f"p{i}@altrove.it" for i in range(20_000))
    mid, text = head("to", "Content-Type: text/plain\r\n\r\n", to=f"{SUPPORT}, {crowd}")
    made.append((mid, text.encode() + b"Tanti destinatari.\r\n"))
    return made


async def test_parse_bombs_do_not_hold_normal_mail(
    tmp_path: Path,
    temporal_dev_server: EmbeddedProcess,
    temporal_client: Client,
    nats_url: str,
    database_url: str,
    scorecard: Callable[[str, str], None],
) -> None:
    normal = sized(50, least=20)
    async with running_system(tmp_path, temporal_dev_server, nats_url, database_url, CORE) as (
        sut,
        _box,
    ):
        org = await sut.directory().CreateOrganization(
            dpb.CreateOrganizationRequest(
                name="Bombe Srl", email_domains=["bombe.it", "normale.it"]
            ),
            metadata=sut.metadata,
        )
        loaded = bombs()
        began = time.monotonic()

        refused: list[str] = []

        def send_all() -> None:
            for mid, raw in loaded:
                try:
                    send(sut, raw, sender=SENDER)
                except smtplib.SMTPResponseException:
                    refused.append(mid)  # refused at the door: ended too
            for n in range(normal):
                send(sut, mail(f"cliente{n % 5}@normale.it", f"Richiesta {n}", f"REL-{n}"))

        await asyncio.to_thread(send_all)

        async def all_normal() -> object:
            found = await marks_found(sut, org.id)
            return found if len(found) >= normal else None

        found = await eventually(all_normal, timeout=120, every=1)
        normal_took = time.monotonic() - began
        assert sorted(found) == list(range(normal)) and set(found.values()) == {1}

        async def bombs_ended() -> object:
            statuses = await statuses_of(tmp_path, database_url, [m for m, _ in loaded])
            statuses.update({m: "REFUSED_AT_SMTP" for m in refused})
            ended = len(statuses) == len(loaded) and "RECEIVED" not in statuses.values()
            return statuses if ended else None

        statuses = await eventually(bombs_ended, timeout=120, every=1)
        bombs_took = time.monotonic() - began
        assert normal_took < 60, f"normal mails took {normal_took:.0f}s"
        assert bombs_took < 60, f"bombs took {bombs_took:.0f}s: {statuses}"
        scorecard(
            "parse_bombs",
            f"{len(loaded)} bombs ended in {bombs_took:.0f}s "
            f"({', '.join(sorted(set(statuses.values())))}); {normal}/{normal} normal mails "
            f"processed in {normal_took:.0f}s",
        )
