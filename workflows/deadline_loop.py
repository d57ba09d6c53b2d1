"""The main loop the timed workflows share: wait until the next deadline or until a
recorded change may have moved it, then act on the deadline reached.

The Temporal commands it makes are part of every recorded history (one timer per wait,
its summary the deadline's label): change them only with a replay-safe plan.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.domain.deadlines import Deadline


class Wake:
    """Set by every recorded change: the loop stops waiting and computes its deadline again."""

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def clear(self) -> None:
        self._set = False

    def is_set(self) -> bool:
        return self._set


async def wait_for_deadlines(
    *,
    next_deadline: Callable[[], Deadline | None],
    on_deadline: Callable[[Deadline], Awaitable[None]],
    wake: Wake,
    finished: Callable[[], Awaitable[bool]],
) -> None:
    """Loop until ``finished`` says so.

    Each turn waits for the handlers in flight, then asks ``finished`` (which may also
    continue as new, or do the workflow's own last steps); then waits for the next
    deadline, or for ``wake`` without one. A deadline already past is acted on at once;
    ``on_deadline`` gets the deadline waited for and checks it is still due.
    """
    while True:
        await workflow.wait_condition(workflow.all_handlers_finished)
        if await finished():
            return
        deadline = next_deadline()
        wake.clear()
        if deadline is None:
            await workflow.wait_condition(wake.is_set)
            continue
        delay = deadline.at - workflow.now()
        if delay > timedelta(0):
            try:
                await workflow.wait_condition(
                    wake.is_set, timeout=delay, timeout_summary=deadline.label
                )
                continue
            except TimeoutError:
                pass
        await on_deadline(deadline)
