"""The bare service stack (the help desk's parts with nothing of its own: a gRPC front, a
row written through the same driver, ``start_workflow``, one activity that updates the row and
publishes to JetStream) and the ``create_ticket_stack`` scenario measured against it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from bench.harness import Result, Sizes
from bench.infra import HelpDesk, Servers


class BareStack:
    async def one(self, i: int) -> float:
        """One request through the bare stack until its JetStream message arrives: latency."""
        raise NotImplementedError


@asynccontextmanager
async def bare_stack(srv: Servers, log_dir: Path) -> AsyncIterator[BareStack]:
    yield BareStack()


async def create_ticket_stack(srv: Servers, hd: HelpDesk, bare: BareStack, sizes: Sizes) -> Result:
    raise NotImplementedError
