"""Credentials of contacts and agents: generated passwords (seed 004), Argon2 hashes,
login with lock-out, refresh, password change and reset by emailed code.

Secrets leave this service only on the ``HELPDESK_SECRETS`` stream, which
keeps messages for an hour, never on the durable ticket stream.

Every hash and verification runs on the bounded pool of ``login_guard`` (never on the
event loop that serves the ticket RPCs), and the three unauthenticated calls (login, reset
request, reset) are limited per source and per email address. A wrong reset code counts
as a wrong password: five lock the account (and void the code) for 15 minutes. An unknown
address costs the same work and gets the same answer as a known one.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from datetime import UTC, datetime, timedelta

import grpc
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from helpdesk.v1 import directory_pb2 as dpb
from services.common.access import Principal, Role
from services.common.events import SecretPublisher
from services.common.rpc_errors import RpcError, invalid
from services.common.tokens import ACCESS_TTL, InvalidToken, TokenSigner, may_sign
from services.tickets import models as m
from services.tickets.login_guard import HashPool, LoginLimits, default_pool

log = logging.getLogger("helpdesk.credentials")

MAX_FAILURES = 5
LOCK_FOR = timedelta(minutes=15)
RESET_VALID_FOR = timedelta(minutes=30)
MIN_PASSWORD = 10
MAX_PASSWORD = 256
_hasher = PasswordHasher()
# Verified against when no account matches, so that timing does not reveal which emails exist.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def check_new_password(field: str, password: str) -> None:
    if len(password) < MIN_PASSWORD:
        invalid(field, f"must be at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        invalid(field, f"must be at most {MAX_PASSWORD} characters")


def _unauthenticated(message: str = "wrong email or password") -> RpcError:
    return RpcError(grpc.StatusCode.UNAUTHENTICATED, message)


def _verify(stored: str, presented: str) -> bool:
    try:
        return _hasher.verify(stored, presented)
    except (VerificationError, InvalidHashError):
        return False


def _email_key(email: str) -> str:
    return email.strip().lower()


class Credentials:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        signer: TokenSigner,
        secrets_out: SecretPublisher | None,
        *,
        hashing: HashPool | None = None,
        limits: LoginLimits | None = None,
    ) -> None:
        self.sessions = sessions
        self.signer = signer
        self.secrets_out = secrets_out
        self.hashing = hashing or default_pool()
        self.limits = limits or LoginLimits()

    async def _hash(self, secret: str) -> str:
        """Argon2 on the pool (the caller holds a place: ``self.hashing.admitted()``)."""
        return await self.hashing.run(_hasher.hash, secret)

    async def _verify(self, stored: str, presented: str) -> bool:
        return await self.hashing.run(_verify, stored, presented)

    async def issue(self, session: AsyncSession, kind: str, principal_id: int, email: str) -> str:
        """A new credential with a generated password (caller commits); returns it."""
        password = secrets.token_urlsafe(12)
        with self.hashing.admitted(bounded=False):
            password_hash = await self._hash(password)
        session.add(
            m.Credential(
                kind=kind,
                principal_id=principal_id,
                email_key=email.lower(),
                password_hash=password_hash,
                failed_attempts=0,
                version=1,
                reset_code_hash="",
                updated_at=datetime.now(UTC),
            )
        )
        return password

    async def send_password(
        self, kind: str, email: str, name: str, locale: str, password: str, org_name: str
    ) -> None:
        """Email a freshly generated password to its owner (seed 004)."""
        await self._send("credentials_issued", kind, email, name, locale, password, None, org_name)

    async def _send(
        self,
        kind_of_mail: str,
        kind: str,
        email: str,
        name: str,
        locale: str,
        secret: str,
        expires_at: datetime | None,
        org_name: str,
    ) -> None:
        if self.secrets_out is None:
            return
        try:
            await self.secrets_out.publish(
                kind_of_mail,
                {
                    "event_id": f"{kind_of_mail}-{uuid.uuid4().hex}",
                    "type": kind_of_mail,
                    "recipient": {"email": email, "name": name, "locale": locale},
                    "kind": kind,
                    "secret": secret,
                    "expires_at": expires_at.isoformat() if expires_at else None,
                    "organization_name": org_name,
                },
            )
        except Exception:
            # The account exists either way; a reset request sends a new secret.
            log.exception("could not queue the %s email for %s", kind_of_mail, kind)

    async def _principal(self, session: AsyncSession, cred: m.Credential) -> Principal:
        if cred.kind == "CONTACT":
            contact = await session.get(m.Contact, cred.principal_id)
            if contact is None:
                raise _unauthenticated()
            return Principal(
                role=Role(contact.role),
                kind="CONTACT",
                id=contact.id,
                organization_id=contact.organization_id,
                name=contact.name,
            )
        agent = await session.get(m.Agent, cred.principal_id)
        if agent is None:
            raise _unauthenticated()
        return Principal(role=Role(agent.role), kind="AGENT", id=agent.id, name=agent.name)

    def _tokens(self, who: Principal, version: int) -> dpb.LoginResponse:
        if not may_sign(who.kind, who.role):
            # ADMIN (and SERVICE) exist only as the static tokens: no signed token carries them.
            raise RpcError(
                grpc.StatusCode.PERMISSION_DENIED,
                f"a {who.role.value} signs in with the admin token, not with a password",
            )
        return dpb.LoginResponse(
            access_token=self.signer.access_token(who),
            refresh_token=self.signer.refresh_token(who.kind, who.id, version),
            expires_in_seconds=ACCESS_TTL,
            kind=dpb.PRINCIPAL_KIND_CONTACT if who.kind == "CONTACT" else dpb.PRINCIPAL_KIND_AGENT,
            id=who.id,
            role=who.role.value,
            organization_id=who.organization_id,
            name=who.name,
        )

    async def _by_email(self, session: AsyncSession, email: str) -> m.Credential | None:
        return (
            await session.scalars(
                select(m.Credential).where(m.Credential.email_key == email.strip().lower())
            )
        ).first()

    def _limit(self, per_source: str, per_email: str, source: str, email: str) -> None:
        """Count one attempt from ``source`` for ``email`` (``RESOURCE_EXHAUSTED`` past a
        limit; an unknown address counts like a known one)."""
        getattr(self.limits, per_source).check(source)
        getattr(self.limits, per_email).check(_email_key(email))

    @staticmethod
    def _failed(cred: m.Credential, now: datetime, what: str) -> None:
        """One more wrong password or reset code; the fifth locks the account for a while
        and voids its reset code (caller commits)."""
        cred.failed_attempts += 1
        if cred.failed_attempts >= MAX_FAILURES:
            cred.locked_until = now + LOCK_FOR
            cred.failed_attempts = 0
            cred.reset_code_hash = ""
            cred.reset_expires_at = None
            log.warning(
                "locked %s#%d after %d failed %s", cred.kind, cred.principal_id, MAX_FAILURES, what
            )
        cred.updated_at = now

    async def login(self, email: str, password: str, source: str = "") -> dpb.LoginResponse:
        if not email.strip() or len(email) > 320:
            invalid("email", "is required and at most 320 characters")
        if not password or len(password) > MAX_PASSWORD:
            invalid("password", f"is required and at most {MAX_PASSWORD} characters")
        self._limit("login_per_source", "login_per_email", source, email)
        with self.hashing.admitted():
            return await self._login(email, password)

    async def _login(self, email: str, password: str) -> dpb.LoginResponse:
        now = datetime.now(UTC)
        async with self.sessions() as session:
            cred = await self._by_email(session, email)
            if cred is None:
                await self._verify(_DUMMY_HASH, password)
                raise _unauthenticated()
            if cred.locked_until is not None and cred.locked_until > now:
                raise _unauthenticated("account locked after repeated failures; try later")
            if not await self._verify(cred.password_hash, password):
                self._failed(cred, now, "logins")
                await session.commit()
                raise _unauthenticated()
            cred.failed_attempts = 0
            cred.locked_until = None
            if _hasher.check_needs_rehash(cred.password_hash):
                cred.password_hash = await self._hash(password)
            cred.updated_at = now
            who = await self._principal(session, cred)
            tokens = self._tokens(who, cred.version)
            await session.commit()
            return tokens

    async def refresh(self, token: str) -> dpb.LoginResponse:
        if not token or len(token) > 4096:
            invalid("refresh_token", "is required")
        try:
            claims = self.signer.refresh_claims(token)
        except InvalidToken:
            raise _unauthenticated("invalid refresh token") from None
        async with self.sessions() as session:
            cred = (
                await session.scalars(
                    select(m.Credential).where(
                        m.Credential.kind == claims.kind,
                        m.Credential.principal_id == claims.id,
                    )
                )
            ).first()
            if cred is None or cred.version != claims.version:
                raise _unauthenticated("invalid refresh token")
            return self._tokens(await self._principal(session, cred), cred.version)

    async def set_password(
        self, who: Principal, kind: str, principal_id: int, current: str, new: str
    ) -> None:
        check_new_password("new_password", new)
        is_self = who.kind == kind and who.id == principal_id
        if not is_self and who.role is not Role.ADMIN:
            raise RpcError(
                grpc.StatusCode.PERMISSION_DENIED,
                "only the person or an admin may change a password",
            )
        async with self.sessions() as session:
            cred = (
                await session.scalars(
                    select(m.Credential).where(
                        m.Credential.kind == kind, m.Credential.principal_id == principal_id
                    )
                )
            ).first()
            if cred is None:
                raise RpcError(
                    grpc.StatusCode.NOT_FOUND, f"{kind.lower()} {principal_id} has no credentials"
                )
            with self.hashing.admitted(bounded=False):
                if is_self and not await self._verify(cred.password_hash, current):
                    raise _unauthenticated("current_password is wrong")
                self._replace(cred, await self._hash(new))
            await session.commit()

    @staticmethod
    def _replace(cred: m.Credential, new_hash: str) -> None:
        cred.password_hash = new_hash
        cred.version += 1
        cred.failed_attempts = 0
        cred.locked_until = None
        cred.reset_code_hash = ""
        cred.reset_expires_at = None
        cred.updated_at = datetime.now(UTC)

    async def request_reset(self, email: str, source: str = "") -> None:
        """Emails a one-time code when the address has credentials; silent otherwise, after
        the same work (the code is hashed either way)."""
        if not email.strip() or len(email) > 320:
            invalid("email", "is required and at most 320 characters")
        self._limit("reset_request_per_source", "reset_request_per_email", source, email)
        code = f"{secrets.randbelow(10**8):08d}"
        with self.hashing.admitted():
            code_hash = await self._hash(code)
        async with self.sessions() as session:
            cred = await self._by_email(session, email)
            if cred is None:
                return
            cred.reset_code_hash = code_hash
            cred.reset_expires_at = datetime.now(UTC) + RESET_VALID_FOR
            cred.updated_at = datetime.now(UTC)
            who = await self._principal(session, cred)
            locale, name, address = "it", who.name, email.strip()
            if cred.kind == "CONTACT":
                contact = await session.get(m.Contact, cred.principal_id)
                if contact is not None:
                    locale, address = contact.locale, contact.email
            await session.commit()
            expires = cred.reset_expires_at
        await self._send("password_reset", cred.kind, address, name, locale, code, expires, "")

    async def reset(self, email: str, code: str, new: str, source: str = "") -> None:
        """A new password with the emailed code. Wrong codes count as failed logins (the
        fifth locks the account and voids the code); an unknown address, no pending code or
        an expired one cost the same verification and get the same answer."""
        check_new_password("new_password", new)
        if not code.strip() or len(code) > 64:
            invalid("code", "is required")
        if not email.strip() or len(email) > 320:
            invalid("email", "is required and at most 320 characters")
        self._limit("reset_per_source", "reset_per_email", source, email)
        with self.hashing.admitted():
            await self._reset(email, code.strip(), new)

    async def _reset(self, email: str, code: str, new: str) -> None:
        now = datetime.now(UTC)
        async with self.sessions() as session:
            cred = await self._by_email(session, email)
            pending = (
                cred is not None
                and bool(cred.reset_code_hash)
                and cred.reset_expires_at is not None
                and cred.reset_expires_at > now
            )
            stored = cred.reset_code_hash if cred is not None and pending else _DUMMY_HASH
            matches = await self._verify(stored, code)
            if cred is None:
                raise _unauthenticated("invalid or expired reset code")
            if cred.locked_until is not None and cred.locked_until > now:
                raise _unauthenticated("account locked after repeated failures; try later")
            if not (pending and matches):
                self._failed(cred, now, "reset codes")
                await session.commit()
                raise _unauthenticated("invalid or expired reset code")
            self._replace(cred, await self._hash(new))
            await session.commit()
