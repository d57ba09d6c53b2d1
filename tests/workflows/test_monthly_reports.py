"""The monthly report workflow (what the ``monthly-reports`` schedule starts) on the
time-skipping test server, with the real tickets activities, store and nats-server."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from temporalio.testing import WorkflowEnvironment

from services.tickets import models as m
from tests.support import stream_events, tickets_stack
from workflows.contracts import MONTHLY_REPORTS_WORKFLOW, WORKFLOW_TASK_QUEUE
from workflows.domain.periods import previous_month

pytestmark = [pytest.mark.workflow, pytest.mark.db]


async def test_last_month_goes_to_each_organisation_with_referents_once(
    time_skipping_env: WorkflowEnvironment, database_url: str, nats_url: str
) -> None:
    env = time_skipping_env
    async with tickets_stack(env.client, database_url, nats_url) as stack:
        async with stack.sessions() as session:
            contact = await session.get(m.Contact, stack.contact_id)
            assert contact is not None
            contact.role = "REFERENT"
            await session.commit()
        now = await env.get_current_time()
        start, end = previous_month(now)
        await stack.new_ticket(received_at=start + timedelta(days=3))
        await stack.new_ticket(received_at=end + timedelta(hours=1))  # this month: not counted

        for run in range(2):  # the schedule fires again (a retry): the same event
            sent = await env.client.execute_workflow(
                MONTHLY_REPORTS_WORKFLOW,
                id=f"monthly-reports-{uuid.uuid4().hex[:6]}-{run}",
                task_queue=WORKFLOW_TASK_QUEUE,
                result_type=int,
            )
            assert sent == 1
        [event] = await stream_events(nats_url, "helpdesk.report.>", timeout=5)
        assert event["organization_id"] == stack.org_id
        assert [r["id"] for r in event["recipients"]] == [stack.contact_id]
        assert event["period_start"] == start.isoformat()
        assert int(event["report"]["tickets_received"]) == 1  # int64 travels as a string
