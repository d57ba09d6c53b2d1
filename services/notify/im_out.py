"""Instant messages out: Telegram's Bot API ``sendMessage`` and WhatsApp's Cloud
API ``POST /{phone_number_id}/messages``, at configurable base URLs.

- ``ImSender``: one message, retried in place on 429 (honouring ``retry_after`` /
  ``Retry-After``) and 5xx with backoff; Telegram at most one message a second per chat.
- ``ImEventConsumer`` (durable ``notify-im`` on ``helpdesk.im.>``): intake's events: a
  ticket's chat (``ticket``), the bot's own messages (``send``), WhatsApp delivery statuses
  (``status``: the delivery row goes DELIVERED / READ / FAILED).
- ``ImTicketConsumer`` (durable ``notify-im-tickets`` on ``helpdesk.ticket.>``): an agent's
  public reply on an IM ticket goes back to its chat (the email goes as before, from the
  ``notify`` consumer); an URGENT ticket pages the on-call agents on their own messaging
  accounts (``Agent.telegram_user_id`` / ``whatsapp_number``) besides the email page.

Every message is a row of the delivery log (channel ``telegram`` / ``whatsapp``, recipient
the chat), claimed before sending, so a redelivered event sends nothing twice once SENT.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
import grpc
from nats.js import JetStreamContext
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from helpdesk.v1 import directory_pb2 as dpb
from services.common import metrics
from services.common.auth import bearer_metadata
from services.common.events import STREAM, ensure_stream
from services.common.mail_threading import subject_tag
from services.common.messages import im as im_messages
from services.common.messages import tickets as tickets_messages
from services.common.messages.tickets import TicketEventPayload
from services.common.settings import Settings
from services.notify.consumer import ConsumerGroup, JetStreamConsumer
from services.notify.models import Delivery, DeliveryStatus, ImTicketChat, utcnow
from services.notify.notifier import Progress, RetryPolicy, age_seconds
from services.notify.rules import PAGING_EVENTS
from services.notify.store import DeliveryDraft, DeliveryStore

if TYPE_CHECKING:
    from helpdesk.v1.directory_pb2_grpc import DirectoryServiceAsyncStub

log = logging.getLogger(__name__)

TELEGRAM, WHATSAPP = "telegram", "whatsapp"
IM_CHANNELS = {"TELEGRAM": TELEGRAM, "WHATSAPP": WHATSAPP}
MAX_TEXT = 4000  # Telegram's limit is 4096 characters, WhatsApp's 4096
# How long an agent's reply waits for intake's word on the ticket's chat.
CHAT_WAIT_SECONDS = 60.0
CHAT_RETRY_SECONDS = 2.0
STATUS_RANK = {"SENT": 1, "DELIVERED": 2, "READ": 3}
WA_STATUS = {"sent": "SENT", "delivered": "DELIVERED", "read": "READ", "failed": "FAILED"}


class ImSendError(Exception):
    def __init__(self, message: str, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class SendPolicy:
    attempts: int = 5  # in place, before the event is retried later
    base_delay: float = 0.5
    max_delay: float = 30.0
    per_chat_interval: float = 1.0  # Telegram: one message a second per chat


class ImSender:
    """Sends one text message; returns the provider's message ID."""

    def __init__(self, settings: Settings, policy: SendPolicy | None = None) -> None:
        self.settings = settings
        self.policy = policy or SendPolicy()
        self._http: aiohttp.ClientSession | None = None
        self._next_slot: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    def enabled(self, provider: str) -> bool:
        s = self.settings
        if provider == TELEGRAM:
            return bool(s.telegram_bot_token)
        return bool(s.whatsapp_access_token and s.whatsapp_phone_number_id)

    async def send(self, provider: str, chat_id: str, text: str) -> str:
        if not self.enabled(provider):
            raise ImSendError(f"the {provider} channel is not configured", permanent=True)
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        body = text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"
        if provider == TELEGRAM:
            lock = self._locks.setdefault(chat_id, asyncio.Lock())
            async with lock:
                wait = self._next_slot.get(chat_id, 0.0) - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                try:
                    return await self._with_retries(self._telegram, chat_id, body)
                finally:
                    self._next_slot[chat_id] = time.monotonic() + self.policy.per_chat_interval
        return await self._with_retries(self._whatsapp, chat_id, body)

    async def _with_retries(self, call: Any, chat_id: str, text: str) -> str:
        last = ""
        for attempt in range(1, self.policy.attempts + 1):
            try:
                status, retry_after, result = await call(chat_id, text)
            except (aiohttp.ClientError, TimeoutError) as err:
                status, retry_after, result = 0, None, repr(err)
            if status == 200:
                return str(result)
            last = f"HTTP {status}: {result}" if status else str(result)
            if status and status != 429 and status < 500:
                raise ImSendError(last, permanent=True)
            if attempt == self.policy.attempts:
                break
            delay = min(self.policy.base_delay * 2 ** (attempt - 1), self.policy.max_delay)
            if retry_after is not None:
                delay = min(max(retry_after, 0.0), self.policy.max_delay)
            log.warning("sending to %s failed (%s), retrying in %.1fs", chat_id, last, delay)
            await asyncio.sleep(delay)
        raise ImSendError(last, permanent=False)

    async def _telegram(self, chat_id: str, text: str) -> tuple[int, float | None, str]:
        assert self._http is not None
        base = self.settings.telegram_api_base.rstrip("/")
        url = f"{base}/bot{self.settings.telegram_bot_token}/sendMessage"
        async with self._http.post(url, json={"chat_id": chat_id, "text": text}) as reply:
            data = await _json(reply)
            if reply.status == 200 and data.get("ok"):
                result = data.get("result") or {}
                return 200, None, f"tg:{chat_id}:{result.get('message_id', '')}"
            params = data.get("parameters") if isinstance(data.get("parameters"), dict) else {}
            retry = params.get("retry_after") if params else None
            if retry is None:
                retry = _retry_after_header(reply)
            status = reply.status if reply.status != 200 else 500
            return (
                status,
                float(retry) if retry is not None else None,
                str(data.get("description") or ""),
            )

    async def _whatsapp(self, chat_id: str, text: str) -> tuple[int, float | None, str]:
        assert self._http is not None
        base = self.settings.whatsapp_api_base.rstrip("/")
        url = f"{base}/{self.settings.whatsapp_phone_number_id}/messages"
        payload = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": chat_id,
            "type": "text",
            "text": {"preview_url": False, "body": text},
        }
        headers = {"Authorization": f"Bearer {self.settings.whatsapp_access_token}"}
        async with self._http.post(url, json=payload, headers=headers) as reply:
            data = await _json(reply)
            if reply.status == 200:
                messages = data.get("messages") or [{}]
                return 200, None, str(messages[0].get("id") or "")
            error = data.get("error") if isinstance(data.get("error"), dict) else {}
            return reply.status, _retry_after_header(reply), str((error or {}).get("message") or "")


