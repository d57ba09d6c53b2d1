"""``python -m bench.bare_list PORT DATABASE_URL``: the list baseline's server, a process of its
own as the tickets service is: a bare gRPC server (grpc.aio, loopback, no interceptors) with one
generic unary method that runs the plain SQL of ListTickets' first page through the same driver
(aiosqlite, asyncpg) and builds the same protobuf page (``ListTicketsResponse`` of ``Ticket``
messages) straight from the row's columns: no ORM, no access rules, no joined names, no clocks
computed (each SLA clock is its target and its stored due instant)."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import tickets_pb2 as tpb

SERVICE = "bench.BareList"
METHOD = f"/{SERVICE}/ListTickets"
PAGE = 50  # ListTickets' default page, read with one more row to tell whether one follows


def _enum(enum: Any) -> dict[str, Any]:
    """Plain names (``OPEN``) to numbers, from the enum's own names (``TICKET_STATUS_OPEN``)."""
    prefix = enum.DESCRIPTOR.values[0].name[: -len("UNSPECIFIED")]
    values = {name[len(prefix) :]: number for name, number in enum.items()}
    values[""] = 0
    return values


CHANNEL = _enum(pb.Channel)
KIND = _enum(pb.TicketKind)
CRITICALITY = _enum(pb.Criticality)
PRIORITY = _enum(pb.Priority)
LEVEL = _enum(pb.SupportLevel)
STATUS = _enum(pb.TicketStatus)
STATUS_NAME = {number: name for name, number in STATUS.items() if number}
CLOSE_REASON = _enum(pb.CloseReason)
HOLD_REASON = _enum(pb.HoldReason)
TARGET = _enum(pb.SlaTarget)


def _ts(value: Any) -> Timestamp | None:
    if value is None:
        return None
    if isinstance(value, str):  # SQLite: the naive UTC text SQLAlchemy stored
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def ticket(r: Any) -> pb.Ticket:
    """One ``Ticket`` from a ``SELECT *`` row (sqlite3.Row or asyncpg.Record)."""
    return pb.Ticket(
        id=r["id"],
        subject=r["subject"],
        description=r["description"],
        organization_id=r["organization_id"],
        requester_id=r["requester_id"],
        channel=CHANNEL[r["channel"]],
        kind=KIND[r["kind"] or ""],
        product=r["product"],
        version=r["version"],
        os=r["os"],
        criticality=CRITICALITY[r["criticality"] or ""],
        priority=PRIORITY[r["priority"]],
        level=LEVEL[r["level"] or ""],
        assignee_id=r["assignee_id"] or 0,
        status=STATUS[r["status"]],
        milestones=pb.Milestones(
            received_at=_ts(r["received_at"]),
            taken_in_charge_at=_ts(r["taken_in_charge_at"]),
            first_feedback_at=_ts(r["first_feedback_at"]),
            solved_at=_ts(r["solved_at"]),
            closed_at=_ts(r["closed_at"]),
        ),
        sla=[
            pb.SlaClock(target=TARGET["TAKEN_IN_CHARGE"], due_at=_ts(r["taken_in_charge_due"])),
            pb.SlaClock(target=TARGET["FIRST_FEEDBACK"], due_at=_ts(r["first_feedback_due"])),
            pb.SlaClock(target=TARGET["RESOLUTION"], due_at=_ts(r["resolution_due"])),
        ],
        sla_breached=bool(r["sla_breached"]),
        follow_up_of=r["follow_up_of"] or 0,
        close_reason=CLOSE_REASON[r["close_reason"] or ""],
        auto_close_at=_ts(r["auto_close_at"]),
        phone=r["phone"],
        callback_number=r["callback_number"],
        attachments_requested_by_email=bool(r["attachments_requested_by_email"]),
        reopen_count=r["reopen_count"],
        updated_at=_ts(r["updated_at"]),
        awaiting_verification=bool(r["awaiting_verification"]),
        hours_spent=r["hours_spent"],
        hold_reason=HOLD_REASON[r["hold_reason"] or ""],
        third_party_name=r["third_party_name"],
        third_party_reference=r["third_party_reference"],
        merged_into=r["merged_into"] or 0,
        next_due_at=_ts(r["next_due_at"]),
        next_due_target=TARGET[r["next_due_target"] or ""],
    )


Query = Callable[[int, list[str]], Awaitable[list[Any]]]


async def connect(url: str) -> tuple[Query, Callable[[], Awaitable[None]]]:
    """The page's plain SQL on one connection of the same driver as the service's."""
    if url.startswith("sqlite"):
        import aiosqlite

        conn = await aiosqlite.connect(url.split("///", 1)[1])
        conn.row_factory = aiosqlite.Row

        async def sqlite_query(org: int, statuses: list[str]) -> list[Any]:
            marks = ", ".join("?" * len(statuses))
            sql = (
                f"SELECT * FROM tickets WHERE organization_id = ? AND status IN ({marks}) "
                f"ORDER BY id DESC LIMIT {PAGE + 1}"
            )
            async with conn.execute(sql, (org, *statuses)) as cur:
                return list(await cur.fetchall())

        return sqlite_query, conn.close
    import asyncpg  # type: ignore[import-untyped]

    pg = await asyncpg.connect(url)
    pg_sql = (
        "SELECT * FROM tickets WHERE organization_id = $1 AND status = ANY($2::varchar[]) "
        f"ORDER BY id DESC LIMIT {PAGE + 1}"
    )

    async def pg_query(org: int, statuses: list[str]) -> list[Any]:
        return list(await pg.fetch(pg_sql, org, statuses))

    return pg_query, pg.close


async def serve(port: int, url: str) -> None:
    query, close = await connect(url)

    async def list_tickets(request: tpb.ListTicketsRequest, context: Any) -> Any:
        rows = await query(request.organization_id, [STATUS_NAME[s] for s in request.statuses])
        reply = tpb.ListTicketsResponse(tickets=[ticket(r) for r in rows[:PAGE]])
        if len(rows) > PAGE:
            reply.next_page_token = str(rows[PAGE - 1]["id"])
        return reply

    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                SERVICE,
                {
                    "ListTickets": grpc.unary_unary_rpc_method_handler(
                        list_tickets,
                        request_deserializer=tpb.ListTicketsRequest.FromString,
                        response_serializer=tpb.ListTicketsResponse.SerializeToString,
                    )
                },
            ),
        )
    )
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(1)
    await close()


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not argv[0].isdigit():
        print("usage: python -m bench.bare_list PORT DATABASE_URL", file=sys.stderr)
        return 2
    asyncio.run(serve(int(argv[0]), argv[1]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
