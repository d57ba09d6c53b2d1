"""``DirectoryService``: organisations, their contacts, and the help desk's agents."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import String, cast, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import directory_pb2_grpc as dgrpc
from services.common.access import principal
from services.common.rpc_errors import (
    Context,
    already_exists,
    invalid,
    not_found,
    optional_text,
    require_id,
    require_text,
    rpc_method,
)
from services.tickets import contact_search, paging
from services.tickets import models as m
from services.tickets.agent_notifications import check_may_set, notifications_pb, updated
from services.tickets.contracts_rpc import ContractRpcs
from services.tickets.convert import optional_name, required_name, value_of
from services.tickets.credentials import Credentials
from services.tickets.login_guard import client_source

LOCALES = ("it", "en")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_EMAIL = re.compile(r"^[^@\s<>\"',;]{1,64}@[A-Za-z0-9.-]{1,253}$")


def normalize_email(field: str, value: str) -> str:
    """A syntactically sane address (``INVALID_ARGUMENT`` naming ``field`` otherwise)."""
    email = require_text(field, value, 320)
    if not _EMAIL.match(email) or not _DOMAIN.match(email.rsplit("@", 1)[1].lower()):
        invalid(field, f"{email!r} is not an email address")
    return email


def locale_of(field: str, value: str, default: str) -> str:
    locale = value.strip().lower() or default
    if locale not in LOCALES:
        invalid(field, f"must be one of {', '.join(LOCALES)}")
    return locale


def org_pb(org: m.Organization) -> dpb.Organization:
    return dpb.Organization(
        id=org.id,
        name=org.name,
        email_domains=list(org.email_domains),
        closed_ticket_policy=value_of(pb.ClosedTicketPolicy, org.closed_ticket_policy),
        locale=org.locale,
        department_sees_tickets=org.department_sees_tickets,
        add_contacts_by_domain=org.add_contacts_by_domain,
    )


def contact_pb(contact: m.Contact, org_name: str = "") -> dpb.Contact:
    return dpb.Contact(
        id=contact.id,
        organization_id=contact.organization_id,
        name=contact.name,
        email=contact.email,
        phone=contact.phone,
        role=value_of(pb.ContactRole, contact.role),
        locale=contact.locale,
        organization_name=org_name,
        department=contact.department,
        telegram_user_id=contact.telegram_user_id or "",
        whatsapp_number=contact.whatsapp_number or "",
    )


def agent_pb(agent: m.Agent) -> dpb.Agent:
    return dpb.Agent(
        id=agent.id,
        name=agent.name,
        email=agent.email,
        role=value_of(pb.AgentRole, agent.role),
        on_call=agent.on_call,
        development_lead=agent.development_lead,
        telegram_user_id=agent.telegram_user_id,
        whatsapp_number=agent.whatsapp_number,
        notifications=notifications_pb(agent.notifications_off),
    )


async def find_contact_by_email(session: AsyncSession, email: str) -> m.Contact | None:
    return (
        await session.scalars(select(m.Contact).where(m.Contact.email_key == email.lower()))
    ).first()


async def add_contact(
    session: AsyncSession,
    org: m.Organization,
    name: str,
    email: str,
    phone: str = "",
    role: str = "USER",
    locale: str = "",
    department: str = "",
) -> m.Contact:
    """Insert a contact (caller commits); ``ALREADY_EXISTS`` when the email is taken."""
    if await find_contact_by_email(session, email) is not None:
        already_exists(f"a contact with email {email} already exists")
    contact = m.Contact(
        organization_id=org.id,
        name=name,
        email=email,
        email_key=email.lower(),
        phone=phone,
        role=role or "USER",
        locale=locale or org.locale,
        department=department,
        created_at=datetime.now(UTC),
    )
    session.add(contact)
    try:
        await session.flush()
    except IntegrityError:  # the same address added at the same moment by another call
        already_exists(f"a contact with email {email} already exists")
    return contact


_IM_PROVIDERS = {dpb.IM_PROVIDER_TELEGRAM: "TELEGRAM", dpb.IM_PROVIDER_WHATSAPP: "WHATSAPP"}
_TELEGRAM_ID = re.compile(r"^[1-9][0-9]{0,19}$")
_WHATSAPP_NUMBER = re.compile(r"^[1-9][0-9]{6,17}$")


def im_id(field: str, kind: str, value: str) -> str | None:
    """A Telegram user ID (digits) or a WhatsApp number in international form (digits;
    ``+``, spaces and dashes dropped); None when empty; ``INVALID_ARGUMENT`` otherwise."""
    text = value.strip()
    if not text:
        return None
    if kind == "TELEGRAM":
        if not _TELEGRAM_ID.match(text):
            invalid(field, "must be a Telegram user ID (digits)")
        return text
    number = re.sub(r"[\s\-().]", "", text).removeprefix("+").removeprefix("00")
    if not _WHATSAPP_NUMBER.match(number):
        invalid(field, "must be a phone number in international form (+39 ...)")
    return number


def _im_column(provider: int, value: str) -> tuple[Any, str]:
    kind = _IM_PROVIDERS.get(provider)  # type: ignore[call-overload]
    if kind is None:
        invalid("provider", "must be TELEGRAM or WHATSAPP")
    found = im_id("id", kind, value)
    if found is None:
        invalid("id", "is required")
    column = m.Contact.telegram_user_id if kind == "TELEGRAM" else m.Contact.whatsapp_number
    return column, found


def _own_org_only(organization_id: int, what: str) -> None:
    """Customers see only their own organisation (others do not exist for them)."""
    who = principal()
    if who.is_customer and who.organization_id != organization_id:
        not_found(what)


class DirectoryServicer(ContractRpcs, dgrpc.DirectoryServiceServicer):
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], credentials: Credentials
    ) -> None:
        self.sessions = sessions
        self.credentials = credentials

    @rpc_method
    async def CreateOrganization(
        self, request: dpb.CreateOrganizationRequest, context: Context
    ) -> dpb.Organization:
        name = require_text("name", request.name, 200)
        domains: list[str] = []
        for raw in request.email_domains:
            domain = raw.strip().lower().lstrip("@")
            if not _DOMAIN.match(domain):
                invalid("email_domains", f"{raw!r} is not a domain")
            if domain not in domains:
                domains.append(domain)
        policy = (
            optional_name(
                pb.ClosedTicketPolicy, request.closed_ticket_policy, "closed_ticket_policy"
            )
            or "FOLLOW_UP"
        )
        locale = locale_of("locale", request.locale, "it")
        async with self.sessions() as session:
            org = m.Organization(
                name=name,
                name_key=name.casefold(),
                email_domains=domains,
                closed_ticket_policy=policy,
                locale=locale,
                department_sees_tickets=request.department_sees_tickets,
                add_contacts_by_domain=(
                    request.add_contacts_by_domain
                    if request.HasField("add_contacts_by_domain")
                    else True
                ),
                created_at=datetime.now(UTC),
            )
            session.add(org)
            try:
                await session.commit()
            except IntegrityError:
                already_exists(f"an organization named {name!r} already exists")
            return org_pb(org)

    @rpc_method
    async def GetOrganization(
        self, request: dpb.GetOrganizationRequest, context: Context
    ) -> dpb.Organization:
        _own_org_only(request.id, f"organization {request.id}")
        async with self.sessions() as session:
            org = await session.get(m.Organization, require_id("id", request.id))
            if org is None:
                not_found(f"organization {request.id}")
            return org_pb(org)

    @rpc_method
    async def GetOrganizationByDomain(
        self, request: dpb.GetOrganizationByDomainRequest, context: Context
    ) -> dpb.Organization:
        """The organisation one of whose email domains is ``domain`` (the oldest, should
        two claim it). Domains are a JSON list (stored lower-case): the database narrows
        by text, the exact match is made here."""
        domain = require_text("domain", request.domain, 253).lower().lstrip("@")
        if not _DOMAIN.match(domain):  # also keeps LIKE wildcards out of the filter
            invalid("domain", f"{request.domain!r} is not a domain")
        async with self.sessions() as session:
            orgs = await session.scalars(
                select(m.Organization)
                .where(cast(m.Organization.email_domains, String).contains(domain))
                .order_by(m.Organization.id)
            )
            for org in orgs:
                if domain in (d.lower() for d in org.email_domains or ()):
                    return org_pb(org)
        not_found(f"organization with email domain {domain}")

    @rpc_method
    async def ListOrganizations(
        self, request: dpb.ListOrganizationsRequest, context: Context
    ) -> dpb.ListOrganizationsResponse:
        async with self.sessions() as session:
            rows, token = await paging.fetch_page(
                session,
                select(m.Organization),
                m.Organization.id,
                request.page_size,
                request.page_token,
            )
        return dpb.ListOrganizationsResponse(
            organizations=[org_pb(o) for o in rows], next_page_token=token
        )

    @rpc_method
    async def AddContact(self, request: dpb.AddContactRequest, context: Context) -> dpb.Contact:
        org_id = require_id("organization_id", request.organization_id)
        name = require_text("name", request.name, 200)
        email = normalize_email("email", request.email)
        phone = optional_text("phone", request.phone, 50)
        role = optional_name(pb.ContactRole, request.role, "role") or "USER"
        async with self.sessions() as session:
            org = await session.get(m.Organization, org_id)
            if org is None:
                not_found(f"organization {org_id}")
            locale = locale_of("locale", request.locale, org.locale)
            department = optional_text("department", request.department, 100)
            contact = await add_contact(session, org, name, email, phone, role, locale, department)
            contact.telegram_user_id = im_id(
                "telegram_user_id", "TELEGRAM", request.telegram_user_id
            )
            contact.whatsapp_number = im_id("whatsapp_number", "WHATSAPP", request.whatsapp_number)
            password = await self.credentials.issue(session, "CONTACT", contact.id, email)
            try:
                await session.commit()
            except IntegrityError:
                already_exists(
                    f"a contact with email {email} (or these messaging ids) already exists"
                )
            await self.credentials.send_password(
                "CONTACT", email, name, contact.locale, password, org.name
            )
            return contact_pb(contact, org.name)

    async def _contact(self, contact: m.Contact | None, what: str) -> dpb.Contact:
        if contact is None:
            not_found(what)
        _own_org_only(contact.organization_id, what)
        async with self.sessions() as session:
            org = await session.get(m.Organization, contact.organization_id)
        return contact_pb(contact, org.name if org else "")

    @rpc_method
    async def GetContact(self, request: dpb.GetContactRequest, context: Context) -> dpb.Contact:
        async with self.sessions() as session:
            contact = await session.get(m.Contact, require_id("id", request.id))
        return await self._contact(contact, f"contact {request.id}")

    @rpc_method
    async def GetContactByEmail(
        self, request: dpb.GetContactByEmailRequest, context: Context
    ) -> dpb.Contact:
        email = require_text("email", request.email, 320)
        async with self.sessions() as session:
            contact = await find_contact_by_email(session, email)
        return await self._contact(contact, f"contact with email {email}")

    @rpc_method
    async def ListContacts(
        self, request: dpb.ListContactsRequest, context: Context
    ) -> dpb.ListContactsResponse:
        size = paging.page_size(request.page_size)
        after = paging.decode(request.page_token)
        query = (
            select(m.Contact, m.Organization.name)
            .join(m.Organization, m.Organization.id == m.Contact.organization_id)
            .order_by(m.Contact.id)
            .limit(size + 1)
        )
        org_id = request.organization_id
        who = principal()
        if who.is_customer:
            if org_id and org_id != who.organization_id:
                not_found(f"organization {org_id}")
            org_id = who.organization_id
        if org_id:
            query = query.where(m.Contact.organization_id == org_id)
        if after is not None:
            query = query.where(m.Contact.id > after)
        async with self.sessions() as session:
            rows = list((await session.execute(query)).all())
        more = len(rows) > size
        rows = rows[:size]
        return dpb.ListContactsResponse(
            contacts=[contact_pb(c, org_name) for c, org_name in rows],
            next_page_token=paging.encode(rows[-1][0].id) if more else "",
        )

    @rpc_method
    async def FindContacts(
        self, request: dpb.FindContactsRequest, context: Context
    ) -> dpb.FindContactsResponse:
        """The front desk's lookup of a caller (services/tickets/contact_search.py)."""
        async with self.sessions() as session:
            found, token = await contact_search.find_contacts(session, request)
        return dpb.FindContactsResponse(
            contacts=[contact_pb(c, org_name) for c, org_name in found], next_page_token=token
        )

    @rpc_method
    async def SetContactPhone(
        self, request: dpb.SetContactPhoneRequest, context: Context
    ) -> dpb.Contact:
        async with self.sessions() as session:
            contact, org_name = await contact_search.set_contact_phone(session, request)
        return contact_pb(contact, org_name)

    @rpc_method
    async def CreateAgent(self, request: dpb.CreateAgentRequest, context: Context) -> dpb.Agent:
        name = require_text("name", request.name, 200)
        email = normalize_email("email", request.email)
        role = required_name(pb.AgentRole, request.role, "role")
        if role == "ADMIN":
            # Signed tokens never carry ADMIN: an administrator uses the admin token.
            invalid("role", "ADMIN is the admin token's role; an agent cannot sign in as ADMIN")
        async with self.sessions() as session:
            agent = m.Agent(
                name=name,
                email=email,
                email_key=email.lower(),
                role=role,
                on_call=request.on_call,
                development_lead=request.development_lead,
                created_at=datetime.now(UTC),
            )
            session.add(agent)
            try:
                await session.flush()
                password = await self.credentials.issue(session, "AGENT", agent.id, email)
                await session.commit()
            except IntegrityError:
                already_exists(f"an agent or contact with email {email} already exists")
            await self.credentials.send_password("AGENT", email, name, "it", password, "")
            return agent_pb(agent)

    @rpc_method
    async def GetAgent(self, request: dpb.GetAgentRequest, context: Context) -> dpb.Agent:
        async with self.sessions() as session:
            agent = await session.get(m.Agent, require_id("id", request.id))
        if agent is None:
            not_found(f"agent {request.id}")
        return agent_pb(agent)

    @rpc_method
    async def GetAgentByEmail(
        self, request: dpb.GetAgentByEmailRequest, context: Context
    ) -> dpb.Agent:
        email = require_text("email", request.email, 320)
        async with self.sessions() as session:
            agent = (
                await session.scalars(select(m.Agent).where(m.Agent.email_key == email.lower()))
            ).first()
        if agent is None:
            not_found(f"agent with email {email}")
        return agent_pb(agent)

    @rpc_method
    async def ListAgents(
        self, request: dpb.ListAgentsRequest, context: Context
    ) -> dpb.ListAgentsResponse:
        query = select(m.Agent)
        if request.on_call_only:
            query = query.where(m.Agent.on_call.is_(True))
        if request.development_leads_only:
            query = query.where(m.Agent.development_lead.is_(True))
        async with self.sessions() as session:
            rows, token = await paging.fetch_page(
                session, query, m.Agent.id, request.page_size, request.page_token
            )
        return dpb.ListAgentsResponse(agents=[agent_pb(a) for a in rows], next_page_token=token)

    @rpc_method
    async def SetAgentDuty(self, request: dpb.SetAgentDutyRequest, context: Context) -> dpb.Agent:
        """Puts an agent on call (or off) and names development leads."""
        async with self.sessions() as session, session.begin():
            agent = await session.get(m.Agent, require_id("agent_id", request.agent_id))
            if agent is None:
                not_found(f"agent {request.agent_id}")
            agent.on_call = request.on_call
            agent.development_lead = request.development_lead
            result = agent_pb(agent)
        return result

    # -- instant messaging identities ---------------------------------------

    @rpc_method
    async def GetContactByIm(
        self, request: dpb.GetContactByImRequest, context: Context
    ) -> dpb.Contact:
        column, value = _im_column(request.provider, request.id)
        async with self.sessions() as session:
            contact = (await session.scalars(select(m.Contact).where(column == value))).first()
        return await self._contact(contact, f"contact with this {column.key}")

    @rpc_method
    async def LinkContactIm(
        self, request: dpb.LinkContactImRequest, context: Context
    ) -> dpb.Contact:
        """Link an identity to a contact (idempotent); ``ALREADY_EXISTS`` when it is
        another contact's."""
        column, value = _im_column(request.provider, request.id)
        contact_id = require_id("contact_id", request.contact_id)
        async with self.sessions() as session:
            owner = (await session.scalars(select(m.Contact).where(column == value))).first()
            if owner is not None and owner.id != contact_id:
                already_exists(f"this {column.key} is linked to another contact")
            contact = await session.get(m.Contact, contact_id)
            if contact is None:
                not_found(f"contact {contact_id}")
            setattr(contact, column.key, value)
            try:
                await session.commit()
            except IntegrityError:
                already_exists(f"this {column.key} is linked to another contact")
        return await self._contact(contact, f"contact {contact_id}")

    @rpc_method
    async def LinkAgentIm(self, request: dpb.LinkAgentImRequest, context: Context) -> dpb.Agent:
        """An agent's own messaging account (an URGENT page goes there too); empty unlinks."""
        kind = _IM_PROVIDERS.get(request.provider)
        if kind is None:
            invalid("provider", "must be TELEGRAM or WHATSAPP")
        field = "telegram_user_id" if kind == "TELEGRAM" else "whatsapp_number"
        value = im_id("id", kind, request.id) or ""
        async with self.sessions() as session, session.begin():
            agent = await session.get(m.Agent, require_id("agent_id", request.agent_id))
            if agent is None:
                not_found(f"agent {request.agent_id}")
            setattr(agent, field, value)
            result = agent_pb(agent)
        return result

    @rpc_method
    async def SetAgentNotifications(
        self, request: dpb.SetAgentNotificationsRequest, context: Context
    ) -> dpb.Agent:
        """Turn kinds of alert on or off, by email and by IM; unset ones stay as they are."""
        agent_id = require_id("agent_id", request.agent_id)
        check_may_set(principal(), agent_id)
        async with self.sessions() as session, session.begin():
            agent = await session.get(m.Agent, agent_id)
            if agent is None:
                not_found(f"agent {agent_id}")
            off = updated(agent.notifications_off, request.notifications)
            if off != list(agent.notifications_off or ()):
                agent.notifications_off = off
            result = agent_pb(agent)
        return result

    # -- credentials ----------------------------------------------------------------

    @rpc_method
    async def Login(self, request: dpb.LoginRequest, context: Context) -> dpb.LoginResponse:
        return await self.credentials.login(request.email, request.password, client_source(context))

    @rpc_method
    async def RefreshToken(
        self, request: dpb.RefreshTokenRequest, context: Context
    ) -> dpb.LoginResponse:
        return await self.credentials.refresh(request.refresh_token)

    @rpc_method
    async def SetPassword(
        self, request: dpb.SetPasswordRequest, context: Context
    ) -> dpb.SetPasswordResponse:
        kinds = {dpb.PRINCIPAL_KIND_CONTACT: "CONTACT", dpb.PRINCIPAL_KIND_AGENT: "AGENT"}
        if request.kind not in kinds:
            invalid("kind", "must be CONTACT or AGENT")
        await self.credentials.set_password(
            principal(),
            kinds[request.kind],
            require_id("id", request.id),
            request.current_password,
            request.new_password,
        )
        return dpb.SetPasswordResponse()

    @rpc_method
    async def RequestPasswordReset(
        self, request: dpb.RequestPasswordResetRequest, context: Context
    ) -> dpb.RequestPasswordResetResponse:
        await self.credentials.request_reset(request.email, client_source(context))
        return dpb.RequestPasswordResetResponse()

    @rpc_method
    async def ResetPassword(
        self, request: dpb.ResetPasswordRequest, context: Context
    ) -> dpb.SetPasswordResponse:
        await self.credentials.reset(
            request.email, request.code, request.new_password, client_source(context)
        )
        return dpb.SetPasswordResponse()