async def _json(reply: aiohttp.ClientResponse) -> dict[str, Any]:
    try:
        data = json.loads(await reply.read())
    except (ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _retry_after_header(reply: aiohttp.ClientResponse) -> float | None:
    value = reply.headers.get("Retry-After", "")
    try:
        return float(value)
    except ValueError:
        return None


class ImStore:
    """The chats of IM tickets and the delivery statuses providers report."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def record_chat(self, ticket_id: int, provider: str, chat_id: str) -> None:
        async with self._sessions() as session:
            row = await session.get(ImTicketChat, ticket_id)
            if row is None:
                session.add(
                    ImTicketChat(
                        ticket_id=ticket_id, provider=provider, chat_id=chat_id, created_at=utcnow()
                    )
                )
            else:
                row.provider, row.chat_id = provider, chat_id
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()

    async def chat_of(self, ticket_id: int) -> ImTicketChat | None:
        async with self._sessions() as session:
            return await session.get(ImTicketChat, ticket_id)

    async def set_message_id(self, delivery_id: int, message_id: str) -> None:
        async with self._sessions() as session:
            await session.execute(
                update(Delivery).where(Delivery.id == delivery_id).values(message_id=message_id)
            )
            await session.commit()

    async def record_status(self, channel: str, message_id: str, status: str, error: str) -> bool:
        """Move the delivery sent as ``message_id`` forward (never back: a late "delivered"
        does not undo "read"); FAILED always wins. False when no delivery has that ID."""
        async with self._sessions() as session:
            row = await session.scalar(
                select(Delivery).where(
                    Delivery.channel == channel, Delivery.message_id == message_id
                )
            )
            if row is None:
                return False
            if status == "FAILED":
                row.status, row.error = DeliveryStatus.FAILED.value, error[:2000]
            elif STATUS_RANK.get(status, 0) > STATUS_RANK.get(row.status, 0):
                row.status = status
            await session.commit()
            return True


class ImDelivery:
    """One instant message, recorded once in the delivery log and sent at least once (a crash
    after the provider took it and before the row says SENT sends it again)."""

    def __init__(
        self,
        store: DeliveryStore,
        im_store: ImStore,
        sender: ImSender,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.store = store
        self.im_store = im_store
        self.sender = sender
        self.retry = retry or RetryPolicy()

    async def deliver(
        self,
        *,
        event_id: str,
        event_type: str,
        ticket_id: int,
        provider: str,
        chat_id: str,
        template: str,
        locale: str,
        text: str,
        progress: Progress | None = None,
    ) -> float | None:
        draft = DeliveryDraft(
            event_id=event_id,
            event_type=event_type,
            ticket_id=ticket_id,
            recipient=f"{provider}:{chat_id}"[:320],
            subject=" ".join(text.split())[:300],
            template=template,
            locale=locale,
            message_id=f"im:{event_id}:{template}:{chat_id}"[:255],
            channel=provider,
        )
        row = await self.store.claim(draft)
        if row.status != DeliveryStatus.PENDING:
            return None
        attempts = await self.store.start_attempt(row.id)
        if progress is not None:
            await progress()
        try:
            message_id = await self.sender.send(provider, chat_id, text)
        except ImSendError as err:
            limit = (
                self.retry.max_permanent_attempts
                if err.permanent
                else self.retry.max_transient_attempts
            )
            if err.permanent or attempts >= limit:
                await self.store.mark_failed(row.id, str(err))
                metrics.NOTIFY_DELIVERIES.labels(channel=provider, outcome="failed").inc()
                log.error("event %s: %s to %s failed: %s", event_id, template, chat_id, err)
                return None
            await self.store.record_error(row.id, str(err))
            metrics.NOTIFY_DELIVERIES.labels(channel=provider, outcome="retry").inc()
            return self.retry.delay(attempts)
        if message_id:
            await self.im_store.set_message_id(row.id, message_id[:255])
        await self.store.mark_sent(row.id)
        metrics.NOTIFY_DELIVERIES.labels(channel=provider, outcome="sent").inc()
        log.info("event %s: sent %s to %s %s", event_id, template, provider, chat_id)
        return None


class ImEventConsumer(JetStreamConsumer[dict[str, Any]]):
    stream = STREAM
    filter_subject = im_messages.FILTER
    description = "notify: instant messaging (tickets' chats, bot messages, statuses)"

    def __init__(self, nats_url: str, delivery: ImDelivery, **kwargs: Any) -> None:
        kwargs.setdefault("durable", "notify-im")
        super().__init__(nats_url, **kwargs)
        self._delivery = delivery

    async def ensure_stream(self, js: JetStreamContext) -> None:
        await ensure_stream(js)

    decode = im_messages.decode

    def describe(self, event: dict[str, Any]) -> str:
        return f"{event['event_id']} (im {event['type']})"

    async def process(self, event: dict[str, Any], progress: Progress) -> float | None:
        kind, provider = event["type"], event["provider"]
        if kind == "ticket":
            await self._delivery.im_store.record_chat(
                int(event["ticket_id"]), provider, str(event["chat_id"])
            )
            return None
        if kind == "status":
            status = WA_STATUS.get(str(event.get("status") or ""))
            if status and event.get("message_id"):
                found = await self._delivery.im_store.record_status(
                    provider, str(event["message_id"]), status, str(event.get("error") or "")
                )
                if not found:
                    log.info("status %s for a message not in the delivery log", event["event_id"])
            return None
        return await self._delivery.deliver(
            event_id=event["event_id"],
            event_type=str(event.get("template") or "im_bot"),
            ticket_id=int(event.get("ticket_id") or 0),
            provider=provider,
            chat_id=str(event["chat_id"]),
            template=str(event.get("template") or "im_bot"),
            locale=str(event.get("locale") or "it"),
            text=str(event.get("text") or ""),
            progress=progress,
        )


def agent_reply_text(event: TicketEventPayload, locale: str) -> str:
    comment: Any = event.get("comment") or {}
    who = str(comment.get("author_name") or "")
    tag = subject_tag(event["ticket_id"])
    head = (
        f"{tag} Reply from the help desk{f' ({who})' if who else ''}:"
        if locale == "en"
        else f"{tag} Risposta dall'assistenza{f' ({who})' if who else ''}:"
    )
    return f"{head}\n\n{comment.get('body') or ''}".strip()


# A ticket opened from a chat hears there when it is solved and when it is closed.
STATUS_TEXTS = {
    "solved": (
        "{tag} La tua richiesta risulta risolta. Se il problema persiste, rispondi qui.",
        "{tag} Your request is solved. If the problem persists, reply here.",
    ),
    "closed": (
        "{tag} La richiesta è chiusa. Per un nuovo problema scrivici pure qui.",
        "{tag} The request is closed. For a new problem, just write to us here.",
    ),
}


def chat_text(event: TicketEventPayload, locale: str) -> tuple[str, str] | None:
    """(template, text) of the message an event sends to the ticket's chat, if any."""
    comment = event.get("comment")
    if event["type"] == "comment_added":
        if comment is None or comment["visibility"] != "PUBLIC":
            return None
        if comment["author_kind"] != "AGENT":
            return None
        return "im_agent_reply", agent_reply_text(event, locale)
    texts = STATUS_TEXTS.get(event["type"])
    if texts is None:
        return None
    if event["type"] == "closed" and event["ticket"].get("close_reason") == "MERGED":
        return None
    return f"im_{event['type']}", texts[1 if locale == "en" else 0].format(
        tag=subject_tag(event["ticket_id"])
    )


def page_text(event: TicketEventPayload) -> str:
    ticket = event["ticket"]
    return (
        f"URGENTE #{event['ticket_id']} · {ticket.get('subject', '')} · "
        f"{ticket.get('organization_name', '')} ({ticket.get('channel', '')}): "
        "presa in carico immediata richiesta."
    )


class ImTicketConsumer(JetStreamConsumer[TicketEventPayload]):
    """Ticket events that call for an instant message."""

    stream = STREAM
    filter_subject = tickets_messages.FILTER
    description = "notify: agents' replies to IM chats, URGENT pages on agents' accounts"

    def __init__(
        self,
        nats_url: str,
        delivery: ImDelivery,
        directory: DirectoryServiceAsyncStub | None,
        service_token: str,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("durable", "notify-im-tickets")
        super().__init__(nats_url, **kwargs)
        self._delivery = delivery
        self._directory = directory
        self._metadata = bearer_metadata(service_token)

    async def ensure_stream(self, js: JetStreamContext) -> None:
        await ensure_stream(js)

    decode = tickets_messages.decode

    def describe(self, event: TicketEventPayload) -> str:
        return f"{event['event_id']} ({event['type']}, IM)"

    async def process(self, event: TicketEventPayload, progress: Progress) -> float | None:
        delays = [await self._reply(event, progress), await self._pages(event, progress)]
        waits = [d for d in delays if d is not None]
        return max(waits) if waits else None

    async def _reply(self, event: TicketEventPayload, progress: Progress) -> float | None:
        ticket = event["ticket"]
        locale = ticket["requester"].get("locale") or "it"
        message = chat_text(event, locale)
        if message is None or ticket.get("channel") not in IM_CHANNELS:
            return None
        chat = await self._delivery.im_store.chat_of(event["ticket_id"])
        if chat is None:
            if age_seconds(event.get("occurred_at", "")) < CHAT_WAIT_SECONDS:
                return CHAT_RETRY_SECONDS  # intake's word on the chat is on its way
            log.warning(
                "event %s: no chat known for ticket %s", event["event_id"], event["ticket_id"]
            )
            return None
        return await self._delivery.deliver(
            event_id=event["event_id"],
            event_type=event["type"],
            ticket_id=event["ticket_id"],
            provider=chat.provider,
            chat_id=chat.chat_id,
            template=message[0],
            locale=locale,
            text=message[1],
            progress=progress,
        )

    async def _pages(self, event: TicketEventPayload, progress: Progress) -> float | None:
        ticket = event["ticket"]
        if event["type"] not in PAGING_EVENTS or ticket.get("priority") != "URGENT":
            return None
        if self._directory is None:
            return None
        retry: float | None = None
        for person in ticket.get("on_call") or []:
            try:
                agent: dpb.Agent = await self._directory.GetAgent(
                    dpb.GetAgentRequest(id=int(person["id"])), metadata=self._metadata, timeout=30
                )
            except grpc.aio.AioRpcError as err:
                if err.code() == grpc.StatusCode.NOT_FOUND:
                    continue
                raise
            for provider, chat_id in (
                (TELEGRAM, agent.telegram_user_id),
                (WHATSAPP, agent.whatsapp_number),
            ):
                if not chat_id or not self._delivery.sender.enabled(provider):
                    continue
                delay = await self._delivery.deliver(
                    event_id=event["event_id"],
                    event_type=event["type"],
                    ticket_id=event["ticket_id"],
                    provider=provider,
                    chat_id=chat_id,
                    template="im_urgent_page",
                    locale="it",
                    text=page_text(event),
                    progress=progress,
                )
                if delay is not None:
                    retry = max(retry or 0.0, delay)
                break  # one account per agent: Telegram first
        return retry


class ImOut(ConsumerGroup):
    """Both IM consumers of the notify process, started and stopped together."""

    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        store: DeliveryStore,
        directory: DirectoryServiceAsyncStub | None,
        *,
        durable: str,
        deliver_policy: Any,
        retry: RetryPolicy,
    ) -> None:
        self.sender = ImSender(settings)
        self.delivery = ImDelivery(store, ImStore(sessions), self.sender, retry)
        common = {"deliver_policy": deliver_policy, "retry": retry}
        super().__init__(
            [
                ImEventConsumer(
                    settings.nats_url, self.delivery, durable=f"{durable}-im", **common
                ),
                ImTicketConsumer(
                    settings.nats_url,
                    self.delivery,
                    directory,
                    settings.service_token,
                    durable=f"{durable}-im-tickets",
                    **common,
                ),
            ]
        )

    async def stop(self) -> None:
        await super().stop()
        await self.sender.close()
