"""Mail parsing in child processes that can be killed: no message holds intake for longer
than the time limit, and none can take intake's own memory with it.

``ParseWorkers.parse`` sends the raw message to an idle child (``python -m
services.intake.parse_worker``; length-prefixed pickles over its stdin and stdout) and
waits at most ``timeout`` seconds. A child that overruns is killed and replaced; one that
dies (out of memory: each child caps its own data segment) is replaced too; either way
the caller gets ``ParseFailed``. A child is also replaced after ``jobs_per_worker`` jobs,
so that no fragmentation builds up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pickle
import resource
import sys
from dataclasses import dataclass
from typing import BinaryIO, cast

from services.intake import mailparse

log = logging.getLogger("helpdesk.intake.parse")

PARSE_TIMEOUT_SECONDS = 30.0
WORKERS = 2
JOBS_PER_WORKER = 500
# Each child's data segment (RLIMIT_DATA), a bound on what no message should reach: an
# idle child takes 27 MiB; parsing a 24 MiB message peaks at about 60 MiB above that
# (base64 attachments) to 130 MiB (8-bit text), plus its reply.
WORKER_MEMORY_BYTES = 512 * 1024 * 1024
_LENGTH = 8


class ParseFailed(Exception):
    """The message could not be parsed in time (or its parser died)."""


@dataclass(eq=False)  # compared (and hashed) by identity
class _Child:
    process: asyncio.subprocess.Process
    jobs: int = 0


class ParseWorkers:
    """A small pool of parsing children, started on first use."""

    def __init__(
        self,
        workers: int = WORKERS,
        timeout: float = PARSE_TIMEOUT_SECONDS,
        memory_bytes: int = WORKER_MEMORY_BYTES,
        jobs_per_worker: int = JOBS_PER_WORKER,
    ) -> None:
        self.workers = max(1, workers)
        self.timeout = timeout
        self.memory_bytes = memory_bytes
        self.jobs_per_worker = jobs_per_worker
        self.killed = 0  # children killed for overrunning (for tests and logs)
        self._idle: list[_Child] = []
        self._busy: set[_Child] = set()
        self._slots: asyncio.Semaphore | None = None

    async def parse(
        self, raw: bytes, limits: mailparse.Limits = mailparse.DEFAULT_LIMITS
    ) -> mailparse.ParsedMail:
        return await self._run("parse", raw, limits)

    async def parse_headers(
        self, raw: bytes, limits: mailparse.Limits = mailparse.DEFAULT_LIMITS
    ) -> mailparse.ParsedMail:
        """The header block alone (what is left to read of a message that cannot be
        parsed whole)."""
        return await self._run("headers", raw, limits)

    async def close(self) -> None:
        for child in [*self._idle, *self._busy]:
            await self._stop(child)
        self._idle.clear()
        self._busy.clear()

    async def _run(self, kind: str, raw: bytes, limits: mailparse.Limits) -> mailparse.ParsedMail:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.workers)
        async with self._slots:
            child = self._idle.pop() if self._idle else await self._start()
            self._busy.add(child)
            healthy = False
            try:
                reply = await asyncio.wait_for(
                    self._exchange(child, (kind, raw, limits)), self.timeout
                )
                healthy = True
            except TimeoutError:
                self.killed += 1
                log.warning("parsing took more than %.0fs: its worker is killed", self.timeout)
                raise ParseFailed(f"not parsed within {self.timeout:.0f}s") from None
            except (EOFError, asyncio.IncompleteReadError, OSError, pickle.PickleError) as err:
                raise ParseFailed(f"the parser died ({err!r:.200})") from None
            finally:
                self._busy.discard(child)
                child.jobs += 1
                if healthy and child.jobs < self.jobs_per_worker:
                    self._idle.append(child)
                else:
                    await self._stop(child)
        status, value = reply
        if status != "ok" or not isinstance(value, mailparse.ParsedMail):
            raise ParseFailed(f"the parser failed: {value!s:.300}")
        return value

    async def _start(self) -> _Child:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.intake.parse_worker",
            str(self.memory_bytes),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        return _Child(process)

    @staticmethod
    async def _exchange(
        child: _Child, job: tuple[str, bytes, mailparse.Limits]
    ) -> tuple[str, object]:
        """One job: its kind and limits (pickled), then the raw message as it is (no copy
        of it is made on either side beyond the pipe's)."""
        stdin, stdout = child.process.stdin, child.process.stdout
        assert stdin is not None and stdout is not None
        kind, raw, limits = job
        meta = pickle.dumps((kind, limits), protocol=pickle.HIGHEST_PROTOCOL)
        stdin.write(len(meta).to_bytes(_LENGTH, "big") + len(raw).to_bytes(_LENGTH, "big"))
        stdin.write(meta)
        stdin.write(raw)
        await stdin.drain()
        size = int.from_bytes(await stdout.readexactly(_LENGTH), "big")
        reply = pickle.loads(await stdout.readexactly(size))
        if not (isinstance(reply, tuple) and len(reply) == 2):
            raise pickle.UnpicklingError("not a reply")
        return str(reply[0]), reply[1]

    @staticmethod
    async def _stop(child: _Child) -> None:
        process = child.process
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(process.wait(), 5)


# -- the child ----------------------------------------------------------------------------


def _read_into(stream: BinaryIO, buffer: bytearray) -> None:
    view = memoryview(buffer)
    while view:
        got = stream.readinto(view)  # type: ignore[attr-defined]
        if not got:
            raise EOFError
        view = view[got:]


def _read(stream: BinaryIO, size: int) -> bytearray:
    buffer = bytearray(size)
    _read_into(stream, buffer)
    return buffer


def serve(stdin: BinaryIO, stdout: BinaryIO) -> None:
    """Answer parse jobs until stdin closes."""
    while True:
        try:
            head = _read(stdin, 2 * _LENGTH)
            meta_size = int.from_bytes(head[:_LENGTH], "big")
            raw_size = int.from_bytes(head[_LENGTH:], "big")
            kind, limits = pickle.loads(_read(stdin, meta_size))
            # The message stays in the buffer it was read into: the parser takes any
            # bytes-like object, and a copy would double what the child holds.
            raw = cast(bytes, _read(stdin, raw_size))
        except EOFError:
            return
        try:
            if kind == "headers":
                reply: tuple[str, object] = ("ok", mailparse.parse_headers(raw, limits))
            else:
                reply = ("ok", mailparse.parse(raw, limits))
        except MemoryError:
            reply = ("error", "out of memory")
        except Exception as err:  # parse never raises; this is belt and braces
            reply = ("error", repr(err)[:500])
        del raw
        data = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
        del reply
        stdout.write(len(data).to_bytes(_LENGTH, "big"))
        stdout.write(data)
        stdout.flush()
        del data


def main() -> None:
    memory = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    if memory > 0:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_DATA, (memory, memory))
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but replies on the reply stream
    serve(stdin, stdout)


if __name__ == "__main__":
    main()
