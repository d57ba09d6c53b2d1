"""Provider payloads (Telegram Bot API updates, WhatsApp Cloud API webhooks) read into one
shape: who wrote, in which chat, what text, which files."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TELEGRAM = "telegram"
WHATSAPP = "whatsapp"
PROVIDERS = (TELEGRAM, WHATSAPP)
CHANNELS = {TELEGRAM: "Telegram", WHATSAPP: "WhatsApp"}


@dataclass(frozen=True)
class Media:
    kind: str  # photo | document | video | audio | voice | image
    file_id: str  # Telegram file_id / WhatsApp media ID
    filename: str
    content_type: str
    size: int  # as the provider announced it; 0: not said


@dataclass(frozen=True)
class ImMessage:
    provider: str
    key: str  # the provider's ID of this update / message
    chat_id: str
    group: bool
    sender_id: str
    sender_name: str
    text: str
    media: tuple[Media, ...] = ()
    edited: bool = False
    language: str = ""  # the sender's app language, when the provider says

    @property
    def channel(self) -> str:
        return CHANNELS[self.provider]


def _str(value: Any) -> str:
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""


def _int_id(value: Any) -> str:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else ""


def telegram_key(update: dict[str, Any]) -> str:
    """The ID an update is stored (and deduplicated) under: its chat and message,
    ``<chat>:<message>``, an edit ``<chat>:<message>:edit:<edit_date>``. Never the
    ``update_id`` alone: the Bot API restarts it after a week without updates, and a
    message would then be taken for one stored before. An update carrying no message
    (a callback, a channel post) keeps ``update:<update_id>``: none of them is processed."""
    for field, edit in (("message", False), ("edited_message", True)):
        msg = update.get(field)
        if not isinstance(msg, dict):
            continue
        chat = msg.get("chat")
        chat_id = _int_id(chat.get("id")) if isinstance(chat, dict) else ""
        message_id = _int_id(msg.get("message_id"))
        if chat_id and message_id:
            key = f"{chat_id}:{message_id}"
            return f"{key}:edit:{_int_id(msg.get('edit_date')) or '0'}" if edit else key
    return f"update:{_int_id(update.get('update_id'))}"


def telegram_message(key: str, update: dict[str, Any]) -> ImMessage | None:
    """A Telegram update's message (new or edited) from a person; None for anything else
    (channel posts, callbacks, bots, service messages without text or files)."""
    edited = "message" not in update and "edited_message" in update
    msg = update.get("message") or update.get("edited_message")
    if not isinstance(msg, dict):
        return None
    chat = msg.get("chat") if isinstance(msg.get("chat"), dict) else {}
    sender = msg.get("from") if isinstance(msg.get("from"), dict) else {}
    if not chat or not sender or sender.get("is_bot"):
        return None
    chat_type = _str(chat.get("type"))
    if chat_type not in ("private", "group", "supergroup"):
        return None
    name = " ".join(
        p for p in (_str(sender.get("first_name")), _str(sender.get("last_name"))) if p
    ) or _str(sender.get("username"))
    text = _str(msg.get("text")) or _str(msg.get("caption"))
    # Files are named after the message (never the update: its IDs restart).
    number = _int_id(msg.get("message_id")) or "0"
    media: list[Media] = []
    photos = msg.get("photo")
    if isinstance(photos, list) and photos:
        best = max(
            (p for p in photos if isinstance(p, dict) and p.get("file_id")),
            key=lambda p: (
                int(p.get("width") or 0) * int(p.get("height") or 0),
                int(p.get("file_size") or 0),
            ),
            default=None,
        )
        if best is not None:
            media.append(
                Media(
                    "photo",
                    _str(best["file_id"]),
                    f"foto-{number}.jpg",
                    "image/jpeg",
                    int(best.get("file_size") or 0),
                )
            )
    for kind in ("document", "video", "audio", "voice"):
        item = msg.get(kind)
        if isinstance(item, dict) and item.get("file_id"):
            media.append(
                Media(
                    kind,
                    _str(item["file_id"]),
                    _safe_name(_str(item.get("file_name")) or f"{kind}-{number}"),
                    _str(item.get("mime_type")) or "application/octet-stream",
                    int(item.get("file_size") or 0),
                )
            )
    if not text and not media:
        return None
    return ImMessage(
        provider=TELEGRAM,
        key=key,
        chat_id=_str(chat.get("id")),
        group=chat_type != "private",
        sender_id=_str(sender.get("id")),
        sender_name=name,
        text=text,
        media=tuple(media),
        edited=edited,
        language=_str(sender.get("language_code")),
    )


def whatsapp_message(key: str, stored: dict[str, Any]) -> ImMessage | None:
    """A WhatsApp Cloud API message as stored by the webhook (``message`` plus the
    ``contacts`` of its change); None for types we do not take (reactions, locations)."""
    msg = stored.get("message")
    if not isinstance(msg, dict):
        return None
    sender = _str(msg.get("from"))
    name = ""
    for contact in stored.get("contacts") or []:
        if isinstance(contact, dict) and _str(contact.get("wa_id")) == sender:
            profile = contact.get("profile")
            name = _str(profile.get("name")) if isinstance(profile, dict) else ""
    kind = _str(msg.get("type"))
    text = ""
    media: list[Media] = []
    if kind == "text" and isinstance(msg.get("text"), dict):
        text = _str(msg["text"].get("body"))
    elif kind in ("image", "document", "video", "audio") and isinstance(msg.get(kind), dict):
        item = msg[kind]
        text = _str(item.get("caption"))
        mime = _str(item.get("mime_type")) or "application/octet-stream"
        default = f"{'foto' if kind == 'image' else kind}-{key[-12:]}{_extension(mime)}"
        media.append(
            Media(
                kind,
                _str(item.get("id")),
                _safe_name(_str(item.get("filename")) or default),
                mime,
                int(item.get("file_size") or 0),
            )
        )
    elif kind == "button" and isinstance(msg.get("button"), dict):
        text = _str(msg["button"].get("text"))
    if not sender or (not text and not media):
        return None
    return ImMessage(
        provider=WHATSAPP,
        key=key,
        chat_id=sender,
        group=False,
        sender_id=sender,
        sender_name=name,
        text=text,
        media=tuple(media),
        language="it" if sender.startswith("39") else "",
    )


def message_of(provider: str, key: str, payload: dict[str, Any]) -> ImMessage | None:
    if provider == TELEGRAM:
        return telegram_message(key, payload)
    return whatsapp_message(key, payload)


def whatsapp_items(body: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(kind, external ID, what to store) for each message and status of a webhook body."""
    items: list[tuple[str, str, dict[str, Any]]] = []
    for entry in body.get("entry") or []:
        if not isinstance(entry, dict):
            continue
        for change in entry.get("changes") or []:
            value = change.get("value") if isinstance(change, dict) else None
            if not isinstance(value, dict):
                continue
            contacts = value.get("contacts") or []
            for msg in value.get("messages") or []:
                if isinstance(msg, dict) and _str(msg.get("id")):
                    items.append(
                        ("message", _str(msg["id"]), {"message": msg, "contacts": contacts})
                    )
            for status in value.get("statuses") or []:
                if isinstance(status, dict) and _str(status.get("id")):
                    ext = f"status:{_str(status['id'])}:{_str(status.get('status'))}"
                    items.append(("status", ext[:200], {"status": status}))
    return items


def _safe_name(name: str) -> str:
    """A bare file name: no directories, no control characters, at most 200 characters."""
    bare = name.replace("\\", "/").rsplit("/", 1)[-1]
    clean = "".join(c for c in bare if c.isprintable()).strip(" .")
    return clean[:200] or "allegato"


def _extension(mime: str) -> str:
    return {
        "image/jpeg": ".jpg",
        "image/png": ".png",
        "image/webp": ".webp",
        "application/pdf": ".pdf",
        "video/mp4": ".mp4",
        "audio/ogg": ".ogg",
    }.get(mime.split(";", 1)[0].strip().lower(), "")
