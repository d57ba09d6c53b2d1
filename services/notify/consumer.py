"""The JetStream side: durable pull consumer ``notify`` on ``helpdesk.ticket.>``.

``JetStreamConsumer`` holds the loop shared with the secrets consumer
(``services.notify.secrets``); ``EventConsumer`` is the ticket one.

Explicit acks: a message is acked only when every email it calls for is
recorded as SENT or FAILED; otherwise it is nak'ed with a delay and comes
back. A body that is not a ticket event is terminated (never redelivered).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, ClassVar, Generic, Protocol, TypeVar, cast

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import BadRequestError
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from services.common import logs, telemetry
from services.common.events import STREAM, connect, ensure_stream
from services.common.messages import tickets as tickets_messages
from services.common.messages.tickets import TicketEventPayload
from services.notify.notifier import Progress, RetryPolicy

log = logging.getLogger(__name__)
_tracer = telemetry.tracer(__name__)

DURABLE = "notify"
FILTER_SUBJECT = tickets_messages.FILTER
ACK_WAIT_SECONDS = 30.0
FETCH_BATCH = 10
FETCH_TIMEOUT_SECONDS = 5.0

E = TypeVar("E")
E_contra = TypeVar("E_contra", contravariant=True)


def consumer_config(
    durable: str,
    deliver_policy: DeliverPolicy,
    *,
    filter_subject: str = FILTER_SUBJECT,
    description: str = "notify: emails for ticket events",
) -> ConsumerConfig:
    """The durable pull consumer's settings."""
    return ConsumerConfig(
        name=durable,
        durable_name=durable,
        description=description,
        deliver_policy=deliver_policy,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=ACK_WAIT_SECONDS,
        max_deliver=-1,  # the delivery log decides when to give up
        filter_subject=filter_subject,
        max_ack_pending=1000,
    )


class JetStreamConsumer(Generic[E]):
    """A durable pull consumer that hands decoded events over one at a time, in stream order.

    Subclasses say which stream and subjects, how to decode a body and what to do with it.
    """

    stream: ClassVar[str]
    filter_subject: ClassVar[str]
    description: ClassVar[str]

    def __init__(
        self,
        nats_url: str,
        *,
        durable: str,
        deliver_policy: DeliverPolicy = DeliverPolicy.ALL,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._url = nats_url
        self.durable = durable
        self._deliver_policy = deliver_policy
        self._retry = retry or RetryPolicy()
        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None
        self._sub: JetStreamContext.PullSubscription | None = None
        self._stopping = False
        self._busy = False

    async def ensure_stream(self, js: JetStreamContext) -> None:
        """Create the stream when missing (``HELPDESK``; the secrets consumer its own)."""
        await ensure_stream(js)

    # The stream's decoder (``services.common.messages.<stream>.decode``).
    decode: ClassVar[Callable[[bytes], Any]]

    def parse(self, data: bytes) -> E:
        """The event in a message body; ``ValueError`` when it is not one (never redelivered)."""
        return cast(E, type(self).decode(data))

    def describe(self, event: E) -> str:
        """The event in a log line (never anything secret)."""
        raise NotImplementedError

    async def process(self, event: E, progress: Progress) -> float | None:
        """Act on ``event``: None when done, else seconds to wait before a redelivery."""
        raise NotImplementedError

    @property
    def connected(self) -> bool:
        """Whether the NATS connection is up."""
        return self._nc is not None and self._nc.is_connected

    @property
    def busy(self) -> bool:
        """Whether a message is being handled right now (do not cancel)."""
        return self._busy

    async def start(self) -> None:
        """Connect, make sure the stream and the durable consumer exist, and bind to it."""
        self._nc = await connect(self._url, "notify")
        self._js = self._nc.jetstream()
        await self.ensure_stream(self._js)
        config = consumer_config(
            self.durable,
            self._deliver_policy,
            filter_subject=self.filter_subject,
            description=self.description,
        )
        try:
            await self._js.add_consumer(self.stream, config)
        except BadRequestError as err:
            # An existing consumer whose settings cannot be changed in place: keep it.
            log.warning(
                "consumer %s exists with other settings, using it as is: %s", self.durable, err
            )
        self._sub = await self._js.pull_subscribe_bind(durable=self.durable, stream=self.stream)
        log.info("consuming %s on stream %s as %s", self.filter_subject, self.stream, self.durable)

    async def run(self) -> None:
        """Fetch and handle messages until ``request_stop`` (or cancellation while idle)."""
        if self._sub is None:
            raise RuntimeError(f"{type(self).__name__}.start() first")
        while not self._stopping:
            try:
                msgs = await self._sub.fetch(FETCH_BATCH, timeout=FETCH_TIMEOUT_SECONDS)
            except NatsTimeoutError:
                continue
            except Exception as err:
                if self._stopping:
                    break
                log.warning("fetch from %s failed, retrying: %s", self.durable, err)
                await asyncio.sleep(1)
                continue
            for msg in msgs:
                if self._stopping:
                    break  # not acked: redelivered after ack_wait
                self._busy = True
                try:
                    await self.handle(msg)
                finally:
                    self._busy = False

    async def handle(self, msg: Msg) -> None:
        """Handle one message and ack, nak (with a delay) or terminate it, in a span that
        continues the trace its publisher's headers carry."""
        with _tracer.start_as_current_span(
            f"{msg.subject} process",
            context=telemetry.extract(msg.headers),
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "nats",
                "messaging.destination.name": msg.subject,
                "messaging.consumer.group.name": self.durable,
            },
        ) as span:
            await self._handle(msg, span)

    async def _handle(self, msg: Msg, span: trace.Span) -> None:
        try:
            event = self.parse(msg.data)
        except ValueError as err:
            log.error("dropping message %s on %s: %s", _seq(msg), msg.subject, err)
            span.set_status(Status(StatusCode.ERROR, str(err)))
            await msg.term()
            return
        span.set_attribute("helpdesk.event", self.describe(event))
        # The ticket an event is about names itself in every log line written for it.
        ticket_id = event.get("ticket_id") if isinstance(event, dict) else None
        try:
            with logs.ticket_context(ticket_id if isinstance(ticket_id, int) else 0):
                retry_after = await self.process(event, msg.in_progress)
        except Exception:
            delivered = msg.metadata.num_delivered or 1
            delay = self._retry.delay(delivered)
            log.exception("event %s: failed, redelivery in %.1fs", self.describe(event), delay)
            await msg.nak(delay=delay)
            return
        if retry_after is None:
            await msg.ack()
        else:
            await msg.nak(delay=retry_after)

    def request_stop(self) -> None:
        """Finish the message in hand, then leave ``run``."""
        self._stopping = True

    async def close(self) -> None:
        """Drop the subscription and the connection."""
        nc, self._nc, self._sub, self._js = self._nc, None, None, None
        if nc is not None and not nc.is_closed:
            # No message is in hand any more (``run`` has ended): flush the acks already
            # written, then close. A drain would wait for the pending pull (up to its
            # expiry) for nothing, and unacked messages are redelivered anyway.
            try:
                await asyncio.wait_for(nc.flush(), timeout=2)
            except Exception as err:  # closing anyway
                log.debug("flush before close failed: %s", err)
            await nc.close()


