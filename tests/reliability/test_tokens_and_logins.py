"""Scorecard 10: forged tokens (a SERVICE or ADMIN role signed with the real signing key,
expired, ``alg=none``, another algorithm) are all UNAUTHENTICATED; 50 concurrent logins
with unknown emails do not stall the help desk (GetTicket keeps answering meanwhile)."""

from __future__ import annotations

import asyncio
import secrets
import statistics
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import grpc
import jwt
import pytest
from temporalio.client import Client

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import tickets_pb2 as tpb
from services.common.auth import bearer_metadata
from services.common.embedded import EmbeddedProcess
from tests.system.conftest import CORE, running_system, setup_directory

pytestmark = [pytest.mark.reliability, pytest.mark.system, pytest.mark.timeout(300)]


def forged(key: str, role: str, *, expired: bool = False, algorithm: str = "HS256") -> str:
    now = int(time.time())
    claims = {
        "sub": f"{role}:0" if role in ("SERVICE", "ADMIN") else "CONTACT:1",
        "typ": "access",
        "role": role,
        "org": 1,
        "name": "forged",
        "iss": "helpdesk",
        "aud": "helpdesk",
        "iat": now - 7200,
        "exp": now - 3600 if expired else now + 3600,
        "jti": secrets.token_hex(8),
    }
    if algorithm == "none":
        return jwt.encode(claims, None, algorithm="none")  # type: ignore[arg-type]
    return jwt.encode(claims, key, algorithm=algorithm)


async def test_forged_tokens_and_a_login_flood(
    tmp_path: Path,
    temporal_dev_server: EmbeddedProcess,
    temporal_client: Client,
    nats_url: str,
    database_url: str,
    scorecard: Callable[[str, str], None],
) -> None:
    key = secrets.token_urlsafe(48)
    async with running_system(
        tmp_path, temporal_dev_server, nats_url, database_url, CORE, HELPDESK_SIGNING_KEY=key
    ) as (sut, _box):
        tickets, md = sut.tickets(), sut.metadata
        _org, contact, _agent = await setup_directory(sut, pb.CLOSED_TICKET_POLICY_FOLLOW_UP)
        ticket = await tickets.CreateTicket(
            tpb.CreateTicketRequest(
                request_id=f"tok-{uuid.uuid4().hex[:6]}",
                subject="Licenza scaduta",
                description="Il programma dice che la licenza è scaduta.",
                requester_id=contact.id,
                channel=pb.CHANNEL_PHONE,
            ),
            metadata=md,
        )
        attempts = {
            "SERVICE signed with the key": forged(key, "SERVICE"),
            "ADMIN signed with the key": forged(key, "ADMIN"),
            "expired": forged(key, "USER", expired=True),
            "alg=none": forged(key, "SERVICE", algorithm="none"),
            "HS512": forged(key, "SERVICE", algorithm="HS512"),
            "another key": forged(secrets.token_urlsafe(48), "SERVICE"),
        }
        refused = 0
        for what, token in attempts.items():
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await tickets.GetTicket(
                    tpb.GetTicketRequest(id=ticket.id), metadata=bearer_metadata(token)
                )
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED, what
            refused += 1

        directory = sut.directory()

        async def unknown_login(source: str, i: int) -> None:
            with pytest.raises(grpc.aio.AioRpcError):
                await directory.Login(
                    dpb.LoginRequest(email=f"nessuno{i}@ignoto.it", password="tentativo-123"),
                    metadata=(("x-forwarded-for", source),),
                )

        async def reads(latencies: list[float], until: Callable[[], bool]) -> None:
            while not until() or len(latencies) < 20:
                began = time.perf_counter()
                await tickets.GetTicket(tpb.GetTicketRequest(id=ticket.id), metadata=md)
                latencies.append(time.perf_counter() - began)
                await asyncio.sleep(0.02)

        def p99(latencies: list[float]) -> float:
            return statistics.quantiles(latencies, n=100)[98]

        async def flood(source: str) -> tuple[list[float], float]:
            """50 unknown-email logins from ``source`` at once, and the reads served
            meanwhile."""
            began = time.perf_counter()
            logins = asyncio.ensure_future(
                asyncio.gather(*(unknown_login(source, i) for i in range(50)))
            )
            during: list[float] = []
            await reads(during, logins.done)
            await logins
            return during, time.perf_counter() - began

        quiet: list[float] = []
        await reads(quiet, lambda: True)
        # A stalled desk waits for the logins' password hashing in one piece (seconds),
        # flood after flood; a working one answers between hashes. One slow read on a
        # shared machine is noise, so a flood whose p99 is over a second is tried again
        # from another address (each address has its own attempt limit), up to three.
        floods: list[tuple[list[float], float]] = []
        for source in ("198.51.100.7", "198.51.100.8", "198.51.100.9"):
            floods.append(await flood(source))
            if p99(floods[-1][0]) < 1.0:
                break
        during, flood_took = floods[-1]
        assert p99(during) < 1.0, "GetTicket p99 during three floods: " + ", ".join(
            f"{p99(d) * 1000:.0f} ms" for d, _ in floods
        )
        scorecard(
            "forged_tokens_and_login_flood",
            f"{refused}/{len(attempts)} forged tokens UNAUTHENTICATED; GetTicket p99 "
            f"{p99(during) * 1000:.0f} ms over {len(during)} reads during 50 unknown-email "
            f"logins ({flood_took:.1f}s), {p99(during) / p99(quiet):.1f}x the quiet p99 "
            f"({p99(quiet) * 1000:.0f} ms); {len(floods)} flood(s)",
        )
