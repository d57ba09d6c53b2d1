"""``helpdesk report``: parsing, the request it builds, the table and the CSV (no servers)."""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path

import pytest

from helpdesk.v1 import common_pb2, tickets_pb2
from services.cli import report
from tests.unit.cli_helpers import one_call, parse, parse_error

pytestmark = pytest.mark.unit


def _report() -> tickets_pb2.Report:
    r = tickets_pb2.Report(
        organization_id=3,
        organization_name="Rossi Srl",
        tickets_received=3,
        by_criticality=[
            tickets_pb2.ReportCount(key="CRITICAL", count=1),
            tickets_pb2.ReportCount(key="BLOCKING", count=2),
        ],
        by_channel=[tickets_pb2.ReportCount(key="EMAIL", count=3)],
        milestones=[
            tickets_pb2.MilestoneReport(
                target=common_pb2.SLA_TARGET_TAKEN_IN_CHARGE,
                met=2,
                breached=1,
                reached=3,
                median_business_seconds=3900,
                p90_business_seconds=7260,
            ),
            tickets_pb2.MilestoneReport(target=common_pb2.SLA_TARGET_RESOLUTION, open=3),
        ],
        hours_spent=2.25,
        satisfaction_average=3.5,
        satisfaction_count=2,
        quotes=tickets_pb2.QuoteReport(
            sent=3, accepted=1, declined=1, open=1, accepted_total="915.00"
        ),
    )
    r.period_start.FromDatetime(datetime(2026, 11, 1).astimezone())
    r.period_end.FromDatetime(datetime(2026, 12, 1).astimezone())
    return r


def test_report_parses_days_and_options() -> None:
    args = parse("report", "--org", "3", "--from", "2026-11-01", "--to", "2026-11-30")
    assert args.org == 3 and args.csv is None
    request = report.report_request(args)
    assert request.organization_id == 3
    # Local days, both included: the period ends at the start of 1 December.
    assert datetime(2026, 11, 1).astimezone().timestamp() == request.period_start.seconds
    assert datetime(2026, 12, 1).astimezone().timestamp() == request.period_end.seconds
    all_orgs = report.report_request(parse("report", "--from", "2026-11-01", "--to", "2026-11-01"))
    assert all_orgs.organization_id == 0
    assert all_orgs.period_end.seconds - all_orgs.period_start.seconds in (82800, 86400, 90000)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("report", "--to", "2026-11-30"), "--from"),
        (("report", "--from", "2026-11-01"), "--to"),
        (("report", "--from", "1/11/2026", "--to", "2026-11-30"), "not a date"),
        (("report", "--org", "0", "--from", "2026-11-01", "--to", "2026-11-30"), "positive"),
    ],
)
def test_report_refuses_bad_arguments(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], message: str
) -> None:
    assert message in parse_error(capsys, *argv)


def test_report_calls_get_report_and_prints_a_table(tmp_path: Path) -> None:
    target = tmp_path / "report.csv"
    args = parse("report", "--from", "2026-11-01", "--to", "2026-11-30", "--csv", str(target))
    method, request = one_call(args, _report())
    assert method == "GetReport" and request.organization_id == 0
    text = report.report(_Answer(_report()), args).text  # type: ignore[arg-type]
    assert "Report: Rossi Srl (3), tickets received 2026-11-01 .. 2026-11-30" in text
    assert "Tickets received: 3" in text
    assert "TAKEN_IN_CHARGE  2    1         0     3        1h05m   2h01m" in text
    assert "RESOLUTION       0    0         3     0        -       -" in text
    assert "Hours spent: 2.25" in text and "Satisfaction: 3.50 / 5 (2 answers)" in text
    assert "Quotes: 3 sent, 1 accepted (915.00 EUR), 1 declined, 0 expired, 1 open" in text
    rows = list(csv.reader(target.open(encoding="utf-8")))
    assert rows[0] == ["section", "key", "value"]
    assert ["criticality", "BLOCKING", "2"] in rows
    assert ["sla TAKEN_IN_CHARGE", "median_business_seconds", "3900"] in rows
    assert ["satisfaction", "average", "3.50"] in rows
    assert ["quotes", "accepted_total_eur", "915.00"] in rows


class _Answer:
    """A client whose every call answers ``reply``."""

    def __init__(self, reply: object) -> None:
        self.reply = reply
        self.tickets = self

    def __getattr__(self, name: str) -> str:
        return name

    def call(self, method: str, request: object) -> object:
        return self.reply


def test_business_durations_read_as_hours_and_minutes() -> None:
    assert report.business_duration(0) == "0m"
    assert report.business_duration(59) == "1m"
    assert report.business_duration(3900) == "1h05m"
    assert report.business_duration(36300) == "10h05m"


def test_report_by_email_needs_one_organisation() -> None:
    args = parse("report", "--org", "3", "--from", "2026-11-01", "--to", "2026-11-30", "--email")
    request = report.send_request(args)
    assert request.organization_id == 3 and request.request_id.startswith("cli-3-")
    assert request.period_end.seconds - request.period_start.seconds == 30 * 86400
    with pytest.raises(report.CliError, match="--org"):
        report.send_request(
            parse("report", "--from", "2026-11-01", "--to", "2026-11-30", "--email")
        )
