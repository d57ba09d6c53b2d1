"""Administration: organisations (with their contacts and contract), agents, business
calendars and SLA plans, through the Directory RPCs only. What no RPC can change is shown
read-only: an organisation's name, domains, contact policy and locale; a contact's name,
email, role, locale and department; an agent's name, email and role. Calendars and plans
are immutable once created (DirectoryService), so they are listed and created.

ADMIN exists only as the bootstrap admin token (no signed token carries it): an
administrator signs in to the console with that token at ``/agent/admin/sign-in``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import grpc
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import directory_pb2 as dpb
from services.gateway.agent.admin_forms import (
    POLICIES,
    SLA_PRIORITIES,
    SLA_TARGETS,
    FormProblem,
    calendar_request,
    choice,
    sla_defaults,
    sla_plan_request,
    words,
)
from services.gateway.agent.tool_pages import AGENT_ROLES, Tools, bounded_int, may, role_names
from services.gateway.forms import read_form, text
from services.gateway.store import SignIn
from services.gateway.texts import PRIORITY
from services.gateway.web import SESSION_COOKIE, Viewer, safe_next

CONTACT_ROLES = {pb.CONTACT_ROLE_USER: "User", pb.CONTACT_ROLE_REFERENT: "Referent"}
# Roles an agent can be created with (ADMIN is the admin token's alone).
NEW_AGENT_ROLES = {k: v for k, v in AGENT_ROLES.items() if k != pb.AGENT_ROLE_ADMIN}
IM_PROVIDERS = {dpb.IM_PROVIDER_TELEGRAM: "Telegram", dpb.IM_PROVIDER_WHATSAPP: "WhatsApp"}
LOCALES = {"it": "Italian", "en": "English"}
ADMIN_SESSION_SECONDS = 8 * 3600
NOTICES = {
    "org_created": "The organisation is created.",
    "contact_added": "The contact is added: their password is on its way by email.",
    "phone_saved": "The phone number is saved.",
    "im_linked": "The messaging account is linked.",
    "contract_saved": "The contract is saved.",
    "agent_created": "The agent is created: their password is on its way by email.",
    "calendar_created": "The calendar is created.",
    "plan_created": "The SLA plan is created.",
    "duty": "On-call duty is changed.",
    "admin": "You are signed in as the administrator.",
}
# (request, viewer, status, error, error_field, values, *path values) -> the page
Page = Callable[..., Awaitable[Response]]


def routes(tools: Tools) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    web, backend = tools.web, tools.backend
    d = backend.directory
    _ = tools._

    def labelled(request: Request, table: Mapping[Any, str]) -> list[tuple[str, str]]:
        return [(str(k), _(request, v)) for k, v in table.items()]

    def common(request: Request, viewer: Viewer, section: str = "") -> dict[str, Any]:
        key = request.query_params.get("n", "") if request.method == "GET" else ""
        return {
            "nav": "admin",
            "section": section,
            "notice": _(request, NOTICES[key]) if key in NOTICES else "",
            "is_admin": viewer.role == "ADMIN",
            "can": lambda service, method: may(viewer, service, method),
        }

    async def all_pages(fetch: Callable[[str], Awaitable[Any]], attr: str) -> list[Any]:
        found: list[Any] = []
        token = ""
        for _page in range(10):
            reply = await fetch(token)
            found.extend(getattr(reply, attr))
            token = reply.next_page_token
            if not token:
                break
        return found

    async def organizations(viewer: Viewer) -> list[dpb.Organization]:
        return await all_pages(
            lambda token: d.ListOrganizations(
                dpb.ListOrganizationsRequest(page_size=200, page_token=token),
                **tools.call(viewer),
            ),
            "organizations",
        )

    async def calendars(viewer: Viewer) -> list[dpb.Calendar]:
        return await all_pages(
            lambda token: d.ListCalendars(
                dpb.ListCalendarsRequest(page_size=200, page_token=token), **tools.call(viewer)
            ),
            "calendars",
        )

    async def plans(viewer: Viewer) -> list[dpb.SlaPlan]:
        return await all_pages(
            lambda token: d.ListSlaPlans(
                dpb.ListSlaPlansRequest(page_size=200, page_token=token), **tools.call(viewer)
            ),
            "sla_plans",
        )

    async def show(request: Request, page: Page, *args: Any) -> Response:
        viewer = await web.require_staff(request)
        if not may(viewer, "directory", "ListOrganizations"):
            return tools.forbidden(request)
        try:
            return await page(request, viewer, 200, "", "", {}, *args)
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.UNAUTHENTICATED:
                raise
            return tools.refusal(request, err)

    async def submit(
        request: Request,
        page: Page,
        act: Callable[[Viewer, FormData], Awaitable[str]],
        *args: Any,
    ) -> Response:
        """Do ``act`` (it returns where to go next); a refusal shows the page again with
        what was written and the service's words."""
        viewer = await web.require_staff(request)
        form = await read_form(request)
        web.check_csrf(request, form)
        values = {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}
        try:
            to = await act(viewer, form)
        except FormProblem as problem:
            status, message, field = 400, problem.message, problem.field
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.UNAUTHENTICATED:
                raise
            status, message, field = tools.form_error(request, err)
        else:
            return web.redirect(request, to)
        try:
            return await page(request, viewer, status, message, field, values, *args)
        except grpc.aio.AioRpcError as again:
            return tools.refusal(request, again)

    # -- the start page and the administrator's sign-in ------------------------------

    @router.get("/agent/admin")
    async def start(request: Request) -> Response:
        if await web.viewer(request) is None:  # the administrator has no password
            return web.redirect(request, "/agent/admin/sign-in")
        viewer = await web.require_staff(request)
        if not may(viewer, "directory", "ListOrganizations"):
            return tools.forbidden(request)
        return web.page(
            request,
            "agent/admin.html",
            _(request, "Administration"),
            **common(request, viewer),
        )

    @router.get("/agent/admin/sign-in")
    async def sign_in_page(request: Request) -> Response:
        """Open to anyone: the token itself is the credential, checked by the services."""
        await web.viewer(request)
        return web.page(
            request, "agent/admin_sign_in.html", _(request, "Administrator"), nav="admin"
        )

    async def is_admin_token(token: str) -> bool:
        """The access table says: only ADMIN may call both CreateOrganization and
        SetPassword; each empty request is refused as INVALID_ARGUMENT before anything
        changes (anyone else: PERMISSION_DENIED; a wrong token: UNAUTHENTICATED)."""
        md = (("authorization", f"Bearer {token}"),)
        probes: tuple[Callable[[], Awaitable[object]], ...] = (
            lambda: d.CreateOrganization(
                dpb.CreateOrganizationRequest(), metadata=md, timeout=10.0
            ),
            lambda: d.SetPassword(dpb.SetPasswordRequest(), metadata=md, timeout=10.0),
        )
        for probe in probes:
            try:
                await probe()
            except grpc.aio.AioRpcError as err:
                if err.code() != grpc.StatusCode.INVALID_ARGUMENT:
                    if err.code() in (
                        grpc.StatusCode.UNAUTHENTICATED,
                        grpc.StatusCode.PERMISSION_DENIED,
                    ):
                        return False
                    raise
            else:
                return False
        return True

    @router.post("/agent/admin/sign-in")
    async def sign_in(request: Request) -> Response:
        await web.viewer(request)
        form = await read_form(request)
        web.check_csrf(request, form)
        token = text(form, "admin_token")
        if not token or len(token) > 500 or not token.isprintable():
            ok = False
        else:
            try:
                ok = await is_admin_token(token)
            except grpc.aio.AioRpcError as err:
                return tools.refusal(request, err)
        if not ok:
            return web.page(
                request,
                "agent/admin_sign_in.html",
                _(request, "Administrator"),
                status_code=401,
                nav="admin",
                error=_(request, "This is not the administrator's token."),
            )
        session_id, _row = await web.store.create(
            SignIn(
                kind="AGENT",
                principal_id=0,
                role="ADMIN",
                organization_id=0,
                name=_(request, "Administrator"),
                email="",
                locale=web.locale(request),
                access_token=token,
                # Not a refresh token: when the access ends the session ends too.
                refresh_token="admin-token-session",
                expires_in_seconds=ADMIN_SESSION_SECONDS,
            )
        )
        old = request.cookies.get(SESSION_COOKIE, "")
        if old:
            await web.store.end(old)
        response = web.redirect(request, safe_next(text(form, "next"), "/agent/admin?n=admin"))
        web.set_session_cookie(request, response, session_id)
        return response

    # -- organisations ----------------------------------------------------------------

    async def orgs_page(
        request: Request,
        viewer: Viewer,
        status: int,
        error: str,
        field: str,
        values: dict[str, str],
    ) -> Response:
        listed = [] if status == 503 else await organizations(viewer)
        form = values or {"closed_ticket_policy": str(pb.CLOSED_TICKET_POLICY_FOLLOW_UP)}
        if not values:
            form["add_contacts_by_domain"] = "1"
        return web.page(
            request,
            "agent/admin_orgs.html",
            _(request, "Organisations"),
            status_code=status,
            error=error,
            error_field=field,
            orgs=sorted(listed, key=lambda o: o.name.lower()),
            form=form,
            policies=labelled(request, POLICIES),
            policy_names={k: _(request, v) for k, v in POLICIES.items()},
            locales=[(k, _(request, v)) for k, v in LOCALES.items()],
            **common(request, viewer, "orgs"),
        )

    @router.get("/agent/admin/organizations")
    async def orgs(request: Request) -> Response:
        return await show(request, orgs_page)

    async def create_org(viewer: Viewer, form: FormData) -> str:
        locale = text(form, "locale")
        org = await d.CreateOrganization(
            dpb.CreateOrganizationRequest(
                name=text(form, "name")[:200],
                email_domains=words(text(form, "email_domains"))[:50],
                closed_ticket_policy=pb.ClosedTicketPolicy.ValueType(
                    choice(text(form, "closed_ticket_policy"), POLICIES, "closed_ticket_policy")
                ),
                locale=locale if locale in LOCALES else "it",
                department_sees_tickets=text(form, "department_sees_tickets") == "1",
                add_contacts_by_domain=text(form, "add_contacts_by_domain") == "1",
            ),
            **tools.call(viewer),
        )
        return f"/agent/admin/organizations/{org.id}?n=org_created"

    @router.post("/agent/admin/organizations")
    async def new_org(request: Request) -> Response:
        return await submit(request, orgs_page, create_org)

    async def org_page(
        request: Request,
        viewer: Viewer,
        status: int,
        error: str,
        field: str,
        values: dict[str, str],
        org_id: int,
    ) -> Response:
        if status == 503:  # the directory does not answer: the form keeps what was written
            org, contract, contacts = (
                dpb.Organization(id=org_id, name=f"#{org_id}"),
                dpb.Contract(organization_id=org_id),
                [],
            )
        else:
            org = await d.GetOrganization(
                dpb.GetOrganizationRequest(id=org_id), **tools.call(viewer)
            )
            contract = await d.GetContract(
                dpb.GetContractRequest(organization_id=org_id), **tools.call(viewer)
            )
            contacts = await all_pages(
                lambda token: d.ListContacts(
                    dpb.ListContactsRequest(
                        organization_id=org_id, page_size=200, page_token=token
                    ),
                    **tools.call(viewer),
                ),
                "contacts",
            )
        can_contract = may(viewer, "directory", "SetContract") and status != 503
        form = dict(values)
        form.setdefault("role", str(pb.CONTACT_ROLE_USER))
        form.setdefault("calendar_id", str(contract.calendar.id))
        form.setdefault("sla_plan_id", str(contract.sla_plan.id))
        form.setdefault("closed_ticket_policy", str(contract.closed_ticket_policy))
        form.setdefault("pending_reminder", str(contract.pending_reminder_business_days))
        form.setdefault("pending_auto_solve", str(contract.pending_auto_solve_business_days))
        return web.page(
            request,
            "agent/admin_org.html",
            org.name,
            status_code=status,
            error=error,
            error_field=field,
            org=org,
            contract=contract,
            contacts=contacts,
            calendars=await calendars(viewer) if can_contract else [],
            plans=await plans(viewer) if can_contract else [],
            form=form,
            policies=labelled(request, POLICIES),
            policy_names={k: _(request, v) for k, v in POLICIES.items()},
            contact_roles=labelled(request, CONTACT_ROLES),
            contact_role_names={k: _(request, v) for k, v in CONTACT_ROLES.items()},
            providers=labelled(request, IM_PROVIDERS),
            locales=[(k, _(request, v)) for k, v in LOCALES.items()],
            **common(request, viewer, "orgs"),
        )

    @router.get("/agent/admin/organizations/{org_id:int}")
    async def org(request: Request, org_id: int) -> Response:
        return await show(request, org_page, org_id)

    @router.post("/agent/admin/organizations/{org_id:int}/contacts")
    async def add_contact(request: Request, org_id: int) -> Response:
        async def act(viewer: Viewer, form: FormData) -> str:
            locale = text(form, "locale")
            await d.AddContact(
                dpb.AddContactRequest(
                    organization_id=org_id,
                    name=text(form, "name")[:200],
                    email=text(form, "email")[:320],
                    phone=text(form, "phone")[:50],
                    role=pb.ContactRole.ValueType(
                        choice(text(form, "role"), CONTACT_ROLES, "role")
                    ),
                    locale=locale if locale in LOCALES else "",
                    department=text(form, "department")[:200],
                ),
                **tools.call(viewer),
            )
            return f"/agent/admin/organizations/{org_id}?n=contact_added#contacts"

        return await submit(request, org_page, act, org_id)

    @router.post("/agent/admin/organizations/{org_id:int}/contract")
    async def set_contract(request: Request, org_id: int) -> Response:
        async def act(viewer: Viewer, form: FormData) -> str:
            await d.SetContract(
                dpb.SetContractRequest(
                    organization_id=org_id,
                    calendar_id=bounded_int(text(form, "calendar_id")),
                    sla_plan_id=bounded_int(text(form, "sla_plan_id")),
                    closed_ticket_policy=pb.ClosedTicketPolicy.ValueType(
                        choice(text(form, "closed_ticket_policy"), POLICIES, "closed_ticket_policy")
                    ),
                    pending_reminder_business_days=bounded_int(text(form, "pending_reminder")),
                    pending_auto_solve_business_days=bounded_int(text(form, "pending_auto_solve")),
                ),
                **tools.call(viewer),
            )
            return f"/agent/admin/organizations/{org_id}?n=contract_saved#contract"

        return await submit(request, org_page, act, org_id)

    @router.post("/agent/admin/organizations/{org_id:int}/contacts/{contact_id:int}/phone")
    async def contact_phone(request: Request, org_id: int, contact_id: int) -> Response:
        async def act(viewer: Viewer, form: FormData) -> str:
            await d.SetContactPhone(
                dpb.SetContactPhoneRequest(contact_id=contact_id, phone=text(form, "phone")[:50]),
                **tools.call(viewer),
            )
            return f"/agent/admin/organizations/{org_id}?n=phone_saved#contact-{contact_id}"

        return await submit(request, org_page, act, org_id)

    @router.post("/agent/admin/organizations/{org_id:int}/contacts/{contact_id:int}/im")
    async def contact_im(request: Request, org_id: int, contact_id: int) -> Response:
        async def act(viewer: Viewer, form: FormData) -> str:
            await d.LinkContactIm(
                dpb.LinkContactImRequest(
                    contact_id=contact_id,
                    provider=dpb.ImProvider.ValueType(
                        choice(text(form, "provider"), IM_PROVIDERS, "provider")
                    ),
                    id=text(form, "im_id")[:100],
                ),
                **tools.call(viewer),
            )
            return f"/agent/admin/organizations/{org_id}?n=im_linked#contact-{contact_id}"

        return await submit(request, org_page, act, org_id)

    # -- agents -----------------------------------------------------------------------

    async def agents_page(
        request: Request,
        viewer: Viewer,
        status: int,
        error: str,
        field: str,
        values: dict[str, str],
    ) -> Response:
        agents = (
            []
            if status == 503
            else await all_pages(
                lambda token: d.ListAgents(
                    dpb.ListAgentsRequest(page_size=200, page_token=token), **tools.call(viewer)
                ),
                "agents",
            )
        )
        return web.page(
            request,
            "agent/admin_agents.html",
            _(request, "Agents"),
            status_code=status,
            error=error,
            error_field=field,
            agents=agents,
            form=values or {"role": str(pb.AGENT_ROLE_AGENT)},
            roles=labelled(request, NEW_AGENT_ROLES),
            role_names=role_names(request, web),
            can_set_duty=may(viewer, "directory", "SetAgentDuty"),
            duty_back="admin",
            **common(request, viewer, "agents"),
        )

    @router.get("/agent/admin/agents")
    async def agents(request: Request) -> Response:
        return await show(request, agents_page)

    async def create_agent(viewer: Viewer, form: FormData) -> str:
        await d.CreateAgent(
            dpb.CreateAgentRequest(
                name=text(form, "name")[:200],
                email=text(form, "email")[:320],
                role=pb.AgentRole.ValueType(choice(text(form, "role"), NEW_AGENT_ROLES, "role")),
                on_call=text(form, "on_call") == "1",
                development_lead=text(form, "development_lead") == "1",
            ),
            **tools.call(viewer),
        )
        return "/agent/admin/agents?n=agent_created"

    @router.post("/agent/admin/agents")
    async def new_agent(request: Request) -> Response:
        return await submit(request, agents_page, create_agent)

    # -- calendars and SLA plans ---------------------------------------------------------

    async def calendars_page(
        request: Request,
        viewer: Viewer,
        status: int,
        error: str,
        field: str,
        values: dict[str, str],
    ) -> Response:
        return web.page(
            request,
            "agent/admin_calendars.html",
            _(request, "Business calendars"),
            status_code=status,
            error=error,
            error_field=field,
            calendars=[] if status == 503 else await calendars(viewer),
            form=values or {"time_zone": "Europe/Rome", "country": "IT", "preset": "SEED_000"},
            weekdays=[_(request, w) for w in ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")],
            **common(request, viewer, "calendars"),
        )

    @router.get("/agent/admin/calendars")
    async def calendars_list(request: Request) -> Response:
        return await show(request, calendars_page)

    async def create_calendar(viewer: Viewer, form: FormData) -> str:
        values = {k: v for k, v in form.items() if isinstance(v, str)}
        await d.CreateCalendar(calendar_request(values), **tools.call(viewer))
        return "/agent/admin/calendars?n=calendar_created"

    @router.post("/agent/admin/calendars")
    async def new_calendar(request: Request) -> Response:
        return await submit(request, calendars_page, create_calendar)

    async def plans_page(
        request: Request,
        viewer: Viewer,
        status: int,
        error: str,
        field: str,
        values: dict[str, str],
    ) -> Response:
        return web.page(
            request,
            "agent/admin_plans.html",
            _(request, "SLA plans"),
            status_code=status,
            error=error,
            error_field=field,
            plans=[] if status == 503 else await plans(viewer),
            form=values or sla_defaults(),
            priorities=[(key, _(request, PRIORITY[p])) for p, key in SLA_PRIORITIES],
            priority_names={k: _(request, v) for k, v in PRIORITY.items()},
            targets=list(
                zip(
                    SLA_TARGETS,
                    (
                        _(request, "Taken in charge"),
                        _(request, "First feedback"),
                        _(request, "Resolution"),
                    ),
                    strict=True,
                )
            ),
            **common(request, viewer, "plans"),
        )

    @router.get("/agent/admin/sla-plans")
    async def plans_list(request: Request) -> Response:
        return await show(request, plans_page)

    async def create_plan(viewer: Viewer, form: FormData) -> str:
        values = {k: v for k, v in form.items() if isinstance(v, str)}
        await d.CreateSlaPlan(sla_plan_request(values), **tools.call(viewer))
        return "/agent/admin/sla-plans?n=plan_created"

    @router.post("/agent/admin/sla-plans")
    async def new_plan(request: Request) -> Response:
        return await submit(request, plans_page, create_plan)

    return router
