"""The monthly report (seed 002: "report of calls per severity") to every organisation's
referents: started on the 1st of each month by the Temporal schedule ``monthly-reports``
(kept by the tickets process), for the month that just ended in Europe/Rome."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from workflows.contracts import (
        MONTHLY_REPORTS_WORKFLOW,
        REPORT_ORGANIZATIONS,
        SEND_ORGANIZATION_REPORT,
        TICKETS_TASK_QUEUE,
        ReportInput,
    )
    from workflows.domain.periods import previous_month

RETRY = RetryPolicy(initial_interval=timedelta(seconds=5), maximum_interval=timedelta(minutes=5))


@workflow.defn(name=MONTHLY_REPORTS_WORKFLOW)
class MonthlyReportsWorkflow:
    @workflow.run
    async def run(self) -> int:
        """Sends last month's report to each organisation with referents; returns how many."""
        start, end = previous_month(workflow.now())
        key = f"monthly-{start:%Y-%m}"
        organizations: list[int] = await workflow.execute_activity(
            REPORT_ORGANIZATIONS,
            result_type=list[int],
            task_queue=TICKETS_TASK_QUEUE,
            start_to_close_timeout=timedelta(minutes=1),
            retry_policy=RETRY,
        )
        for org_id in organizations:
            await workflow.execute_activity(
                SEND_ORGANIZATION_REPORT,
                ReportInput(org_id, start, end, key),
                task_queue=TICKETS_TASK_QUEUE,
                start_to_close_timeout=timedelta(minutes=5),
                retry_policy=RETRY,
                summary=f"report of organisation {org_id}",
            )
        return len(organizations)
