"""One settings object per process, read from the ``HELPDESK_*`` environment (DESIGN.md §4)."""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from workflows.domain.durations import parse_duration

DEFAULT_ADDRS = {
    "intake": "127.0.0.1:50051",
    "tickets": "127.0.0.1:50052",
    "dev_escalation": "127.0.0.1:50053",
    "notify": "127.0.0.1:50054",
}


# Seed 001's "assoluta criticità" in Italian and English (HELPDESK_CRITICAL_KEYWORDS).
DEFAULT_CRITICAL_KEYWORDS = (
    "bloccato,bloccata,bloccati,fermo,ferma,fermi,non funziona niente,non funziona nulla,"
    "internet down,internet non va,file corrotti,files corrotti,file cancellati,"
    "critical,down,blocked,work stopped"
)


SIGNING_KEY_FILE = "signing.key"
MIN_SIGNING_KEY = 32


class MissingSecret(ValueError):
    """A process was started without the secrets it needs (the message names them)."""


def _env(name: str, default: str = "") -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def _positive_int(name: str, default: str) -> int:
    text = _env(name, default)
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{name}: expected a whole number of at least 1, got {text!r}")
    return int(text)


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    temporal_address: str
    temporal_namespace: str
    nats_url: str
    intake_addr: str
    tickets_addr: str
    dev_escalation_addr: str
    notify_addr: str
    smtp_listen: str
    smtp_relay: str
    mail_from: str
    webhook_listen: str
    admin_token: str
    service_token: str
    auto_close_after: timedelta
    # Other addresses the SMTP listener accepts as the support address (comma-separated).
    mail_aliases: tuple[str, ...] = ()
    # Signs login and link tokens (HELPDESK_SIGNING_KEY, else the data dir's signing.key
    # that ``make run`` generates); see ``token_signing_key``.
    signing_key: str = ""
    # Second level: a HIGH programming ticket must be started within this, or the
    # development lead is told; referents hear of a remote update this long before it.
    start_work_within: timedelta = timedelta(hours=1)
    remote_update_notice: timedelta = timedelta(days=1)
    # A ticket ON_HOLD for a third party reminds its assignee every this many business days.
    third_party_reminder_days: int = 2
    # A stored mail or chat update the tickets service refused with an error waits this
    # long before its second attempt, doubling after each one (at most 10 minutes).
    intake_retry_base: timedelta = timedelta(seconds=10)
    # Inbound mail larger than this is refused with 552 (SMTP) / INVALID_ARGUMENT (gRPC).
    smtp_max_message_bytes: int = 25 * 1024 * 1024
    # An agent's answer mails its files up to this much together; more stay on the portal.
    mail_max_attachment_bytes: int = 20 * 1024 * 1024
    # The fax-to-mail gateway's address (seed 000): mail to it is channel FAX. "" = off.
    fax_address: str = ""
    # The web gateway's HTTP listen address (portal at /, JSON API at /api/v1/).
    gateway_listen: str = "127.0.0.1:8080"
    # The customer portal's base URL, the base of every link we email (survey,
    # confirm/reopen, sign-in, reset); by default the gateway's own address.
    portal_url: str = ""
    # Instant messaging: a channel whose settings are absent is off.
    telegram_bot_token: str = ""
    telegram_webhook_secret: str = ""
    telegram_api_base: str = "https://api.telegram.org"
    whatsapp_app_secret: str = ""
    whatsapp_verify_token: str = ""
    whatsapp_access_token: str = ""
    whatsapp_api_base: str = "https://graph.facebook.com/v21.0"
    whatsapp_phone_number_id: str = ""
    critical_keywords: tuple[str, ...] = ()

    @classmethod
    def from_env(cls) -> Settings:
        data_dir = Path(_env("HELPDESK_DATA_DIR", "./var")).resolve()
        tokens = read_tokens(data_dir)
        gateway_listen = _env("HELPDESK_GATEWAY_LISTEN", "127.0.0.1:8080")
        return cls(
            data_dir=data_dir,
            database_url=_env("HELPDESK_DATABASE_URL"),
            temporal_address=_env("HELPDESK_TEMPORAL_ADDRESS", "127.0.0.1:7233"),
            temporal_namespace=_env("HELPDESK_TEMPORAL_NAMESPACE", "default"),
            nats_url=_env("HELPDESK_NATS_URL", "nats://127.0.0.1:4222"),
            intake_addr=_env("HELPDESK_INTAKE_ADDR", DEFAULT_ADDRS["intake"]),
            tickets_addr=_env("HELPDESK_TICKETS_ADDR", DEFAULT_ADDRS["tickets"]),
            dev_escalation_addr=_env(
                "HELPDESK_DEV_ESCALATION_ADDR", DEFAULT_ADDRS["dev_escalation"]
            ),
            notify_addr=_env("HELPDESK_NOTIFY_ADDR", DEFAULT_ADDRS["notify"]),
            smtp_listen=_env("HELPDESK_SMTP_LISTEN", "127.0.0.1:2525"),
            smtp_relay=_env("HELPDESK_SMTP_RELAY"),
            mail_from=_env("HELPDESK_MAIL_FROM", "assistenza@helpdesk.localhost"),
            mail_aliases=tuple(
                a.strip() for a in _env("HELPDESK_MAIL_ALIASES").split(",") if a.strip()
            ),
            webhook_listen=_env("HELPDESK_WEBHOOK_LISTEN", "127.0.0.1:8088"),
            admin_token=_env("HELPDESK_ADMIN_TOKEN", tokens.get("admin", "")),
            service_token=_env("HELPDESK_SERVICE_TOKEN", tokens.get("service", "")),
            auto_close_after=parse_duration(_env("HELPDESK_AUTO_CLOSE_AFTER", "14d")),
            start_work_within=parse_duration(_env("HELPDESK_DEV_START_WORK_WITHIN", "1h")),
            remote_update_notice=parse_duration(_env("HELPDESK_REMOTE_UPDATE_NOTICE", "1d")),
            third_party_reminder_days=_positive_int("HELPDESK_THIRD_PARTY_REMINDER_DAYS", "2"),
            intake_retry_base=parse_duration(_env("HELPDESK_INTAKE_RETRY_BASE", "10s")),
            signing_key=_env("HELPDESK_SIGNING_KEY", read_signing_key(data_dir)),
            smtp_max_message_bytes=_byte_size(
                "HELPDESK_SMTP_MAX_MESSAGE_BYTES", _env("HELPDESK_SMTP_MAX_MESSAGE_BYTES")
            ),
            mail_max_attachment_bytes=_byte_size(
                "HELPDESK_MAIL_MAX_ATTACHMENT_BYTES",
                _env("HELPDESK_MAIL_MAX_ATTACHMENT_BYTES"),
                default=20 * 1024 * 1024,
            ),
            fax_address=_env("HELPDESK_FAX_ADDRESS").lower(),
            gateway_listen=gateway_listen,
            portal_url=_env("HELPDESK_PORTAL_URL", f"http://{gateway_listen}").rstrip("/"),
            telegram_bot_token=_env("HELPDESK_TELEGRAM_BOT_TOKEN"),
            telegram_webhook_secret=_env("HELPDESK_TELEGRAM_WEBHOOK_SECRET"),
            telegram_api_base=_env("HELPDESK_TELEGRAM_API_BASE", "https://api.telegram.org"),
            whatsapp_app_secret=_env("HELPDESK_WHATSAPP_APP_SECRET"),
            whatsapp_verify_token=_env("HELPDESK_WHATSAPP_VERIFY_TOKEN"),
            whatsapp_access_token=_env("HELPDESK_WHATSAPP_ACCESS_TOKEN"),
            whatsapp_api_base=_env(
                "HELPDESK_WHATSAPP_API_BASE", "https://graph.facebook.com/v21.0"
            ),
            whatsapp_phone_number_id=_env("HELPDESK_WHATSAPP_PHONE_NUMBER_ID"),
            critical_keywords=tuple(
                k.strip().lower()
                for k in _env("HELPDESK_CRITICAL_KEYWORDS", DEFAULT_CRITICAL_KEYWORDS).split(",")
                if k.strip()
            ),
        )

    @property
    def telegram_enabled(self) -> bool:
        """Telegram needs the bot token and the webhook secret (never an open webhook)."""
        return bool(self.telegram_bot_token and self.telegram_webhook_secret)

    @property
    def whatsapp_enabled(self) -> bool:
        """WhatsApp needs the app secret, the verify token, the access token and the
        phone number ID."""
        return bool(
            self.whatsapp_app_secret
            and self.whatsapp_verify_token
            and self.whatsapp_access_token
            and self.whatsapp_phone_number_id
        )

    def token_signing_key(self) -> str:
        """The key that signs and checks login and link tokens in every service.

        ``HELPDESK_SIGNING_KEY`` (or the data dir's ``signing.key``); without one, a key
        derived from ``HELPDESK_SERVICE_TOKEN`` (a secret every service that checks tokens
        already holds). Neither: ``MissingSecret``, so that no process ever signs with a
        key anyone could read in the source."""
        if self.signing_key:
            if len(self.signing_key) < MIN_SIGNING_KEY:
                raise MissingSecret(
                    f"HELPDESK_SIGNING_KEY must be at least {MIN_SIGNING_KEY} characters"
                    f" (e.g. `openssl rand -hex 32`), got {len(self.signing_key)}"
                )
            return self.signing_key
        if self.service_token:
            return hmac.new(
                b"helpdesk-token-signing", self.service_token.encode(), hashlib.sha256
            ).hexdigest()
        raise MissingSecret(
            "no token signing key: set HELPDESK_SIGNING_KEY (at least"
            f" {MIN_SIGNING_KEY} characters, e.g. `openssl rand -hex 32`), or write it to"
            f" {self.data_dir / SIGNING_KEY_FILE}, or set HELPDESK_SERVICE_TOKEN; `make run`"
            " generates them in the data dir (HELPDESK_DATA_DIR)"
        )

    def database_url_for(self, service: str) -> str:
        """The SQLAlchemy async URL of one service's store.

        Unset: one SQLite file per service in the data dir. A PostgreSQL URL
        (``postgresql://...``) is shared by every service, each keeping to
        its own tables.
        """
        if not self.database_url:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            return f"sqlite+aiosqlite:///{self.data_dir / f'{service}.db'}"
        return async_database_url(self.database_url)


