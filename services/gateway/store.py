"""Sessions in the database: create at sign-in, read per request, refresh, end at logout.

Several gateway replicas share one table, so any of them serves any browser.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.common import db
from services.common.settings import Settings
from services.gateway.models import WebSession

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version_gateway"
# A refresh token lives 7 days (services/common/tokens.py); so does a session at most.
SESSION_TTL = timedelta(days=7)


async def migrate(settings: Settings) -> None:
    await db.upgrade(MIGRATIONS, settings.database_url_for("gateway"), VERSION_TABLE)


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


@dataclass(frozen=True)
class SignIn:
    """What ``DirectoryService.Login`` said about the person."""

    kind: str
    principal_id: int
    role: str
    organization_id: int
    name: str
    email: str
    locale: str
    access_token: str
    refresh_token: str
    expires_in_seconds: int


class SessionStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def create(self, who: SignIn) -> tuple[str, WebSession]:
        """A new session; returns the cookie value (never stored) and the row."""
        session_id = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        row = WebSession(
            id_hash=_hash(session_id),
            kind=who.kind,
            principal_id=who.principal_id,
            role=who.role,
            organization_id=who.organization_id,
            name=who.name,
            email=who.email,
            locale=who.locale,
            access_token=who.access_token,
            refresh_token=who.refresh_token,
            access_expires_at=now + timedelta(seconds=who.expires_in_seconds),
            expires_at=now + SESSION_TTL,
            created_at=now,
        )
        async with self._sessions() as session:
            session.add(row)
            await session.commit()
        return session_id, row

    async def get(self, session_id: str) -> WebSession | None:
        """The live session with this cookie value, or None."""
        if not session_id or len(session_id) > 100:
            return None
        async with self._sessions() as session:
            row = await session.get(WebSession, _hash(session_id))
        if row is None or row.expires_at <= datetime.now(UTC):
            return None
        return row

    async def update_tokens(
        self, row: WebSession, access_token: str, refresh_token: str, expires_in: int
    ) -> WebSession:
        async with self._sessions() as session:
            stored = await session.get(WebSession, row.id_hash)
            if stored is None:
                return row
            stored.access_token = access_token
            stored.refresh_token = refresh_token or stored.refresh_token
            stored.access_expires_at = datetime.now(UTC) + timedelta(seconds=expires_in)
            await session.commit()
            return stored

    async def end(self, session_id: str) -> None:
        async with self._sessions() as session:
            await session.execute(delete(WebSession).where(WebSession.id_hash == _hash(session_id)))
            await session.commit()

    async def purge_expired(self) -> None:
        async with self._sessions() as session:
            await session.execute(
                delete(WebSession).where(WebSession.expires_at <= datetime.now(UTC))
            )
            await session.commit()
