"""``python -m bench [--quick | --scale X] [--only NAME ...]``: run the scenarios, print a table
and write ``bench/results/latest.json``."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from bench import harness as h
from bench import scenarios as sc
from bench.infra import log

SCENARIOS = (
    "create_ticket",
    "create_ticket_stack",
    "mail_accept",
    "mail_to_ticket",
    "open_tickets",
    "timer_lateness",
    "auto_close_storm",
    "auto_close_mails",
    "list_tickets",
    "search",
    "business_time",
)
DEFAULT_OUT = Path(__file__).parent / "results" / "latest.json"


def _runners(
    sizes: h.Sizes, work: Path
) -> list[tuple[tuple[str, ...], Callable[[], Awaitable[list[h.Result]]]]]:
    return [
        # First, with no server running: pure CPU in this process.
        (("business_time",), lambda: sc.business_time(work, sizes)),
        (
            ("create_ticket", "create_ticket_stack", "mail_accept", "mail_to_ticket"),
            lambda: sc.create_ticket_and_mail(work, sizes),
        ),
        (("open_tickets", "timer_lateness"), lambda: sc.open_tickets(work, sizes)),
        (("auto_close_storm", "auto_close_mails"), lambda: sc.auto_close_storm(work, sizes)),
        (("list_tickets", "search"), lambda: sc.list_tickets(work, sizes)),
    ]


def render(results: list[h.Result]) -> str:
    rows = [("scenario", "help desk", "bare", "unit", "ratio", "target", "met")]
    for r in results:
        rows.append(
            (
                r["scenario"],
                f"{r['value']:g}",
                f"{r['baseline']:g}",
                r["unit"],
                f"{r['ratio']:g}",
                r["target"],
                {True: "yes", False: "no"}.get(r["target_met"], "-"),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in rows
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


async def run(selected: list[str], sizes: h.Sizes, work: Path) -> list[h.Result]:
    # SIGTERM (a timeout, a CI cancel) cancels the run, so that every server and process it
    # started is stopped on the way out instead of being left behind.
    main_task = asyncio.current_task()
    assert main_task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    results: list[h.Result] = []
    for names, runner in _runners(sizes, work):
        if not set(names) & set(selected):
            continue
        started = time.monotonic()
        log(f"running {', '.join(names)}")
        for r in await runner():
            if r["scenario"] in selected:
                r["seconds"] = round(time.monotonic() - started, 1)
                results.append(r)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="tiny sizes (the smoke test)")
    size.add_argument("--scale", type=float, default=1.0, help="multiply the full sizes")
    parser.add_argument("--only", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument(
        "--issue-sizes",
        action="store_true",
        help=f"open_tickets {h.ISSUE_OPEN_TICKETS} and auto_close_storm "
        f"{h.ISSUE_STORM_TICKETS} (the issue sizes; about twice as long)",
    )
    parser.add_argument("--open-tickets", type=int, help="open_tickets size (the issue's is 10000)")
    parser.add_argument(
        "--storm-tickets", type=int, help="auto_close_storm size (the issue's is 2000)"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = parser.parse_args(argv)
    sizes = h.QUICK if args.quick else h.scaled(h.FULL, args.scale)
    if args.issue_sizes:
        sizes = dataclasses.replace(
            sizes, open_tickets=h.ISSUE_OPEN_TICKETS, storm_tickets=h.ISSUE_STORM_TICKETS
        )
    if args.open_tickets:
        sizes = dataclasses.replace(sizes, open_tickets=args.open_tickets)
    if args.storm_tickets:
        sizes = dataclasses.replace(sizes, storm_tickets=args.storm_tickets)
    work = Path(tempfile.mkdtemp(prefix="helpdesk-bench-"))
    started = time.monotonic()
    try:
        results = asyncio.run(run(args.only, sizes, work))
    except (KeyboardInterrupt, asyncio.CancelledError):
        log("interrupted: everything it started is stopped")
        return 130
    finally:
        if args.keep:
            log(f"logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    report = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": "quick" if args.quick else f"scale {args.scale:g}",
        "sizes": dataclasses.asdict(sizes),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "total_seconds": round(time.monotonic() - started, 1),
        "scenarios": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(render(results))
    print(f"\nwrote {args.out} in {report['total_seconds']}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
