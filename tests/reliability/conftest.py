"""The reliability scorecard: each scenario records ``scorecard: <name> <figure>``, printed
together at the end of the run (``tests/conftest.py`` gathers them from every worker)."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

# Scenario sizes: the full sizes under `make reliability`, a fraction in `make test`.
SCALE = float(os.environ.get("HELPDESK_RELIABILITY_SCALE", "0.2"))


def sized(full: int, least: int = 1) -> int:
    return max(least, round(full * SCALE))


@pytest.fixture
def scorecard(record_property: Callable[[str, object], None]) -> Callable[[str, str], None]:
    """``scorecard(name, figure)``: one line of the scorecard."""

    def record(name: str, figure: str) -> None:
        line = f"scorecard: {name} {figure}"
        print(line)
        record_property("scorecard", line)

    return record
