"""The converter's cached type hints: payloads decode to the same values, and each
dataclass's hints are resolved once however many payloads name it."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest
from temporalio.converter import DataConverter

from services.common import payload_types
from workflows.contracts import (
    ActorRef,
    CommentData,
    CommentInput,
    SlaTargets,
    TicketState,
    TicketWorkflowInput,
)

pytestmark = [pytest.mark.unit]


def _input() -> TicketWorkflowInput:
    state = TicketState(
        ticket_id=7,
        subject="La stampante non stampa",
        organization_id=3,
        organization_name="Rossi Srl",
        requester_id=11,
        priority="HIGH",
        status="NEW",
        received_at=datetime(2026, 12, 3, 9, 30, tzinfo=UTC),
        sla=SlaTargets(3600, 7200),
        auto_close_after_seconds=1_209_600,
    )
    return TicketWorkflowInput(state=state, start="new")


def test_payloads_decode_to_the_same_values_with_the_cache(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    converter = DataConverter.default.payload_converter
    values: list[Any] = [
        _input(),
        CommentInput(
            comment=CommentData(
                id="c1", visibility="PUBLIC", author=ActorRef("CONTACT", 11), body="Grazie"
            )
        ),
    ]
    types = [type(v) for v in values]
    payloads = converter.to_payloads(values)
    before = converter.from_payloads(payloads, types)
    calls: list[Any] = []
    real = payload_types._resolve

    def counting(hint: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        calls.append(hint)
        return real(hint, *args, **kwargs)

    monkeypatch.setattr(payload_types, "_resolve", counting)
    payload_types._cached.cache_clear()
    payload_types.cache_type_hints()
    for _ in range(5):
        assert converter.from_payloads(payloads, types) == before == values
    # Each dataclass in the payloads resolved once, not once per payload.
    assert len(calls) == len(set(calls))
    assert {TicketWorkflowInput, TicketState, CommentInput, CommentData} <= set(calls)


def test_a_caller_changing_its_hints_does_not_change_the_cache() -> None:
    payload_types._cached.cache_clear()
    first = payload_types.cached_type_hints(SlaTargets)
    first["taken_in_charge_seconds"] = str
    assert payload_types.cached_type_hints(SlaTargets)["taken_in_charge_seconds"] is int
    assert dataclasses.is_dataclass(SlaTargets)
