"""The ``system`` fixture: every process of the help desk on real servers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from temporalio.client import Client

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import tickets_pb2 as tpb
from services.common.embedded import EmbeddedProcess
from tests.support import eventually
from tests.system.harness import Mailbox, System, assign_ports, smtp_relay, system_env

AUTO_CLOSE = "8s"


# The processes most tests need; the workflow worker has no gRPC port to wait for.
CORE = ("tickets", "intake", "notify", "worker")


@asynccontextmanager
async def running_system(
    tmp_path: Path,
    temporal: EmbeddedProcess,
    nats_url: str,
    database_url: str,
    processes: tuple[str, ...] = CORE,
    **env_overrides: str,
) -> AsyncIterator[tuple[System, Mailbox]]:
    """``processes`` started against the given servers and an SMTP relay, all serving."""
    with smtp_relay() as (box, relay):
        env = system_env(
            tmp_path,
            temporal.addresses["temporal"],
            nats_url,
            "" if database_url.startswith("sqlite") else database_url,
            relay,
            AUTO_CLOSE,
        )
        env.update(env_overrides)
        sut = await started(env, tmp_path, processes, keep=env_overrides)
        try:
            yield sut, box
        finally:
            await sut.close()


# A port picked free may be taken by another test's process before ours binds it.
PORT_ATTEMPTS = 3
# What a process's log says then (asyncio and aiohttp; gRPC).
PORT_TAKEN = ("address already in use", "Failed to bind to address")


async def started(
    env: dict[str, str], tmp_path: Path, processes: tuple[str, ...], keep: Collection[str]
) -> System:
    """``processes`` started and serving; when one could not bind its port, all again on
    new ports (but the ``keep`` ones the test chose)."""
    for attempt in range(PORT_ATTEMPTS):
        sut = System(env, tmp_path)
        try:
            for name in processes:
                sut.start(name)
            for name in processes:
                if name != "worker":
                    await sut.wait_serving(name)
            return sut
        except RuntimeError as err:
            await sut.close()
            taken = any(words in str(err) for words in PORT_TAKEN)
            if not taken or attempt == PORT_ATTEMPTS - 1:
                raise
            assign_ports(env, keep)
    raise AssertionError("unreachable")


@pytest.fixture
async def system(
    tmp_path: Path,
    temporal_dev_server: EmbeddedProcess,
    temporal_client: Client,
    nats_url: str,
    database_url: str,
) -> AsyncIterator[tuple[System, Mailbox]]:
    async with running_system(tmp_path, temporal_dev_server, nats_url, database_url) as running:
        yield running


async def setup_directory(
    sut: System, policy: int
) -> tuple[dpb.Organization, dpb.Contact, dpb.Agent]:
    directory = sut.directory()
    md = sut.metadata
    suffix = uuid.uuid4().hex[:6]
    org = await directory.CreateOrganization(
        dpb.CreateOrganizationRequest(
            name=f"Rossi Srl {suffix}", email_domains=["rossi.it"], closed_ticket_policy=policy
        ),
        metadata=md,
    )
    contact = await directory.AddContact(
        dpb.AddContactRequest(
            organization_id=org.id, name="Mario Rossi", email=f"Mario.Rossi.{suffix}@rossi.it"
        ),
        metadata=md,
    )
    agent = await directory.CreateAgent(
        dpb.CreateAgentRequest(
            name="Anna Bianchi", email=f"anna.{suffix}@desk.it", role=pb.AGENT_ROLE_AGENT
        ),
        metadata=md,
    )
    return org, contact, agent


def agent_actor(agent: dpb.Agent) -> tpb.Actor:
    return tpb.Actor(kind=pb.AUTHOR_KIND_AGENT, id=agent.id)


def customer_actor(contact: dpb.Contact) -> tpb.Actor:
    return tpb.Actor(kind=pb.AUTHOR_KIND_CONTACT, id=contact.id)


async def mail_arrives(box: Mailbox, ticket_id: int, words: str, count: int = 1) -> None:
    """Wait until ``count`` messages about the ticket whose body contains ``words`` arrived."""

    def arrived() -> bool:
        found = [m for m in box.about(ticket_id) if words in m.get_body(("plain",)).get_content()]
        return len(found) >= count

    await eventually(arrived, timeout=30)
