"""Who may call what: the table of every RPC against every role, enforced by the one
server interceptor in ``services/common/auth.py``.

Rows are full gRPC method names; a role absent from a row gets
``PERMISSION_DENIED``. ``PUBLIC`` rows need no token at all (logging in, the emailed
links whose own token the servicer checks, the sales form).
What a permitted caller may then *see* (own tickets, own organisation, no
internal comments) is decided in the servicers, with the same principal.
"""

from __future__ import annotations

import hashlib
from contextvars import ContextVar
from dataclasses import dataclass
from enum import StrEnum

import grpc

from services.common.rpc_errors import RpcError


class Role(StrEnum):
    USER = "USER"  # a customer's employee (contact)
    REFERENT = "REFERENT"  # the company referent (contact): all of the organisation's tickets
    FRONT_DESK = "FRONT_DESK"
    AGENT = "AGENT"
    TEAM_LEAD = "TEAM_LEAD"
    DEVELOPER = "DEVELOPER"
    ADMIN = "ADMIN"
    SALES = "SALES"  # the sales office (seeds 003/004): works the sales requests
    SERVICE = "SERVICE"  # service-to-service calls


CUSTOMERS = frozenset({Role.USER, Role.REFERENT})
SUPPORT = frozenset({Role.AGENT, Role.TEAM_LEAD})
STAFF = frozenset({Role.FRONT_DESK, Role.AGENT, Role.TEAM_LEAD, Role.ADMIN})
TRUSTED = frozenset({Role.ADMIN, Role.SERVICE})
EVERYONE = frozenset(Role)
PUBLIC = frozenset[Role]()  # marker: no token needed


@dataclass(frozen=True)
class Principal:
    """The caller, as its token says: never as the request says."""

    role: Role
    kind: str  # "CONTACT" | "AGENT" | "ADMIN" | "SERVICE"
    id: int = 0
    organization_id: int = 0  # contacts only
    name: str = ""

    @property
    def is_customer(self) -> bool:
        return self.role in CUSTOMERS

    @property
    def is_trusted(self) -> bool:
        """Admin and services may act on behalf of the actor named in a request."""
        return self.role in TRUSTED


current_principal: ContextVar[Principal | None] = ContextVar("current_principal", default=None)


def principal() -> Principal:
    """The authenticated caller of the RPC being served."""
    who = current_principal.get()
    if who is None:
        raise RuntimeError("no authenticated principal in this context")
    return who


_D = "/helpdesk.v1.DirectoryService/"
_T = "/helpdesk.v1.TicketService/"
_I = "/helpdesk.v1.IntakeService/"
_N = "/helpdesk.v1.NotifyService/"
_E = "/helpdesk.v1.DevEscalationService/"
_K = "/helpdesk.v1.KnowledgeService/"
_S = "/helpdesk.v1.SalesService/"
# Who works the sales requests (assign, update, reply), and who sees every one of them.
SALES_OFFICE = frozenset({Role.SALES, Role.TEAM_LEAD, Role.ADMIN})
SALES_READERS = STAFF | SALES_OFFICE | {Role.SERVICE}

