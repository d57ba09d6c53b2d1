"""The bare parts' workers: plain Temporal workflows and one no-op activity, run as processes
with the same worker setup as the help desk (``workflows.worker`` hosts the workflows, the
tickets process hosts the activity on its own task queue).

``python -m bench.bare_worker workflows|activities ADDRESS`` runs one of the two workers.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import activity, workflow

BARE_WORKFLOW_QUEUE = "bench-bare-workflows"
BARE_ACTIVITY_QUEUE = "bench-bare-activities"


@activity.defn(name="bare_noop")
async def bare_noop(label: str) -> str:
    return label


@workflow.defn(name="BareOneActivity")
class BareOneActivity:
    """Runs one activity and completes: the bare counterpart of a ticket's first step."""

    @workflow.run
    async def run(self, label: str) -> str:
        return str(
            await workflow.execute_activity(
                "bare_noop",
                label,
                task_queue=BARE_ACTIVITY_QUEUE,
                start_to_close_timeout=timedelta(seconds=30),
            )
        )


@workflow.defn(name="BareSleep")
class BareSleep:
    """Sleeps (a live timer) for ``seconds``: the bare counterpart of an open ticket."""

    @workflow.run
    async def run(self, seconds: float) -> None:
        await workflow.sleep(timedelta(seconds=seconds))


@workflow.defn(name="BareTimerThenActivity")
class BareTimerThenActivity:
    """Sleeps until an instant, then runs one activity: the bare counterpart of auto-close."""

    @workflow.run
    async def run(self, due_iso: str) -> str:
        delay = datetime.fromisoformat(due_iso) - workflow.now()
        if delay > timedelta(0):
            await workflow.sleep(delay)
        return str(
            await workflow.execute_activity(
                "bare_noop",
                due_iso,
                task_queue=BARE_ACTIVITY_QUEUE,
                start_to_close_timeout=timedelta(seconds=30),
            )
        )


BARE_WORKFLOWS = [BareOneActivity, BareSleep, BareTimerThenActivity]
