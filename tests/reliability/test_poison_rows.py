"""Scorecard 7: the tickets service answers INTERNAL to every mail of one sender (poison
rows); the other senders' mails are not delayed, and the poison rows end in a final status
after a few attempts instead of being retried for ever."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from temporalio.client import Client

from helpdesk.v1 import directory_pb2 as dpb
from services.common.embedded import EmbeddedProcess
from tests.reliability.conftest import sized
from tests.reliability.fault_proxy import PoisonProxy
from tests.reliability.mail import mail, send
from tests.reliability.mail_checks import marks_found, settled_statuses
from tests.support import eventually
from tests.system.conftest import running_system

pytestmark = [pytest.mark.reliability, pytest.mark.system, pytest.mark.timeout(600)]

MARKER = "VELENO-7f3a"


async def test_poison_rows_do_not_delay_other_senders(
    tmp_path: Path,
    temporal_dev_server: EmbeddedProcess,
    temporal_client: Client,
    nats_url: str,
    database_url: str,
    scorecard: Callable[[str, str], None],
) -> None:
    poison, normal = sized(20, least=10), sized(40, least=20)
    async with running_system(
        tmp_path, temporal_dev_server, nats_url, database_url, ("tickets", "notify", "worker")
    ) as (sut, _box):
        proxy = PoisonProxy(
            sut.env["HELPDESK_TICKETS_ADDR"],
            MARKER.encode(),
            frozenset({"CreateTicket", "AddComment"}),
        )
        await proxy.start()
        try:
            # Retries 1 s, 2 s, 4 s, 8 s apart: the five attempts in seconds, not minutes.
            sut.start(
                "intake", HELPDESK_TICKETS_ADDR=proxy.address, HELPDESK_INTAKE_RETRY_BASE="1s"
            )
            await sut.wait_serving("intake")
            org = await sut.directory().CreateOrganization(
                dpb.CreateOrganizationRequest(name="Veleni Srl", email_domains=["veleni.it"]),
                metadata=sut.metadata,
            )

            def flood() -> None:
                for n in range(poison):
                    send(sut, mail("avvelenatore@veleni.it", f"{MARKER} {n}", f"{MARKER} n. {n}"))

            await asyncio.to_thread(flood)
            began = time.monotonic()

            def others() -> None:
                for n in range(normal):
                    send(sut, mail(f"cliente{n % 5}@veleni.it", f"Richiesta {n}", f"REL-{n}"))

            await asyncio.to_thread(others)

            async def all_normal() -> object:
                found = await marks_found(sut, org.id)
                return found if len(found) >= normal else None

            found = await eventually(all_normal, timeout=120, every=1)
            took = time.monotonic() - began
            assert sorted(found) == list(range(normal)) and set(found.values()) == {1}

            statuses = await settled_statuses(tmp_path, database_url, timeout=240)
            assert statuses.get("FAILED", 0) == poison, statuses
            assert took < 60, f"normal mails took {took:.0f}s behind the poison rows"
            scorecard(
                "poison_rows",
                f"{normal}/{normal} normal mails processed in {took:.0f}s behind {poison} poison "
                f"mails; poison ended FAILED after {proxy.refused} refused calls "
                f"({proxy.refused / poison:.1f} attempts each)",
            )
        finally:
            await proxy.stop()