def async_database_url(url: str) -> str:
    """Map a plain database URL to its asyncio driver (asyncpg, aiosqlite)."""
    for prefix in ("postgresql+asyncpg://", "sqlite+aiosqlite://"):
        if url.startswith(prefix):
            return url
    for prefix in ("postgresql://", "postgres://", "postgresql+psycopg://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    if url.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + url[len("sqlite://") :]
    raise ValueError(f"HELPDESK_DATABASE_URL: unsupported database URL scheme in {url!r}")


def read_tokens(data_dir: Path) -> dict[str, str]:
    """Tokens that ``make run`` generated and stored under the data dir, if any."""
    tokens: dict[str, str] = {}
    for name in ("admin", "service"):
        path = data_dir / f"{name}.token"
        if path.is_file():
            tokens[name] = path.read_text().strip()
    return tokens


def read_signing_key(data_dir: Path) -> str:
    """The token signing key that ``make run`` generated in the data dir, if any."""
    path = data_dir / SIGNING_KEY_FILE
    return path.read_text().strip() if path.is_file() else ""


def _byte_size(name: str, value: str, default: int = 25 * 1024 * 1024) -> int:
    """``26214400``, ``25MiB``, ``10M``, ``512k``; empty: ``default``."""
    if not value:
        return default
    units = {
        "": 1,
        "b": 1,
        "k": 1024,
        "kb": 1024,
        "kib": 1024,
        "m": 1024**2,
        "mb": 1024**2,
        "mib": 1024**2,
        "g": 1024**3,
        "gb": 1024**3,
        "gib": 1024**3,
    }
    number = value.rstrip("bBkKmMgGiI ")
    unit = value[len(number) :].strip().lower()
    try:
        size = int(number) * units[unit]
    except (ValueError, KeyError):
        raise ValueError(f"{name}: {value!r} is not a size (26214400, 25MiB, 512k)") from None
    if size <= 0:
        raise ValueError(f"{name}: must be positive")
    return size


def split_hostport(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    return host or "127.0.0.1", int(port)
