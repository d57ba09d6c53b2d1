"""Configuration durations (``HELPDESK_AUTO_CLOSE_AFTER=14d``) and their words in it / en."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workflows.domain.durations import format_duration, parse_duration

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "text, expected",
    [
        ("14d", timedelta(days=14)),
        ("12h", timedelta(hours=12)),
        ("30m", timedelta(minutes=30)),
        ("20s", timedelta(seconds=20)),
        ("1d12h", timedelta(hours=36)),
        ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        (" 14d ", timedelta(days=14)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "   ", "0s", "0d0h", "14x", "-1d", "d14", "14", "1.5d", "14 days"]
)
def test_parse_duration_rejects_with_the_text(text: str) -> None:
    with pytest.raises(ValueError) as exc:
        parse_duration(text)
    assert repr(text) in str(exc.value)


@pytest.mark.parametrize(
    "text",
    ["1000000000d", "9999999999999999999999s", pytest.param("1" * 5000 + "s", id="5000-digits")],
)
def test_parse_duration_rejects_out_of_range_with_the_text(text: str) -> None:
    with pytest.raises(ValueError) as exc:
        parse_duration(text)
    assert repr(text) in str(exc.value)


@given(st.text(alphabet="0123456789dhmsx -.", max_size=8))
def test_parse_duration_is_total(text: str) -> None:
    # Any setting: a positive duration, or ValueError naming the text; nothing else.
    try:
        result = parse_duration(text)
    except ValueError as err:
        assert repr(text) in str(err)
    else:
        assert result > timedelta(0)


UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


@given(
    st.dictionaries(
        st.sampled_from(list(UNITS)), st.integers(min_value=1, max_value=900), min_size=1
    ),
    st.booleans(),
)
def test_parse_round_trip(parts: dict[str, int], spaced: bool) -> None:
    ordered = [(unit, parts[unit]) for unit in UNITS if unit in parts]
    text = (" " if spaced else "").join(f"{n}{unit}" for unit, n in ordered)
    expected = timedelta(seconds=sum(n * UNITS[unit] for unit, n in ordered))
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "delta, it, en",
    [
        (timedelta(days=1), "1 giorno", "1 day"),
        (timedelta(days=14), "14 giorni", "14 days"),
        (timedelta(hours=1), "1 ora", "1 hour"),
        (timedelta(hours=2), "2 ore", "2 hours"),
        (timedelta(minutes=1), "1 minuto", "1 minute"),
        (timedelta(minutes=30), "30 minuti", "30 minutes"),
        (timedelta(seconds=1), "1 secondo", "1 second"),
        (timedelta(seconds=20), "20 secondi", "20 seconds"),
        (timedelta(days=1, hours=12), "1 giorno e 12 ore", "1 day and 12 hours"),
        (timedelta(0), "0 secondi", "0 seconds"),
    ],
)
def test_format_duration(delta: timedelta, it: str, en: str) -> None:
    assert format_duration(delta, "it") == it
    assert format_duration(delta, "en") == en


def test_format_duration_is_italian_by_default() -> None:
    assert format_duration(timedelta(days=14)) == "14 giorni"
