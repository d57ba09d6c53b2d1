"""The per-row conversions of the list path (services/tickets/convert.py): ``ts`` gives what
``Timestamp.FromDatetime`` gives, ``enum_values`` what ``value_of`` answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given
from hypothesis import strategies as st

from helpdesk.v1 import common_pb2 as pb
from services.tickets.convert import enum_values, ts, value_of

pytestmark = pytest.mark.unit

_ZONES = st.sampled_from([None, UTC, timezone(timedelta(hours=2)), timezone(-timedelta(hours=5))])


@given(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1)), _ZONES)
def test_ts_is_from_datetime(value: datetime, zone: timezone | None) -> None:
    """Naive (read as UTC), aware in any offset, before the epoch, with microseconds."""
    value = value.replace(tzinfo=zone)
    expected = Timestamp()
    expected.FromDatetime(value)
    assert ts(value) == expected


def test_ts_of_nothing_is_nothing() -> None:
    assert ts(None) is None


@pytest.mark.parametrize(
    "enum",
    [
        pb.Channel,
        pb.TicketKind,
        pb.Criticality,
        pb.Priority,
        pb.SupportLevel,
        pb.TicketStatus,
        pb.CloseReason,
        pb.HoldReason,
        pb.SlaTarget,
    ],
)
def test_enum_values_answer_as_value_of(enum: Any) -> None:
    values = enum_values(enum)
    prefix = enum.DESCRIPTOR.values[0].name.removesuffix("UNSPECIFIED")
    names = ["", *(v.name.removeprefix(prefix) for v in enum.DESCRIPTOR.values)]
    assert sorted(values) == sorted(names)
    for name in names:
        assert values[name] == value_of(enum, name)
