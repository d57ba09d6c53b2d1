"""The bare parts' workers: plain Temporal workflows and one no-op activity (and one mail
activity, ``bench.bare_mail``), run as processes with the same worker setup as the help desk
(``workflows.worker`` hosts the workflows, the tickets process hosts the activity on its own
task queue).

``python -m bench.bare_worker workflows|activities ADDRESS [RELAY] [--metrics PORT]`` runs one
of the two workers.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import activity, workflow
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

BARE_WORKFLOW_QUEUE = "bench-bare-workflows"
BARE_ACTIVITY_QUEUE = "bench-bare-activities"


def bare_workflow_runner() -> SandboxedWorkflowRunner:
    """The sandbox of every bare workflow worker: the bench's modules passed through, as
    ``workflows.worker.workflow_runner`` passes the help desk's workflow modules."""
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules("bench")
    )


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


@workflow.defn(name="BareTimerThenMail")
class BareTimerThenMail:
    """Sleeps until an instant, then runs one activity sending one mail (over the activity
    worker's kept SMTP connections, ``bench.bare_mail``): the bare counterpart of the
    auto-close's closing mail."""

    @workflow.run
    async def run(self, due_iso: str, label: str) -> str:
        delay = datetime.fromisoformat(due_iso) - workflow.now()
        if delay > timedelta(0):
            await workflow.sleep(delay)
        return str(
            await workflow.execute_activity(
                "bare_send_mail",
                label,
                task_queue=BARE_ACTIVITY_QUEUE,
                start_to_close_timeout=timedelta(seconds=30),
            )
        )


BARE_WORKFLOWS = [BareOneActivity, BareSleep, BareTimerThenActivity, BareTimerThenMail]
