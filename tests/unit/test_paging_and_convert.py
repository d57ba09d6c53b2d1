"""Page tokens and sizes (services/tickets/paging.py); protobuf enums <-> plain names and the
priority a request gets (services/tickets/convert.py)."""

from __future__ import annotations

import re
from datetime import UTC
from types import ModuleType
from typing import Any

import grpc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpdesk.v1 import common_pb2, dev_escalation_pb2, notify_pb2
from services.common.rpc_errors import RpcError
from services.tickets import convert, paging
from workflows.domain.lifecycle import Status

pytestmark = pytest.mark.unit


def assert_invalid(exc: pytest.ExceptionInfo[RpcError], field: str) -> None:
    assert exc.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert re.search(rf"\b{field}\b", exc.value.message), exc.value.message


# -- page tokens and sizes -------------------------------------------------------------


@given(st.integers(min_value=0))
def test_page_token_round_trip(key: int) -> None:
    token = paging.encode(key)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token), f"not URL-safe: {token!r}"
    assert paging.decode(token) == key


def test_empty_token_is_the_first_page() -> None:
    assert paging.decode("") is None


@pytest.mark.parametrize(
    "token", ["garbage", "!!!", "é", "a2luZzo1", paging.encode(7)[:-1] + "*", "azo="]
)
def test_garbage_token_is_invalid_argument(token: str) -> None:
    with pytest.raises(RpcError) as exc:
        paging.decode(token)
    assert_invalid(exc, "page_token")


@given(st.text())
def test_decode_accepts_or_rejects_as_invalid_argument(token: str) -> None:
    # Whatever a caller sends: a key, or INVALID_ARGUMENT naming page_token; nothing else.
    try:
        key = paging.decode(token)
    except RpcError as err:
        assert err.code is grpc.StatusCode.INVALID_ARGUMENT
        assert "page_token" in err.message
    else:
        assert key is None or isinstance(key, int)


@pytest.mark.parametrize(
    "requested, size", [(0, 50), (1, 1), (50, 50), (499, 499), (500, 500), (501, 500), (10**6, 500)]
)
def test_page_size_default_and_cap(requested: int, size: int) -> None:
    assert paging.page_size(requested) == size


@given(
    st.lists(
        st.one_of(
            st.none(),
            st.integers(),
            st.datetimes(timezones=st.just(UTC)),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_ordered_page_token_round_trip(values: list[object]) -> None:
    token = paging.encode_keys("NEXT_DUE:abc", values)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token), f"not URL-safe: {token!r}"
    assert paging.decode_keys(token, "NEXT_DUE:abc", len(values)) == values


def test_an_ordered_token_belongs_to_its_order_and_filters() -> None:
    token = paging.encode_keys("NEXT_DUE:abc", [0, None, 7])
    for scope, count in (("PRIORITY:abc", 3), ("NEXT_DUE:def", 3), ("NEXT_DUE:abc", 4)):
        with pytest.raises(RpcError) as exc:
            paging.decode_keys(token, scope, count)
        assert_invalid(exc, "page_token")
    with pytest.raises(RpcError) as exc:  # an ID-order token is not an ordered one
        paging.decode_keys(paging.encode(5), "NEXT_DUE:abc", 3)
    assert_invalid(exc, "page_token")


def test_negative_page_size_is_rejected() -> None:
    with pytest.raises(RpcError) as exc:
        paging.page_size(-1)
    assert_invalid(exc, "page_size")


# -- enums -------------------------------------------------------------------------------


def enums_of(module: ModuleType) -> list[tuple[str, Any]]:
    return [(name, getattr(module, name)) for name in module.DESCRIPTOR.enum_types_by_name]


ENUMS = [
    pytest.param(enum, id=name)
    for module in (common_pb2, dev_escalation_pb2, notify_pb2)
    for name, enum in enums_of(module)
]


def test_common_enums_are_all_covered() -> None:
    names = {name for name, _ in enums_of(common_pb2)}
    assert {"TicketStatus", "Priority", "Channel", "Criticality"} <= names
    assert len(names) >= 14


@pytest.mark.parametrize("enum", ENUMS)
def test_name_value_round_trip(enum: Any) -> None:
    values = enum.DESCRIPTOR.values
    assert values[0].number == 0 and values[0].name.endswith("_UNSPECIFIED")
    for v in values:
        short = convert.name_of(enum, v.number)
        if v.number == 0:
            assert short == ""
        else:
            assert short and v.name.endswith("_" + short) and not short.startswith("_")
        assert convert.value_of(enum, short) == v.number
        assert convert.name_of(enum, convert.value_of(enum, short)) == short


@pytest.mark.parametrize(
    "enum, value, name",
    [
        (common_pb2.TicketStatus, common_pb2.TICKET_STATUS_ON_HOLD, "ON_HOLD"),
        (common_pb2.Priority, common_pb2.PRIORITY_URGENT, "URGENT"),
        (common_pb2.Channel, common_pb2.CHANNEL_WHATSAPP, "WHATSAPP"),
        (common_pb2.Criticality, common_pb2.CRITICALITY_NON_BLOCKING, "NON_BLOCKING"),
        (common_pb2.TicketKind, common_pb2.TICKET_KIND_CHANGE_REQUEST, "CHANGE_REQUEST"),
        (common_pb2.ClosedTicketPolicy, common_pb2.CLOSED_TICKET_POLICY_FOLLOW_UP, "FOLLOW_UP"),
    ],
)
def test_name_of_strips_the_enum_prefix(enum: Any, value: int, name: str) -> None:
    assert convert.name_of(enum, value) == name
    assert convert.value_of(enum, name) == value


def test_lifecycle_statuses_are_the_proto_statuses() -> None:
    proto = {
        convert.name_of(common_pb2.TicketStatus, v.number)
        for v in common_pb2.TicketStatus.DESCRIPTOR.values
        if v.number
    }
    assert proto == {s.value for s in Status}


# -- priority from criticality (seeds 001, 003) --------------------------------------------


@pytest.mark.parametrize(
    "criticality, requested, priority",
    [
        ("CRITICAL", "", "URGENT"),
        ("BLOCKING", "", "HIGH"),
        ("NON_BLOCKING", "", "NORMAL"),
        ("", "", "NORMAL"),
        ("CRITICAL", "URGENT", "URGENT"),
        ("CRITICAL", "LOW", "LOW"),
        ("BLOCKING", "LOW", "LOW"),
        ("NON_BLOCKING", "HIGH", "HIGH"),
        ("", "HIGH", "HIGH"),
    ],
)
def test_priority_for(criticality: str, requested: str, priority: str) -> None:
    assert convert.priority_for(criticality, requested) == priority


@pytest.mark.parametrize("criticality", ["BLOCKING", "NON_BLOCKING", ""])
def test_urgent_is_reserved_for_critical(criticality: str) -> None:
    with pytest.raises(RpcError) as exc:
        convert.priority_for(criticality, "URGENT")
    assert_invalid(exc, "priority")


def test_every_criticality_gets_a_proto_priority() -> None:
    priorities = {v.name.removeprefix("PRIORITY_") for v in common_pb2.Priority.DESCRIPTOR.values}
    for v in common_pb2.Criticality.DESCRIPTOR.values:
        name = convert.name_of(common_pb2.Criticality, v.number)
        assert convert.priority_for(name, "") in priorities - {"UNSPECIFIED"}
