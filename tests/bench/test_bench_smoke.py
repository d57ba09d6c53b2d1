"""The benchmark harness at tiny sizes: it runs end to end and writes every scenario.
Never asserts a speed."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.__main__ import SCENARIOS, render

pytestmark = [pytest.mark.system]

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(480)
def test_quick_run_writes_every_scenario(tmp_path: Path) -> None:
    out = tmp_path / "latest.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out)],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("HELPDESK_")},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output, _ = proc.communicate(timeout=420)
    except subprocess.TimeoutExpired:
        # SIGTERM first: the bench then stops every server and process it started.
        proc.terminate()
        try:
            output, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
        pytest.fail("python -m bench --quick did not finish in 420 s:\n" + output[-3000:])
    assert proc.returncode == 0, output[-3000:]
    report = json.loads(out.read_text())
    by_name = {r["scenario"]: r for r in report["scenarios"]}
    assert set(by_name) == set(SCENARIOS)
    for r in by_name.values():
        for key in ("value", "baseline", "ratio"):
            assert isinstance(r[key], int | float) and math.isfinite(r[key]), (r["scenario"], key)
        assert isinstance(r["unit"], str) and r["unit"]
        assert isinstance(r["params"], dict) and r["params"]
        # None: a figure reported without a target (business_time).
        assert r["target_met"] is None or isinstance(r["target_met"], bool)
    assert by_name["mail_to_ticket"]["details"]["tickets"] > 0
    assert by_name["mail_to_ticket"]["details"]["comments"] > 0
    timers = by_name["open_tickets"]["details"]["sla_timers_sampled"]
    assert timers["with_live_timer"] == timers["tickets"] > 0
    assert "| create_ticket" in render(report["scenarios"])
