"""What keeps the unauthenticated directory RPCs (``Login``, ``RequestPasswordReset``,
``ResetPassword``) from stalling the tickets process: Argon2 off the event loop, a bound on
the hashes waiting for it, and attempt limits per source and per email address.

- **The pool.** An Argon2 hash takes about 0.1 s of CPU. Run on the event loop, that is
  0.1 s during which no ticket RPC and no recording activity of this process is served.
  ``HashPool`` runs every hash and verification on a few threads (argon2-cffi releases the
  GIL) at the lowest CPU priority, and admits at most ``workers + waiting`` of them at once:
  an unauthenticated call beyond that is ``RESOURCE_EXHAUSTED`` at once instead of
  queueing without bound.
- **The limits.** ``Attempts`` counts attempts per key in fixed windows, in this process's
  memory (each replica counts its own). The keys are the email address and the *source*:
  the client's address as the web gateway reports it in the ``x-forwarded-for`` metadata
  (its last entry: the address the gateway itself saw), else the gRPC peer. The tickets
  port is reachable only from the help-desk pods (deploy/k8s/base/networkpolicies.yaml), so
  the header is taken as set by the gateway; whoever forges it only changes its source key,
  and still meets the per-address limit, the account lock-out and the pool's bound. IPv6
  sources count per /64 network, the block one subscriber usually holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc

from services.common.rpc_errors import RpcError

T = TypeVar("T")

FORWARDED_FOR = "x-forwarded-for"
# Two hashes at a time: on a two-core machine each already runs Argon2's four lanes.
HASH_WORKERS = 2
HASH_WAITING = 8


# How much the hashing threads yield to the rest of the process (the nice value added on
# Linux, where it is per thread and inherited by the lanes libargon2 starts): the event loop
# gets the CPU whenever it has work, hashes take what is left.
HASH_NICENESS = 19


def _lower_priority() -> None:
    """Run in each pool thread as it starts: yield the CPU to the event loop's thread."""
    with contextlib.suppress(AttributeError, OSError):  # not Linux: equal priority
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + HASH_NICENESS)


class HashPool:
    """Argon2 work on a few low-priority threads, admitted only while fewer than ``limit``
    are in flight."""

    def __init__(self, workers: int = HASH_WORKERS, waiting: int = HASH_WAITING) -> None:
        self._executor = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="argon2", initializer=_lower_priority
        )
        self.limit = workers + waiting
        self.in_flight = 0  # read and written on the event loop only
        self.completed = 0  # hashes and verifications done (a gauge for operators and tests)

    @contextlib.contextmanager
    def admitted(self, bounded: bool = True) -> Iterator[None]:
        """A place in the pool for one request's hashing, taken before any of its other
        work (so that a refused request costs next to nothing). ``bounded``
        (unauthenticated callers): ``RESOURCE_EXHAUSTED`` when the pool is full;
        authenticated work (a new contact's password, a password change) waits for its
        turn instead."""
        if bounded and self.in_flight >= self.limit:
            raise RpcError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                "too many sign-in requests at once; try again in a few seconds",
            )
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the pool's threads (inside ``admitted``)."""
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(self._executor, functools.partial(fn, *args))
        self.completed += 1
        return result


_default_pool: HashPool | None = None


def default_pool() -> HashPool:
    """The process's one pool (the CPU it may use is the process's, not a servicer's)."""
    global _default_pool
    if _default_pool is None:
        _default_pool = HashPool()
    return _default_pool


@dataclass
class Attempts:
    """At most ``limit`` attempts per key in each window of ``seconds`` (in memory, at
    most ``max_keys`` keys: the oldest windows are dropped first)."""

    limit: int
    seconds: float
    what: str  # "from this address", "for this account": the refusal says which
    max_keys: int = 50_000
    _windows: dict[str, tuple[float, int]] = field(default_factory=dict)

    def check(self, key: str) -> None:
        """Count one attempt; ``RESOURCE_EXHAUSTED`` (nothing counted) past the limit."""
        now = time.monotonic()
        start, count = self._windows.get(key, (now, 0))
        if now - start >= self.seconds:
            start, count = now, 0
        if count >= self.limit:
            wait = max(1, math.ceil(start + self.seconds - now))
            raise RpcError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"too many attempts {self.what}; try again in {wait} s",
            )
        self._windows[key] = (start, count + 1)
        if len(self._windows) > self.max_keys:
            self._prune(now)

    def _prune(self, now: float) -> None:
        for key in [k for k, (s, _) in self._windows.items() if now - s >= self.seconds]:
            del self._windows[key]
        while len(self._windows) > self.max_keys:
            del self._windows[next(iter(self._windows))]


@dataclass
class LoginLimits:
    """The attempt limits of the three unauthenticated RPCs (per process). Per source they
    are generous: many people may share one address (an office behind NAT, or every
    portal user while the gateway does not pass ``x-forwarded-for``)."""

    login_per_source: Attempts = field(
        default_factory=lambda: Attempts(60, 60, "from this address")
    )
    login_per_email: Attempts = field(default_factory=lambda: Attempts(15, 60, "for this account"))
    # Each request emails a code: few per account, to keep the desk from mailing anyone.
    reset_request_per_source: Attempts = field(
        default_factory=lambda: Attempts(20, 600, "from this address")
    )
    reset_request_per_email: Attempts = field(
        default_factory=lambda: Attempts(5, 600, "for this account")
    )
    reset_per_source: Attempts = field(
        default_factory=lambda: Attempts(60, 60, "from this address")
    )
    reset_per_email: Attempts = field(default_factory=lambda: Attempts(15, 60, "for this account"))


def client_source(context: Any) -> str:
    """Who is asking, for the per-source limits: the last ``x-forwarded-for`` entry (set
    by the web gateway), else the gRPC peer's address; IPv6 as its /64."""
    for key, value in context.invocation_metadata() or ():
        if key == FORWARDED_FOR and isinstance(value, str):
            found = _address(value.rsplit(",", 1)[-1].strip().strip("[]"))
            if found:
                return found
    return _peer_address(str(context.peer() or ""))


def _peer_address(peer: str) -> str:
    """``ipv4:10.0.0.7:51234`` -> ``10.0.0.7``; ``ipv6:[::1]:51234`` -> ``::/64``."""
    scheme, _, rest = peer.partition(":")
    if scheme == "ipv4":
        return _address(rest.rsplit(":", 1)[0]) or peer
    if scheme == "ipv6":
        return _address(rest.rpartition("]")[0].lstrip("[")) or peer
    return peer or "unknown"


def _address(text: str) -> str:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return ""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is None:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)