ACCESS: dict[str, frozenset[Role]] = {
    # -- directory ---------------------------------------------------------------
    _D + "CreateOrganization": TRUSTED,
    _D + "GetOrganization": EVERYONE - {Role.DEVELOPER},  # customers: their own only
    _D + "ListOrganizations": STAFF | TRUSTED | {Role.SALES},
    _D + "GetOrganizationByDomain": STAFF | TRUSTED,
    _D + "AddContact": frozenset({Role.FRONT_DESK, Role.TEAM_LEAD}) | TRUSTED,
    _D + "GetContact": EVERYONE - {Role.DEVELOPER},  # customers: own organisation only
    _D + "GetContactByEmail": STAFF | TRUSTED | {Role.SALES},
    _D + "ListContacts": STAFF | TRUSTED | {Role.REFERENT},  # referents: own organisation
    _D + "CreateAgent": TRUSTED,
    _D + "GetAgent": STAFF | TRUSTED | {Role.DEVELOPER, Role.SALES},
    _D + "GetAgentByEmail": STAFF | TRUSTED,
    _D + "ListAgents": STAFF | TRUSTED | {Role.DEVELOPER, Role.SALES},
    _D + "SetAgentDuty": frozenset({Role.TEAM_LEAD}) | TRUSTED,
    _D + "Login": PUBLIC,
    _D + "RefreshToken": PUBLIC,
    _D + "SetPassword": EVERYONE - {Role.SERVICE},  # own password; admins anyone's
    _D + "RequestPasswordReset": PUBLIC,
    _D + "ResetPassword": PUBLIC,
    # Business calendars, SLA plans and contracts.
    _D + "CreateCalendar": frozenset({Role.TEAM_LEAD}) | TRUSTED,
    _D + "ListCalendars": STAFF | TRUSTED,
    _D + "CreateSlaPlan": frozenset({Role.TEAM_LEAD}) | TRUSTED,
    _D + "ListSlaPlans": STAFF | TRUSTED,
    _D + "SetContract": frozenset({Role.TEAM_LEAD}) | TRUSTED,
    _D + "GetContract": STAFF | TRUSTED | {Role.REFERENT},  # referents: own organisation
    # Instant messaging identities: links are made by intake after the code.
    _D + "GetContactByIm": STAFF | TRUSTED,
    _D + "LinkContactIm": TRUSTED,
    _D + "LinkAgentIm": frozenset({Role.TEAM_LEAD}) | TRUSTED,
    # Agents: their own alerts; team leads and admins: anyone's (checked by the servicer).
    _D + "SetAgentNotifications": STAFF | TRUSTED,
    # Seed 000's front desk: callers looked up across organisations, their numbers kept.
    _D + "FindContacts": STAFF | TRUSTED | {Role.SALES},
    _D + "SetContactPhone": STAFF | TRUSTED,
    # -- tickets -------------------------------------------------------------------
    _T + "CreateTicket": STAFF | TRUSTED | CUSTOMERS,  # customers: as themselves
    _T + "GetTicket": STAFF | TRUSTED | CUSTOMERS,  # customers: visible tickets only
    _T + "ListTickets": STAFF | TRUSTED | CUSTOMERS,
    _T + "AssignTicket": SUPPORT | TRUSTED,  # agents: to themselves; leads: anyone
    _T + "AddComment": STAFF | TRUSTED | CUSTOMERS,  # customers: public, as themselves
    _T + "ChangeStatus": SUPPORT | TRUSTED,
    _T + "ReopenTicket": SUPPORT | TRUSTED | CUSTOMERS,
    _T + "ConfirmSolution": SUPPORT | TRUSTED | CUSTOMERS,
    _T + "ListComments": STAFF | TRUSTED | CUSTOMERS,  # customers: public comments only
    _T + "GetTicketHistory": STAFF | TRUSTED | CUSTOMERS,  # customers: no internal notes
    _T + "EscalateToDevelopment": SUPPORT | TRUSTED,
    _T + "DetachProgrammingTicket": SUPPORT | TRUSTED,
    _T + "HoldForThirdParty": SUPPORT | TRUSTED,
    _T + "LogTime": SUPPORT | TRUSTED,
    _T + "MergeTickets": SUPPORT | TRUSTED,
    # Seed 002's survey: the email's token is the credential (checked by the servicer);
    # without one, the requester or a trusted caller (intake: an answer by email).
    _T + "SubmitSatisfaction": PUBLIC,
    # The solved email's confirm / reopen links: their token is the credential, likewise.
    _T + "GetTicketByLink": PUBLIC,
    _T + "UseTicketLink": PUBLIC,
    # Customers: their visible tickets' files only, never an internal comment's.
    _T + "DownloadAttachment": STAFF | TRUSTED | CUSTOMERS,
    _T + "GetReport": STAFF | TRUSTED | {Role.REFERENT},  # referents: own organisation
    _T + "ChangePriority": SUPPORT | TRUSTED,
    _T + "RequalifyTicket": SUPPORT | TRUSTED,
    # Answers by phone or remote session, and planned remote updates (seed 000).
    _T + "RecordInteraction": SUPPORT | TRUSTED,
    _T + "PlanMaintenance": SUPPORT | TRUSTED,
    _T + "MarkMaintenanceStarted": SUPPORT | TRUSTED,
    _T + "MarkMaintenanceFinished": SUPPORT | TRUSTED,
    _T + "ListMaintenance": STAFF | TRUSTED,
    _T + "SendReport": frozenset({Role.TEAM_LEAD}) | TRUSTED,
    # Seed 000: an answer re-sent by the ticket's ID; followers (CC) added by the desk or by
    # intake (a mail's Cc).
    _T + "ResendAnswers": SUPPORT | TRUSTED,
    _T + "AddFollower": SUPPORT | TRUSTED,
    _T + "RemoveFollower": SUPPORT | TRUSTED,
    # Full-text search: customers among their visible tickets, never internal notes.
    _T + "SearchTickets": STAFF | TRUSTED | CUSTOMERS,
    _T + "SimilarTickets": STAFF | TRUSTED,
    _T + "CountTickets": STAFF | TRUSTED | CUSTOMERS,  # customers: visible tickets only
    # -- knowledge base: written by agents and team leads, read by customers as published --
    _K + "CreateArticle": SUPPORT | TRUSTED,
    _K + "UpdateArticle": SUPPORT | TRUSTED,
    _K + "PublishArticle": SUPPORT | TRUSTED,
    _K + "GetArticle": STAFF | TRUSTED | CUSTOMERS,
    _K + "ListArticles": STAFF | TRUSTED | CUSTOMERS,
    _K + "SearchArticles": STAFF | TRUSTED | CUSTOMERS,
    _K + "SuggestArticles": STAFF | TRUSTED | CUSTOMERS,
    _K + "RecordDeflection": TRUSTED | CUSTOMERS,
    # -- sales office (seeds 003/004): customers see their own requests (a referent their
    # organisation's; checked by the servicer), agents read, the sales office works them --
    _S + "ListSalesRequests": SALES_READERS | CUSTOMERS,
    _S + "GetSalesRequest": SALES_READERS | CUSTOMERS,
    _S + "CreateSalesRequest": CUSTOMERS | SALES_OFFICE | {Role.FRONT_DESK},
    _S + "RecordSalesRequest": frozenset({Role.SERVICE}),  # intake's stored mails and forms
    _S + "RecordSalesReply": frozenset({Role.SERVICE}),
    _S + "AssignSalesRequest": SALES_OFFICE,
    _S + "UpdateSalesRequest": SALES_OFFICE,
    _S + "ReplyToSalesRequest": SALES_OFFICE,
    _S + "UploadPriceList": frozenset({Role.ADMIN}),
    _S + "GetPriceList": EVERYONE,
    _S + "ListPriceLists": EVERYONE,
    # Quotes (seed 003), as sales.proto says: written and sent by the desk and the sales
    # office, seen by the ticket's organisation, accepted or declined by its customers.
    _S + "CreateQuote": SUPPORT | SALES_OFFICE,
    _S + "SendQuote": SUPPORT | SALES_OFFICE,
    _S + "GetQuote": SALES_READERS | CUSTOMERS,
    _S + "ListQuotes": SALES_READERS | CUSTOMERS,
    _S + "AcceptQuote": CUSTOMERS | TRUSTED,
    _S + "DeclineQuote": CUSTOMERS | TRUSTED,
    # -- intake ----------------------------------------------------------------------
    _I + "SubmitWebRequest": STAFF | TRUSTED | CUSTOMERS,  # customers: as themselves
    _I + "LogPhoneCall": STAFF | TRUSTED,
    _I + "SubmitEmail": TRUSTED,  # mail fetchers run with the service or admin token
    _I + "ListSalesRequests": STAFF | TRUSTED,  # prospects routed to sales (seed 003)
    # Seed 003's web form for non-customers (the gateway calls it with no token); bounded
    # per email address by the servicer.
    _I + "SubmitSalesRequest": PUBLIC,
    _I + "RegisterImGroup": frozenset({Role.TEAM_LEAD}) | TRUSTED,  # seed 001 group channel
    # -- notify ------------------------------------------------------------------------
    _N + "ListNotifications": STAFF | TRUSTED,
    # -- developers --------------------------------------------------------------------
    _E + "ListProgrammingTickets": frozenset({Role.DEVELOPER, Role.TEAM_LEAD}) | TRUSTED,
    _E + "GetProgrammingTicket": frozenset({Role.DEVELOPER, Role.TEAM_LEAD}) | TRUSTED,
    # Developers act as themselves; leads may name a developer; admin/service must name one.
    _E + "StartWork": frozenset({Role.DEVELOPER, Role.TEAM_LEAD}) | TRUSTED,
    _E + "Schedule": frozenset({Role.DEVELOPER, Role.TEAM_LEAD}) | TRUSTED,
    _E + "MarkFixed": frozenset({Role.DEVELOPER, Role.TEAM_LEAD}) | TRUSTED,
    _E + "ShipUpdate": frozenset({Role.DEVELOPER, Role.TEAM_LEAD}) | TRUSTED,
    _E + "Cancel": frozenset({Role.DEVELOPER, Role.TEAM_LEAD}) | TRUSTED,
}


