"""The quotes in a report (seed 003): those sent in the period, by what became of them,
with every organisation also per organisation."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from helpdesk.v1 import tickets_pb2 as tpb
from services.tickets import models as m
from services.tickets import quote_money as money
from services.tickets.quote_models import Quote

OUTCOMES = ("ACCEPTED", "DECLINED", "EXPIRED", "SENT")


def _fill(out: tpb.QuoteReport | tpb.QuoteReportRow, counts: Counter[str]) -> None:
    out.sent = sum(counts.values())
    out.accepted = counts["ACCEPTED"]
    out.declined = counts["DECLINED"]
    out.expired = counts["EXPIRED"]
    out.open = counts["SENT"]


async def quote_report(
    session: AsyncSession, org_id: int, start: datetime, end: datetime
) -> tpb.QuoteReport:
    """The quotes of ``org_id`` (0: all) sent in ``[start, end)``."""
    query = select(Quote.organization_id, Quote.status, Quote.net_cents + Quote.vat_cents).where(
        Quote.sent_at >= start, Quote.sent_at < end, Quote.status.in_(OUTCOMES)
    )
    if org_id:
        query = query.where(Quote.organization_id == org_id)
    overall: Counter[str] = Counter()
    per_org: dict[int, Counter[str]] = {}
    accepted_cents = 0
    for organization_id, status, total in await session.execute(query):
        overall[status] += 1
        per_org.setdefault(organization_id, Counter())[status] += 1
        if status == "ACCEPTED":
            accepted_cents += int(total)
    out = tpb.QuoteReport(accepted_total=money.from_cents(accepted_cents))
    _fill(out, overall)
    if not org_id and per_org:
        names = dict(
            (
                await session.execute(
                    select(m.Organization.id, m.Organization.name).where(
                        m.Organization.id.in_(sorted(per_org))
                    )
                )
            ).tuples()
        )
        ranked = sorted(per_org.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
        for oid, counts in ranked:
            row = out.by_organization.add(organization_id=oid, organization_name=names.get(oid, ""))
            _fill(row, counts)
    return out
