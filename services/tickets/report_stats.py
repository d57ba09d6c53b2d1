"""The figures of ``TicketService.GetReport`` from plain facts (pure: no I/O, no clock).

Seed 002 asks for "a report of the calls, split by severity"; the service levels add SLA compliance
per milestone, business times to each milestone, hours spent and satisfaction.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

MILESTONES = ("TAKEN_IN_CHARGE", "FIRST_FEEDBACK", "RESOLUTION")
UNSPECIFIED = "UNSPECIFIED"


class Outcome(StrEnum):
    MET = "MET"
    BREACHED = "BREACHED"
    OPEN = "OPEN"


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation between closest ranks (the
    "inclusive" definition: ``percentile(v, 50)`` is the median); 0.0 for no values."""
    if not 0 <= q <= 100 or math.isnan(q):
        raise ValueError(f"percentile: q must be within 0 and 100, got {q}")
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    fraction = rank - low
    return ordered[low] + (ordered[high] - ordered[low]) * fraction


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def milestone_outcome(
    due: datetime | None, reached_at: datetime | None, breach_recorded: bool, finished: bool
) -> Outcome | None:
    """Met, breached or open; None when it is not counted: no due time (the ticket was not
    timed for it), or a finished (CLOSED) ticket that never reached it nor breached it."""
    if due is None:
        return None
    if breach_recorded or (reached_at is not None and reached_at > due):
        return Outcome.BREACHED
    if reached_at is not None:
        return Outcome.MET
    return None if finished else Outcome.OPEN


@dataclass(frozen=True)
class MilestoneFact:
    """One milestone of one ticket: its outcome and, when reached, the business seconds
    from the ticket's arrival to it."""

    outcome: Outcome | None
    business_seconds: float | None = None


@dataclass(frozen=True)
class TicketFacts:
    criticality: str
    priority: str
    channel: str
    kind: str
    hours_spent: float
    milestones: dict[str, MilestoneFact]
    rating: int | None = None


@dataclass
class MilestoneFigures:
    target: str
    met: int = 0
    breached: int = 0
    open: int = 0
    reached: int = 0
    median_business_seconds: float = 0.0
    p90_business_seconds: float = 0.0


@dataclass
class ReportFigures:
    tickets: int = 0
    by_criticality: list[tuple[str, int]] = field(default_factory=list)
    by_priority: list[tuple[str, int]] = field(default_factory=list)
    by_channel: list[tuple[str, int]] = field(default_factory=list)
    by_kind: list[tuple[str, int]] = field(default_factory=list)
    milestones: list[MilestoneFigures] = field(default_factory=list)
    hours_spent: float = 0.0
    satisfaction_average: float = 0.0
    satisfaction_count: int = 0


def count_by(values: Iterable[str], order: Sequence[str] = ()) -> list[tuple[str, int]]:
    """``(value, count)`` for every value seen: those of ``order`` first in that order, then
    the others alphabetically; an empty value counts as ``UNSPECIFIED`` (last)."""
    counts = Counter(v or UNSPECIFIED for v in values)
    rank = {name: i for i, name in enumerate(order)}
    keys = sorted(counts, key=lambda k: (k == UNSPECIFIED, k not in rank, rank.get(k, 0), k))
    return [(k, counts[k]) for k in keys]


def summarize(
    facts: Iterable[TicketFacts],
    *,
    criticalities: Sequence[str] = (),
    priorities: Sequence[str] = (),
    channels: Sequence[str] = (),
    kinds: Sequence[str] = (),
) -> ReportFigures:
    """Every figure of the report over ``facts`` (the tickets received in the period)."""
    items = list(facts)
    figures = ReportFigures(
        tickets=len(items),
        by_criticality=count_by((f.criticality for f in items), criticalities),
        by_priority=count_by((f.priority for f in items), priorities),
        by_channel=count_by((f.channel for f in items), channels),
        by_kind=count_by((f.kind for f in items), kinds),
        hours_spent=round(math.fsum(f.hours_spent for f in items), 2),
    )
    for target in MILESTONES:
        row = MilestoneFigures(target)
        durations: list[float] = []
        for f in items:
            fact = f.milestones.get(target)
            if fact is None:
                continue
            if fact.outcome is Outcome.MET:
                row.met += 1
            elif fact.outcome is Outcome.BREACHED:
                row.breached += 1
            elif fact.outcome is Outcome.OPEN:
                row.open += 1
            if fact.business_seconds is not None:
                durations.append(fact.business_seconds)
        row.reached = len(durations)
        row.median_business_seconds = median(durations)
        row.p90_business_seconds = percentile(durations, 90)
        figures.milestones.append(row)
    ratings = [f.rating for f in items if f.rating is not None]
    figures.satisfaction_count = len(ratings)
    figures.satisfaction_average = round(sum(ratings) / len(ratings), 2) if ratings else 0.0
    return figures


def ranked_hours(sums: Iterable[tuple[int, float]]) -> list[tuple[int, float]]:
    """Hours per key, most first (ties: the lower key first); nothing for none spent."""
    return sorted(((k, h) for k, h in sums if h > 0), key=lambda kh: (-kh[1], kh[0]))