# Idempotency keys only the help desk's own services make: intake's channels (a Telegram or
# WhatsApp update, a stored email, a web or phone request), notify's notes on a ticket and
# the tickets service's follow-ups of closed tickets.
INTERNAL_KEY_PREFIXES = ("im:", "email:", "intake:", "follow-up:", "notify-bounce:")
MAX_STORED_KEY = 200


def scoped_key(field: str, key: str, who: Principal) -> str:
    """The stored form of ``who``'s idempotency ``key``, so that one caller's key never
    meets another's: a retry finds the caller's own earlier request and nothing else.

    The ``SERVICE`` principal's keys are stored as they are (intake's ``email:...`` and
    ``im:...``, which must stay stable across retries and releases) and only it may use the
    internal prefixes; anyone else's key is stored under the caller (``contact-12/...``,
    ``agent-3/...``, ``admin/...``), hashed when that would be longer than a stored key
    may be. "" stays "" (no key). An internal prefix from anyone else: ``INVALID_ARGUMENT``
    naming ``field``."""
    if not key:
        return ""
    if who.role is Role.SERVICE:
        return key
    for prefix in INTERNAL_KEY_PREFIXES:
        if key.startswith(prefix):
            raise RpcError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"{field}: the prefix {prefix!r} is reserved for the help desk's services",
            )
    scope = who.kind.lower() if who.kind in ("ADMIN", "SERVICE") else f"{who.kind.lower()}-{who.id}"
    stored = f"{scope}/{key}"
    if len(stored) <= MAX_STORED_KEY:
        return stored
    return f"{scope}/sha256:{hashlib.sha256(key.encode()).hexdigest()}"


def allowed(method: str, role: Role) -> bool:
    """True when ``role`` may call ``method``; unknown methods are allowed to nobody."""
    roles = ACCESS.get(method)
    return roles is not None and (not roles or role in roles)


def is_public(method: str) -> bool:
    return ACCESS.get(method) == PUBLIC
