"""The console's server-drawn SVG charts: bars proportional to their values, every label
escaped, geometry only (colours are classes: the CSP allows no inline style); and the
dashboard's CSV cannot smuggle a spreadsheet formula."""

from __future__ import annotations

import re

import pytest

from helpdesk.v1 import tickets_pb2 as tpb
from services.gateway.agent.charts import BAR_AREA, Segment, bar_chart, stacked_chart
from services.gateway.agent.dashboard import report_csv

pytestmark = pytest.mark.unit

_WIDTH = re.compile(r'<rect class="[^"]*" x="[\d.]+" y="\d+" width="([\d.]+)"')


def widths(svg: str) -> list[float]:
    return [float(w) for w in _WIDTH.findall(svg)]


def test_bars_are_proportional_to_their_values() -> None:
    svg = str(bar_chart("Tickets", [("Critical", 10), ("Blocking", 5), ("Non-blocking", 0)]))
    assert widths(svg) == [BAR_AREA, BAR_AREA / 2, 0.0]
    assert svg.startswith('<svg class="chart"') and 'role="img"' in svg
    assert "style=" not in svg and "<script" not in svg


def test_all_zero_draws_no_bar_and_no_division() -> None:
    assert widths(str(bar_chart("Nothing", [("A", 0), ("B", 0)]))) == [0.0, 0.0]
    assert "<svg" in str(bar_chart("Empty", []))


def test_labels_and_title_are_escaped() -> None:
    svg = str(bar_chart('<b>"x"</b>', [("<script>alert(1)</script> & co", 3)], unit="<h>"))
    assert "<script>" not in svg and "<b>" not in svg and "<h>" not in svg
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in svg
    assert "<title>&lt;b&gt;&quot;x&quot;&lt;/b&gt;</title>" in svg


def test_stacked_segments_add_up_along_the_longest_total() -> None:
    svg = str(
        stacked_chart(
            "SLA",
            [
                ("Taken in charge", [Segment("met", 6, "Met"), Segment("breached", 2, "B")]),
                ("Resolution", [Segment("met", 2, "Met"), Segment("open", 2, "<o>")]),
            ],
        )
    )
    assert widths(svg) == [BAR_AREA * 6 / 8, BAR_AREA * 2 / 8, BAR_AREA * 2 / 8, BAR_AREA * 2 / 8]
    assert 'class="seg seg-breached"' in svg and "&lt;o&gt;" in svg


def test_the_report_csv_defuses_formulas() -> None:
    report = tpb.Report(organization_name='=HYPERLINK("http://x")', tickets_received=3)
    report.hours_by_agent.add(name="+Mario", hours=1.5)
    body = report_csv(report)
    assert body.splitlines()[0] == "section,key,value"
    assert "'=HYPERLINK" in body and "'+Mario" in body
    assert "tickets,received,3" in body
