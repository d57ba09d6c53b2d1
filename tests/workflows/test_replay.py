"""Recorded ticket-workflow histories must keep replaying: a change that breaks
determinism fails here (use ``workflow.patched`` for running tickets)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workflows.worker import WORKFLOWS, workflow_runner

pytestmark = pytest.mark.workflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def _load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem, path.read_text())


def test_histories_are_present() -> None:
    names = {p.stem.rstrip("0123456789").removesuffix("_run").rstrip("_") for p in HISTORIES}
    assert {
        "ticket_full_life",
        "ticket_breaches",
        "ticket_reactivated",
        "ticket_second_level_life",
        "progticket_second_level_life",
        "ticket_business_sla_life",
        "reports_monthly_reports",
        "desk_desk_digest",
        "maintenance_window_life",
        "ticket_quote_life",
        "quote_quote_life",
    } <= names


def _replayer() -> Replayer:
    """A replayer with production's sandbox settings (``workflows.worker``)."""
    return Replayer(workflows=WORKFLOWS, workflow_runner=workflow_runner())


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_recorded_history_replays(path: Path) -> None:
    await _replayer().replay_workflow(_load(path))


async def test_replay_catches_a_nondeterministic_change() -> None:
    """A history whose first activity differs from what the code schedules must not replay."""
    path = next(p for p in HISTORIES if p.stem.startswith("ticket_full_life"))
    history = json.loads(path.read_text())
    scheduled = next(e for e in history["events"] if "activityTaskScheduledEventAttributes" in e)
    scheduled["activityTaskScheduledEventAttributes"]["activityType"]["name"] = "send_fax"
    altered = WorkflowHistory.from_json("ticket-altered", json.dumps(history))
    with pytest.raises(workflow.NondeterminismError):
        await _replayer().replay_workflow(altered)
