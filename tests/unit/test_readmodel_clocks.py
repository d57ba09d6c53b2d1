"""The read model's business-hours clocks, without servers."""

from __future__ import annotations

import dataclasses
import json

import pytest

from helpdesk.v1 import common_pb2 as pb
from services.tickets.readmodel import sla_clocks
from workflows.domain.business_time import SEED_000

pytestmark = pytest.mark.unit


def test_a_clock_recorded_before_it_started_reads_as_not_started() -> None:
    """A change can be recorded before the ticket's workflow starts its clocks (an update
    runs before the run method): the stored clock has no instant yet, and reading it shows
    the whole targets left instead of failing the call."""
    clocks = sla_clocks(
        sla_clock=json.loads(
            json.dumps(
                {
                    "calendar": dataclasses.asdict(SEED_000),
                    "calendar_name": "Seed 000",
                    "plan_name": "Base",
                    "targets": {"TAKEN_IN_CHARGE": 3600, "FIRST_FEEDBACK": 7200, "RESOLUTION": 9},
                    "elapsed": 0.0,
                    "as_of": None,
                    "running": True,
                }
            )
        ),
        status="NEW",
        breaches=[],
        taken_in_charge_due=None,
        taken_in_charge_at=None,
        first_feedback_due=None,
        first_feedback_at=None,
        resolution_due=None,
        solved_at=None,
    )
    assert [c.remaining_business_seconds for c in clocks] == [3600, 7200, 9]
    assert all(c.state != pb.SLA_STATE_BREACHED for c in clocks)
