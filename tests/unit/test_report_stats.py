"""The pure figures of ``TicketService.GetReport`` (services/tickets/report_stats.py) and the
survey link tokens (services/common/tokens.py)."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.common.tokens import InvalidToken, TokenSigner
from services.tickets.report_stats import (
    MilestoneFact,
    Outcome,
    TicketFacts,
    count_by,
    median,
    milestone_outcome,
    percentile,
    ranked_hours,
    summarize,
)

pytestmark = pytest.mark.unit

values = st.lists(st.floats(min_value=0, max_value=1e7, allow_nan=False), min_size=1)
quantile = st.floats(min_value=0, max_value=100)


@given(values, quantile)
def test_a_percentile_lies_within_the_values(xs: list[float], q: float) -> None:
    assert min(xs) <= percentile(xs, q) <= max(xs)


@given(values, quantile, quantile)
def test_percentiles_grow_with_q(xs: list[float], q1: float, q2: float) -> None:
    low, high = sorted((q1, q2))
    assert percentile(xs, low) <= percentile(xs, high) + 1e-6


@given(values)
def test_the_50th_percentile_is_the_median_and_order_does_not_matter(xs: list[float]) -> None:
    assert median(xs) == pytest.approx(statistics.median(xs))
    assert percentile(list(reversed(xs)), 90) == percentile(xs, 90)
    assert percentile(xs, 0) == min(xs) and percentile(xs, 100) == max(xs)


def test_percentile_examples() -> None:
    assert percentile([], 90) == 0.0
    assert percentile([7.0], 90) == 7.0
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0], 90) == pytest.approx(9.1)
    assert percentile([900.0, 3900.0], 90) == pytest.approx(3600.0)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


@given(st.lists(st.sampled_from(["EMAIL", "PHONE", "FAX", "", "SMOKE_SIGNAL"])))
def test_count_by_counts_everything_once_in_a_stable_order(items: list[str]) -> None:
    counted = count_by(items, ("PHONE", "EMAIL", "FAX"))
    assert sum(n for _, n in counted) == len(items)
    assert len({k for k, _ in counted}) == len(counted)
    keys = [k for k, _ in counted]
    known = [k for k in keys if k in ("PHONE", "EMAIL", "FAX")]
    assert known == [k for k in ("PHONE", "EMAIL", "FAX") if k in keys]
    if "UNSPECIFIED" in keys:
        assert keys[-1] == "UNSPECIFIED"
    if "SMOKE_SIGNAL" in keys:  # unknown values after the known ones
        assert all(keys.index(k) < keys.index("SMOKE_SIGNAL") for k in known)


T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("due", "reached", "breach", "finished", "outcome"),
    [
        (None, T0, False, False, None),  # not timed for it: not counted
        (T0, T0, False, False, Outcome.MET),  # on the dot is in time
        (T0, T0 + timedelta(seconds=1), False, True, Outcome.BREACHED),
        (T0, T0 - timedelta(hours=1), True, False, Outcome.BREACHED),  # recorded breach wins
        (T0, None, True, True, Outcome.BREACHED),
        (T0, None, False, False, Outcome.OPEN),
        (T0, None, False, True, None),  # closed without reaching it: not counted
    ],
)
def test_milestone_outcomes(
    due: datetime | None,
    reached: datetime | None,
    breach: bool,
    finished: bool,
    outcome: Outcome | None,
) -> None:
    assert milestone_outcome(due, reached, breach, finished) is outcome


def _facts(rating: int | None, hours: float, outcome: Outcome | None, secs: float | None) -> Any:
    return TicketFacts(
        criticality="BLOCKING",
        priority="HIGH",
        channel="EMAIL",
        kind="",
        hours_spent=hours,
        milestones={"TAKEN_IN_CHARGE": MilestoneFact(outcome, secs)},
        rating=rating,
    )


def test_summarize_adds_up() -> None:
    figures = summarize(
        [
            _facts(5, 1.5, Outcome.MET, 60.0),
            _facts(None, 0.25, Outcome.BREACHED, 600.0),
            _facts(2, 0.0, Outcome.OPEN, None),
            _facts(4, 0.0, None, None),
        ],
        criticalities=("CRITICAL", "BLOCKING"),
    )
    assert figures.tickets == 4
    assert figures.by_criticality == [("BLOCKING", 4)]
    assert figures.by_kind == [("UNSPECIFIED", 4)]
    assert figures.hours_spent == 1.75
    assert (figures.satisfaction_count, figures.satisfaction_average) == (3, 3.67)
    taken, feedback, resolution = figures.milestones
    assert (taken.target, taken.met, taken.breached, taken.open, taken.reached) == (
        "TAKEN_IN_CHARGE",
        1,
        1,
        1,
        2,
    )
    assert taken.median_business_seconds == 330.0
    assert taken.p90_business_seconds == pytest.approx(546.0)
    assert (feedback.reached, resolution.met, resolution.median_business_seconds) == (0, 0, 0)


@given(st.lists(st.integers(min_value=1, max_value=5), max_size=30))
def test_the_satisfaction_average_is_between_1_and_5(ratings: list[int]) -> None:
    figures = summarize([_facts(r, 0.0, None, None) for r in ratings])
    assert figures.satisfaction_count == len(ratings)
    if ratings:
        assert 1 <= figures.satisfaction_average <= 5
    else:
        assert figures.satisfaction_average == 0


KEY = "unit-test-signing-key-0123456789abcdef"


def test_survey_tokens_name_their_ticket_and_nothing_else() -> None:
    signer = TokenSigner(KEY)
    token = signer.survey_token(42)
    assert signer.survey_ticket(token) == 42
    with pytest.raises(InvalidToken):
        signer.principal(token)  # not a login token
    with pytest.raises(InvalidToken):
        TokenSigner(KEY + "x").survey_ticket(token)
    with pytest.raises(InvalidToken):
        signer.survey_ticket(signer.survey_token(42, ttl=-1))
    with pytest.raises(InvalidToken):
        signer.survey_ticket(signer.refresh_token("CONTACT", 1, 1))


def test_hours_are_ranked_most_first_and_nothing_spent_is_left_out() -> None:
    assert ranked_hours([(3, 1.0), (1, 2.5), (2, 1.0), (4, 0.0)]) == [(1, 2.5), (2, 1.0), (3, 1.0)]
