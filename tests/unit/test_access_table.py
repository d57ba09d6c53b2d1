"""The access table says who may call what, row by row (the running system is
checked against the table in tests/services/test_access.py)."""

from __future__ import annotations

import pytest

from services.common.access import ACCESS, PUBLIC, Role, allowed, is_public

pytestmark = pytest.mark.unit

T = "/helpdesk.v1.TicketService/"
D = "/helpdesk.v1.DirectoryService/"
I = "/helpdesk.v1.IntakeService/"  # noqa: E741
N = "/helpdesk.v1.NotifyService/"

CUSTOMER_NEVER = [
    T + "ChangeStatus",
    T + "AssignTicket",
    I + "LogPhoneCall",
    D + "CreateOrganization",
    D + "CreateAgent",
    D + "AddContact",
    D + "ListOrganizations",
    D + "GetContactByEmail",
    N + "ListNotifications",
]


@pytest.mark.parametrize("method", CUSTOMER_NEVER)
@pytest.mark.parametrize("role", [Role.USER, Role.REFERENT])
def test_customers_never_work_the_desk(method: str, role: Role) -> None:
    assert not allowed(method, role)


@pytest.mark.parametrize(
    "method",
    [
        T + "GetTicket",
        T + "ListTickets",
        T + "AddComment",
        T + "ReopenTicket",
        T + "ConfirmSolution",
        T + "ListComments",
        T + "GetTicketHistory",
        I + "SubmitWebRequest",
    ],
)
def test_customers_read_and_answer_their_tickets(method: str) -> None:
    assert allowed(method, Role.USER) and allowed(method, Role.REFERENT)


def test_front_desk_logs_calls_and_creates_tickets_but_does_not_work_them() -> None:
    for method in (
        I + "LogPhoneCall",
        T + "CreateTicket",
        T + "GetTicket",
        T + "ListTickets",
        D + "AddContact",
    ):
        assert allowed(method, Role.FRONT_DESK), method
    for method in (T + "ChangeStatus", T + "AssignTicket"):
        assert not allowed(method, Role.FRONT_DESK), method


def test_developers_reach_support_tickets_only_through_their_link() -> None:
    # Public methods (the survey: its token is the credential) are no way in for them.
    support = [m for m in ACCESS if (m.startswith(T) or m.startswith(I)) and not is_public(m)]
    assert support and not any(allowed(m, Role.DEVELOPER) for m in support)
    assert allowed("/helpdesk.v1.DevEscalationService/ListProgrammingTickets", Role.DEVELOPER)


def test_admin_owns_the_directory_and_leads_reassign() -> None:
    for method in (D + "CreateOrganization", D + "CreateAgent"):
        assert allowed(method, Role.ADMIN)
        assert not allowed(method, Role.TEAM_LEAD) and not allowed(method, Role.AGENT)
    assert allowed(T + "AssignTicket", Role.TEAM_LEAD)


def test_only_logging_in_is_public_and_unknown_methods_are_closed() -> None:
    public = {m for m, roles in ACCESS.items() if roles == PUBLIC}
    assert public == {
        D + "Login",
        D + "RefreshToken",
        D + "RequestPasswordReset",
        D + "ResetPassword",
        T + "SubmitSatisfaction",  # with the survey email's token (checked by the servicer)
        T + "GetTicketByLink",  # with the solved email's link token (likewise)
        T + "UseTicketLink",
        I + "SubmitSalesRequest",  # seed 003's form for non-customers, bounded per address
    }
    assert all(is_public(m) for m in public)
    assert not any(allowed("/helpdesk.v1.TicketService/DropAllTickets", r) for r in Role)