class ConsumerGroup:
    """Consumers of one notify concern, started and stopped together."""

    def __init__(self, consumers: list[JetStreamConsumer[Any]]) -> None:
        self.consumers = consumers
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await self.connect()
        self.run()

    async def connect(self) -> None:
        """Connect every consumer (its stream and durable made if missing)."""
        for consumer in self.consumers:
            await consumer.start()

    def run(self) -> None:
        """Start every consumer's loop."""
        self.tasks = [
            asyncio.create_task(c.run(), name=f"notify-{c.durable}") for c in self.consumers
        ]

    @property
    def connected(self) -> bool:
        return all(c.connected for c in self.consumers)

    async def stop(self) -> None:
        """Each consumer finishes the message in hand (at most 30 s), then closes; all at
        once."""
        for consumer in self.consumers:
            consumer.request_stop()

        async def stop_one(
            consumer: JetStreamConsumer[Any], task: asyncio.Task[None] | None
        ) -> None:
            if task is not None:
                if not task.done() and not consumer.busy:
                    task.cancel()
                with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                    await asyncio.wait_for(task, 30)
            await consumer.close()

        # Connected but never run (a start that failed half-way): closed all the same.
        tasks: list[asyncio.Task[None] | None] = [*self.tasks]
        tasks += [None] * (len(self.consumers) - len(tasks))
        await asyncio.gather(*(stop_one(c, t) for c, t in zip(self.consumers, tasks, strict=True)))
        self.tasks = []


class EventHandler(Protocol[E_contra]):
    """What acts on one decoded event: None when done, else seconds before a redelivery."""

    async def handle(self, event: E_contra, progress: Progress | None = None) -> float | None: ...


class HandledConsumer(JetStreamConsumer[E]):
    """A consumer that hands each event to its handler's ``handle``: a subclass declares
    its stream, subjects, description, default durable, ``decode`` and ``describe``."""

    default_durable: ClassVar[str]

    def __init__(
        self,
        nats_url: str,
        handler: EventHandler[E],
        *,
        durable: str = "",
        deliver_policy: DeliverPolicy = DeliverPolicy.ALL,
        retry: RetryPolicy | None = None,
    ) -> None:
        super().__init__(
            nats_url,
            durable=durable or self.default_durable,
            deliver_policy=deliver_policy,
            retry=retry,
        )
        self._handler = handler

    async def process(self, event: E, progress: Progress) -> float | None:
        return await self._handler.handle(event, progress=progress)


class EventConsumer(HandledConsumer[TicketEventPayload]):
    """Pulls ticket events and hands them to the notifier, one at a time, in stream order."""

    stream = STREAM
    filter_subject = FILTER_SUBJECT
    description = "notify: emails for ticket events"
    default_durable = DURABLE
    decode = tickets_messages.decode

    def describe(self, event: TicketEventPayload) -> str:
        return f"{event['event_id']} ({event['type']})"


def _seq(msg: Msg) -> str:
    try:
        return str(msg.metadata.sequence.stream)
    except Exception:
        return "?"
