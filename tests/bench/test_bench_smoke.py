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


@pytest.mark.timeout(240)
def test_quick_run_writes_all_five_scenarios(tmp_path: Path) -> None:
    out = tmp_path / "latest.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out)],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("HELPDESK_")},
        capture_output=True,
        text=True,
        timeout=230,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    by_name = {r["scenario"]: r for r in report["scenarios"]}
    assert set(by_name) == set(SCENARIOS)
    for r in by_name.values():
        for key in ("value", "baseline", "ratio"):
            assert isinstance(r[key], int | float) and math.isfinite(r[key]), (r["scenario"], key)
        assert isinstance(r["unit"], str) and r["unit"]
        assert isinstance(r["params"], dict) and r["params"]
        assert isinstance(r["target_met"], bool)
    assert "| create_ticket" in render(report["scenarios"])
