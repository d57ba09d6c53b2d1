"""Searching tickets, through the real parts: TicketService over gRPC, the ticket workflows
on the Temporal dev server recording comments, and the database's own full-text engine
(SQLite FTS5 here, PostgreSQL's Italian stemmer under ``make test-db``).

What a person checks: words in another form find the ticket ("stampanti" finds "la
stampante"), every caller finds only what they may read (a customer their own tickets, a
referent their organisation's, never an internal note or another organisation's ticket),
the subject weighs more than an answer, hostile queries are just words, and the similar
tickets of a problem put the solved ones first.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
from sqlalchemy import delete
from temporalio.client import Client

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import tickets_pb2 as tpb
from helpdesk.v1 import tickets_pb2_grpc as tgrpc
from services.cli.main import main
from services.common.access import Principal, Role
from services.common.auth import bearer_metadata
from services.common.grpc_server import ServiceServer
from services.common.settings import Settings
from services.common.tokens import TokenSigner
from services.tickets import models as m
from services.tickets.creation import NewTicket
from services.tickets.reindex import reindex
from services.tickets.servicer import TicketServicer
from tests.support import SIGNING_KEY, TicketsStack, eventually, tickets_stack

pytestmark = [pytest.mark.db, pytest.mark.timeout(180)]

SIGNER = TokenSigner(SIGNING_KEY)
FILLER = [
    "Licenza scaduta del gestionale",
    "Richiesta formazione in sede",
    "Backup notturno non completato",
    "Password dimenticata del portale",
    "Aggiornamento listino prezzi",
    "Configurazione casella di posta",
    "Rinnovo contratto di assistenza",
]


@dataclass
class Desk:
    stack: TicketsStack
    tickets: tgrpc.TicketServiceStub
    agent: Any
    mario: Any  # a USER of organisation A
    referent: Any  # organisation A's referent
    other: Any  # a USER of organisation B
    org_a: int
    org_b: int
    ids: dict[str, int]
    address: str  # where the TicketService listens


async def _contact(stack: TicketsStack, org_id: int, name: str, role: str) -> int:
    async with stack.sessions() as session:
        row = m.Contact(
            organization_id=org_id,
            name=name,
            email=f"{uuid.uuid4().hex[:8]}@example.it",
            email_key=uuid.uuid4().hex,
            phone="",
            role=role,
            locale="it",
            created_at=datetime.now(UTC),
        )
        session.add(row)
        await session.commit()
        return row.id


def _md(role: Role, kind: str, id_: int, org: int = 0) -> Any:
    return bearer_metadata(
        SIGNER.access_token(Principal(role=role, kind=kind, id=id_, organization_id=org))
    )


@pytest.fixture
async def desk(temporal_client: Client, database_url: str, nats_url: str) -> AsyncIterator[Desk]:
    settings = dataclasses.replace(
        Settings.from_env(), signing_key=SIGNING_KEY, nats_url=nats_url, service_token="s-token"
    )
    async with tickets_stack(temporal_client, database_url, nats_url) as stack:
        async with stack.sessions() as session:
            other_org = m.Organization(
                name=f"Bianchi Spa {uuid.uuid4().hex[:6]}",
                name_key=uuid.uuid4().hex,
                email_domains=["bianchi.it"],
                closed_ticket_policy="FOLLOW_UP",
                locale="it",
                created_at=datetime.now(UTC),
            )
            session.add(other_org)
            await session.commit()
            org_b = other_org.id
        luisa = await _contact(stack, stack.org_id, "Luisa Verdi", "USER")
        referent = await _contact(stack, stack.org_id, "Paola Neri", "REFERENT")
        stranger = await _contact(stack, org_b, "Gino Bianchi", "USER")

        async def new(subject: str, description: str, requester: int) -> int:
            row, _ = await stack.creator.create(
                NewTicket(
                    request_id=uuid.uuid4().hex,
                    subject=subject,
                    description=description,
                    requester_id=requester,
                    channel="PORTAL",
                    priority="NORMAL",
                )
            )
            return row.id

        mario = stack.contact_id
        ids = {
            "mario": await new(
                "La stampante non stampa le fatture", "Da ieri si blocca a metà pagina.", mario
            ),
            "luisa": await new("Stampanti di rete lente", "Ci mettono minuti a partire.", luisa),
            "note": await new("Il PC del magazzino è lento", "Si avvia in dieci minuti.", luisa),
            "driver": await new("Driver del lettore di badge", "Quale driver installare?", mario),
            "solved": await new("Stampante non stampa", "La stampante si ferma a metà.", luisa),
            "other": await new("La stampante dell'ufficio è ferma", "Non stampa niente.", stranger),
        }
        for i, subject in enumerate(FILLER):
            await new(subject, f"Dettagli della richiesta numero {i}.", luisa)

        def register(server: grpc.aio.Server) -> None:
            tgrpc.add_TicketServiceServicer_to_server(
                TicketServicer(stack.sessions, temporal_client, stack.creator, SIGNER), server
            )

        server = ServiceServer(settings, "127.0.0.1:0", [], register)
        await server.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
        try:
            yield Desk(
                stack,
                tgrpc.TicketServiceStub(channel),
                _md(Role.AGENT, "AGENT", stack.agent_id),
                _md(Role.USER, "CONTACT", mario, stack.org_id),
                _md(Role.REFERENT, "CONTACT", referent, stack.org_id),
                _md(Role.USER, "CONTACT", stranger, org_b),
                stack.org_id,
                org_b,
                ids,
                f"127.0.0.1:{server.port}",
            )
        finally:
            await channel.close(None)
            await server.stop(1)


async def _search(desk: Desk, md: Any, query: str, **filters: Any) -> list[tpb.TicketHit]:
    reply = await desk.tickets.SearchTickets(
        tpb.SearchTicketsRequest(query=query, **filters), metadata=md
    )
    return list(reply.hits)


def _ids(hits: list[tpb.TicketHit]) -> list[int]:
    return [h.ticket.id for h in hits]


async def _comment(desk: Desk, ticket_id: int, body: str, internal: bool) -> None:
    await desk.tickets.AddComment(
        tpb.AddCommentRequest(
            ticket_id=ticket_id,
            body=body,
            visibility=pb.COMMENT_VISIBILITY_INTERNAL if internal else pb.COMMENT_VISIBILITY_PUBLIC,
        ),
        metadata=desk.agent,
    )


async def test_each_caller_finds_only_what_they_may_read(desk: Desk) -> None:
    ids = desk.ids
    await _comment(desk, ids["note"], "Forse è la stampante di rete che satura la linea.", True)
    await _comment(desk, ids["mario"], "Reinstalli il driver della stampante, grazie.", False)

    async def agent_sees_note() -> bool:
        hits = await _search(desk, desk.agent, "stampanti", organization_id=desk.org_a)
        return ids["note"] in _ids(hits)

    await eventually(agent_sees_note, timeout=30)
    # The desk: every ticket of the organisation in any form of the word, notes included.
    hits = await _search(desk, desk.agent, "stampanti", organization_id=desk.org_a)
    assert set(_ids(hits)) == {ids["mario"], ids["luisa"], ids["note"], ids["solved"]}
    by_id = {h.ticket.id: h for h in hits}
    assert by_id[ids["note"]].found_in == "note"
    assert by_id[ids["luisa"]].found_in == "ticket"
    marked = [p.text.lower() for p in by_id[ids["luisa"]].snippet if p.match]
    assert marked and all(w.startswith("stampant") for w in marked)
    # Every organisation for the desk without a filter.
    everywhere = _ids(await _search(desk, desk.agent, "stampante", page_size=50))
    assert ids["other"] in everywhere

    # Mario (a user): his own tickets only; never a colleague's, a note, another company's.
    assert _ids(await _search(desk, desk.mario, "stampanti")) == [ids["mario"]]
    assert _ids(await _search(desk, desk.mario, "driver")) == [ids["driver"], ids["mario"]]
    # The referent: the organisation's tickets, still never the internal note.
    seen = set(_ids(await _search(desk, desk.referent, "stampanti")))
    assert seen == {ids["mario"], ids["luisa"], ids["solved"]}
    assert not {h.found_in for h in await _search(desk, desk.referent, "satura")}
    # Counting (the queues' badges) sees what listing sees.
    everything = tpb.CountTicketsRequest(queries=[tpb.ListTicketsRequest()])
    mine = await desk.tickets.CountTickets(everything, metadata=desk.mario)
    assert list(mine.counts) == [2]  # his two tickets
    ours = await desk.tickets.CountTickets(everything, metadata=desk.referent)
    assert list(ours.counts) == [5 + len(FILLER)]  # organisation A's
    # Organisation B's customer: only their own; asking for A's gives nothing.
    assert _ids(await _search(desk, desk.other, "stampante")) == [ids["other"]]
    assert await _search(desk, desk.other, "stampante", organization_id=desk.org_a) == []


async def test_ranking_filters_and_hostile_queries(desk: Desk) -> None:
    ids = desk.ids
    await _comment(desk, ids["mario"], "Scarichi il driver aggiornato dal sito.", False)

    async def answered() -> bool:
        return ids["mario"] in _ids(await _search(desk, desk.agent, "aggiornato sito"))

    await eventually(answered, timeout=30)
    # The ticket about a driver (in its subject) before the one that mentions it once.
    ranked = _ids(await _search(desk, desk.agent, "driver", organization_id=desk.org_a))
    assert ranked == [ids["driver"], ids["mario"]]
    # Words must all be there.
    assert _ids(await _search(desk, desk.agent, "stampante fatture")) == [ids["mario"]]
    # Filters: the status, and the received date.
    assert {h.ticket.status for h in await _search(desk, desk.agent, "stampante")} == {
        pb.TICKET_STATUS_NEW
    }
    before = tpb.SearchTicketsRequest(query="stampante")
    before.received_before.FromDatetime(datetime(2000, 1, 1, tzinfo=UTC))
    assert list((await desk.tickets.SearchTickets(before, metadata=desk.agent)).hits) == []
    solved = await _search(
        desk, desk.agent, "stampante", statuses=[pb.TICKET_STATUS_SOLVED], page_size=50
    )
    assert solved == []
    # Hostile input is words, never engine syntax: no error, nothing unexpected.
    for query in ['"', "*", "NEAR(", "') OR 1=1 --", "stampante:*", "a AND OR NOT", "^-+"]:
        hits = await _search(desk, desk.mario, query)
        assert set(_ids(hits)) <= {ids["mario"], ids["driver"]}, query
    assert await _search(desk, desk.mario, '"') == []
    # An empty query lists the caller's most recently updated tickets.
    recent = await _search(desk, desk.mario, "")
    assert set(_ids(recent)) == {ids["mario"], ids["driver"]}
    assert _ids(recent)[0] == ids["mario"]  # the last answered
    # Bad input changes nothing and says what is wrong.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _search(desk, desk.agent, "x", page_size=-1)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_similar_tickets_put_the_solved_ones_first(desk: Desk) -> None:
    ids = desk.ids
    await desk.tickets.AssignTicket(
        tpb.AssignTicketRequest(ticket_id=ids["solved"], assignee_id=desk.stack.agent_id),
        metadata=desk.agent,
    )
    await _comment(desk, ids["solved"], "Sostituito il rullo della stampante.", False)
    await desk.tickets.ChangeStatus(
        tpb.ChangeStatusRequest(ticket_id=ids["solved"], status=pb.TICKET_STATUS_SOLVED),
        metadata=desk.agent,
    )

    async def similar() -> list[tpb.TicketHit]:
        reply = await desk.tickets.SimilarTickets(
            tpb.SimilarTicketsRequest(ticket_id=ids["mario"]), metadata=desk.agent
        )
        return list(reply.hits)

    async def solved_first() -> bool:
        hits = await similar()
        return bool(hits) and hits[0].ticket.status == pb.TICKET_STATUS_SOLVED

    await eventually(solved_first, timeout=30)
    hits = await similar()
    assert hits[0].ticket.id == ids["solved"]
    assert ids["mario"] not in _ids(hits)
    assert ids["luisa"] in _ids(hits) and ids["other"] in _ids(hits)
    # Customers do not ask for similar tickets; unknown tickets do not exist.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await desk.tickets.SimilarTickets(
            tpb.SimilarTicketsRequest(ticket_id=ids["mario"]), metadata=desk.mario
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await desk.tickets.SimilarTickets(
            tpb.SimilarTicketsRequest(ticket_id=999_999_999), metadata=desk.agent
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_lost_index_is_rebuilt_by_the_reindex_command(desk: Desk) -> None:
    ids = desk.ids
    async with desk.stack.sessions() as session:
        await session.execute(delete(m.SearchEntry))
        await session.commit()
    assert await _search(desk, desk.agent, "stampanti", organization_id=desk.org_a) == []
    done = await reindex(desk.stack.sessions, batch=4)
    assert done["tickets"] == len(ids) + len(FILLER)
    hits = await _search(desk, desk.agent, "stampanti", organization_id=desk.org_a)
    assert set(_ids(hits)) == {ids["mario"], ids["luisa"], ids["solved"]}


async def test_the_cli_searches_as_the_desk_does(
    desk: Desk,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``helpdesk ticket search`` and ``similar`` against the real service, as an agent."""
    monkeypatch.setenv("HELPDESK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HELPDESK_TICKETS_ADDR", desk.address)
    token = SIGNER.access_token(Principal(role=Role.AGENT, kind="AGENT", id=desk.stack.agent_id))

    async def helpdesk(*argv: str) -> str:
        code = await asyncio.to_thread(main, ["--token", token, *argv])
        captured = capsys.readouterr()
        assert code == 0, captured.err
        return captured.out

    found = await helpdesk("ticket", "search", "stampanti", "--org", str(desk.org_a))
    assert "La stampante non stampa le fatture" in found
    assert "Stampanti di rete lente" in found
    assert "dell'ufficio" not in found  # another organisation's, filtered out
    similar = await helpdesk("ticket", "similar", str(desk.ids["mario"]))
    assert "Stampante non stampa" in similar
    assert "Licenza scaduta" not in similar
