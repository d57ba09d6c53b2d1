"""Connecting to Temporal, and the search attributes every ticket workflow carries."""

from __future__ import annotations

import asyncio
import logging

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client

from services.common.payload_types import cache_type_hints
from services.common.telemetry import temporal_interceptors
from workflows.contracts import SEARCH_ATTRIBUTES
from workflows.prog_contracts import PROG_SEARCH_ATTRIBUTES

log = logging.getLogger(__name__)

_KINDS = {
    "int": IndexedValueType.INDEXED_VALUE_TYPE_INT,
    "keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "bool": IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
}


async def connect(address: str, namespace: str = "default", attempts: int = 60) -> Client:
    """Connect, retrying while the server is still starting (traced: see ``telemetry``)."""
    cache_type_hints()
    last: Exception | None = None
    for _ in range(attempts):
        try:
            return await Client.connect(
                address, namespace=namespace, interceptors=temporal_interceptors()
            )
        except Exception as err:  # the server may still be starting
            last = err
            await asyncio.sleep(1)
    raise RuntimeError(f"cannot reach Temporal at {address}: {last}")


async def connect_lazy(address: str, namespace: str = "default") -> Client:
    """A client that connects on first use: a servicer needs it before Temporal answers.
    Workers refuse lazy clients; they take one from ``connect``."""
    cache_type_hints()
    return await Client.connect(
        address, namespace=namespace, lazy=True, interceptors=temporal_interceptors()
    )


async def register_search_attributes(
    client: Client, namespace: str = "default", assume_none: bool = False
) -> list[str]:
    """Add the ticket search attributes that are missing; returns the names added.

    ``assume_none`` skips listing (the time-skipping test server cannot list them).
    """
    known: set[str] = set()
    if not assume_none:
        existing = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=namespace)
        )
        known = set(existing.custom_attributes) | set(existing.system_attributes)
    missing = {
        key.name: _KINDS[kind]
        for key, kind in (*SEARCH_ATTRIBUTES, *PROG_SEARCH_ATTRIBUTES)
        if key.name not in known
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(search_attributes=missing, namespace=namespace)
        )
        log.info("registered search attributes: %s", ", ".join(sorted(missing)))
    return sorted(missing)
