"""The digest at the desk's opening: the agents on duty hear, when the desk opens, of the
tickets that arrived while it was closed (the night, the weekend, a holiday, lunch).

One workflow (``desk-digest``) for the whole desk, started by the tickets process: it
sleeps until the next opening of the desk's calendar, has the tickets service publish that
opening's digest, and goes on to the next one. A timer workflow rather than a Temporal
schedule because the openings follow the business calendar (Italian holidays, bridge
days, two openings a day): no cron expression says that, ``business_time`` does.

Once per opening: the opening instant is the digest's identity (its event ID), so a retried
activity, a replay or a restarted workflow publishes the same event, which JetStream and
notify's delivery log each take once.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from workflows.contracts import (
        DESK_DIGEST_WORKFLOW,
        SEND_DESK_DIGEST,
        TICKETS_TASK_QUEUE,
        DeskDigestInput,
        DeskOpening,
    )

    # Imported here by name so that the sandbox knows the module the calendar's type
    # hints live in (decoding the input needs them).
    from workflows.domain.business_time import Calendar  # noqa: F401
    from workflows.domain.desk_openings import next_digest

RETRY = RetryPolicy(initial_interval=timedelta(seconds=5), maximum_interval=timedelta(minutes=5))


@workflow.defn(name=DESK_DIGEST_WORKFLOW)
class DeskDigestWorkflow:
    @workflow.run
    async def run(self, inp: DeskDigestInput) -> None:
        after = inp.last_opening or workflow.now()
        for _ in range(max(inp.openings_per_run, 1)):
            opening = next_digest(inp.calendar, after, workflow.now())
            # The timer of the next opening: the digest goes when the desk opens.
            wait = opening.opened_at - workflow.now()
            if wait > timedelta(0):
                await workflow.sleep(wait, summary=f"until the desk opens at {opening.opened_at}")
            await workflow.execute_activity(
                SEND_DESK_DIGEST,
                DeskOpening(opening.opened_at, opening.closed_since),
                result_type=int,
                task_queue=TICKETS_TASK_QUEUE,
                start_to_close_timeout=timedelta(minutes=2),
                retry_policy=RETRY,
                summary="digest of the tickets received while the desk was closed",
            )
            after = opening.opened_at
        workflow.continue_as_new(dataclasses.replace(inp, last_opening=after))
