"""Signed tokens (JWT, HS256): access and refresh tokens for logged-in contacts and agents,
and the link tokens emailed to customers (survey, confirm / reopen), each link kind with
its own audience so that no token works where another kind is expected.

Only HS256 is accepted (``alg: none``, HS512, RS256, ... are refused), ``exp`` is always
required and checked, and an access token names a contact (``USER`` / ``REFERENT``) or an
agent (a staff role): ``ADMIN`` and ``SERVICE`` are carried only by the static bootstrap
tokens (``services/common/auth.py``), so whoever holds the signing key still cannot sign
themselves one: such a token is never signed, and refused when presented."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import jwt

from services.common.access import Principal, Role

ISSUER = "helpdesk"
AUDIENCE = "helpdesk"
ACCESS_TTL = 15 * 60
REFRESH_TTL = 7 * 24 * 3600
# Survey link tokens (seed 002's questionnaire): their own audience, so that no login token
# answers a survey and no survey token logs in. Valid long enough to answer within 30 days
# and change the answer during the 7 days after it.
SURVEY_AUDIENCE = "helpdesk-survey"
SURVEY_TTL = 37 * 24 * 3600
# The confirm / reopen links of the solved email: their own audience; they expire when the
# ticket would close by itself, as after that there is nothing left to confirm or reopen.
LINK_AUDIENCE = "helpdesk-link"
LINK_ACTIONS = ("confirm", "reopen")


ALGORITHM = "HS256"
# Who a signed access token may name: the roles of contacts and of agents, never the
# static tokens' ADMIN and SERVICE.
SIGNED_ROLES = {
    "CONTACT": frozenset({Role.USER, Role.REFERENT}),
    "AGENT": frozenset({Role.FRONT_DESK, Role.AGENT, Role.TEAM_LEAD, Role.DEVELOPER, Role.SALES}),
}
MIN_KEY_LENGTH = 32


class InvalidToken(Exception):
    """Expired, tampered, wrongly signed, of another algorithm or audience, or naming a
    role that no signed token may carry."""


def may_sign(kind: str, role: Role) -> bool:
    """True when a signed access token may name a ``kind`` principal with ``role``."""
    return role in SIGNED_ROLES.get(kind, frozenset())


@dataclass(frozen=True)
class RefreshClaims:
    kind: str
    id: int
    version: int


class TokenSigner:
    def __init__(self, key: str) -> None:
        if len(key) < MIN_KEY_LENGTH:
            raise ValueError(f"HELPDESK_SIGNING_KEY must be at least {MIN_KEY_LENGTH} characters")
        self._key = key

    def _encode(
        self,
        claims: dict[str, object],
        ttl: int,
        audience: str = AUDIENCE,
        expires_at: int | None = None,
    ) -> str:
        now = int(time.time())
        body = {
            **claims,
            "iss": ISSUER,
            "aud": audience,
            "iat": now,
            "exp": now + ttl if expires_at is None else expires_at,
            "jti": secrets.token_hex(8),
        }
        return jwt.encode(body, self._key, algorithm=ALGORITHM)

    def _decode(self, token: str, typ: str, audience: str = AUDIENCE) -> dict[str, object]:
        try:
            # Checked before the signature too, so that the refusal says why.
            if jwt.get_unverified_header(token).get("alg") != ALGORITHM:
                raise InvalidToken(f"not an {ALGORITHM} token")
            claims: dict[str, object] = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                audience=audience,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "typ", "aud", "iss"]},
            )
        except jwt.PyJWTError as err:
            raise InvalidToken(str(err)) from None
        if claims.get("typ") != typ:
            raise InvalidToken(f"not an {typ} token")
        return claims

    def access_token(self, who: Principal) -> str:
        """A short-lived access token for a contact or an agent; ``ValueError`` for anyone
        else (``ADMIN`` and ``SERVICE`` exist only as the static tokens)."""
        if not may_sign(who.kind, who.role):
            raise ValueError(f"no signed token carries {who.kind} with role {who.role.value}")
        return self._encode(
            {
                "sub": f"{who.kind}:{who.id}",
                "typ": "access",
                "role": who.role.value,
                "org": who.organization_id,
                "name": who.name,
            },
            ACCESS_TTL,
        )

    def refresh_token(self, kind: str, principal_id: int, version: int) -> str:
        return self._encode(
            {"sub": f"{kind}:{principal_id}", "typ": "refresh", "ver": version}, REFRESH_TTL
        )

    def principal(self, token: str) -> Principal:
        """The principal an access token names (``InvalidToken`` otherwise)."""
        claims = self._decode(token, "access")
        kind, _, raw_id = str(claims["sub"]).partition(":")
        try:
            role = Role(str(claims.get("role", "")))
            who = Principal(
                role=role,
                kind=kind,
                id=int(raw_id),
                organization_id=int(str(claims.get("org", 0))),
                name=str(claims.get("name", "")),
            )
        except ValueError:
            raise InvalidToken("malformed claims") from None
        if not may_sign(who.kind, who.role) or who.id <= 0:
            raise InvalidToken(f"a signed token cannot carry {who.kind} with role {role.value}")
        return who

    def refresh_claims(self, token: str) -> RefreshClaims:
        claims = self._decode(token, "refresh")
        kind, _, raw_id = str(claims["sub"]).partition(":")
        try:
            return RefreshClaims(kind=kind, id=int(raw_id), version=int(str(claims["ver"])))
        except (KeyError, ValueError):
            raise InvalidToken("malformed claims") from None

    def survey_token(self, ticket_id: int, ttl: int = SURVEY_TTL) -> str:
        """The link token of a ticket's satisfaction survey (signed by notify)."""
        return self._encode(
            {"sub": f"ticket:{ticket_id}", "typ": "survey", "tid": ticket_id},
            ttl,
            audience=SURVEY_AUDIENCE,
        )

    def survey_ticket(self, token: str) -> int:
        """The ticket a survey token answers for (``InvalidToken`` otherwise)."""
        claims = self._decode(token, "survey", audience=SURVEY_AUDIENCE)
        try:
            ticket_id = int(str(claims["tid"]))
        except (KeyError, ValueError):
            raise InvalidToken("malformed claims") from None
        if ticket_id <= 0 or claims["sub"] != f"ticket:{ticket_id}":
            raise InvalidToken("malformed claims")
        return ticket_id

    def link_token(self, ticket_id: int, action: str, expires_at: int) -> str:
        """The token of a solved email's link: ``action`` ("confirm" or "reopen") on the
        ticket, until ``expires_at`` (Unix seconds: the ticket's auto-close instant)."""
        if action not in LINK_ACTIONS:
            raise ValueError(f"action: one of {', '.join(LINK_ACTIONS)}, not {action!r}")
        if ticket_id <= 0:
            raise ValueError("ticket_id: must be a positive ID")
        return self._encode(
            {"sub": f"ticket:{ticket_id}", "typ": "link", "tid": ticket_id, "act": action},
            0,
            audience=LINK_AUDIENCE,
            expires_at=int(expires_at),
        )

    def link_claims(self, token: str) -> tuple[int, str]:
        """(ticket ID, action) of a link token (``InvalidToken`` otherwise)."""
        claims = self._decode(token, "link", audience=LINK_AUDIENCE)
        try:
            ticket_id = int(str(claims["tid"]))
            action = str(claims["act"])
        except (KeyError, ValueError):
            raise InvalidToken("malformed claims") from None
        if ticket_id <= 0 or claims["sub"] != f"ticket:{ticket_id}" or action not in LINK_ACTIONS:
            raise InvalidToken("malformed claims")
        return ticket_id, action
