"""The ``helpdesk`` command line: argument parsing and the requests it builds, no servers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from helpdesk.v1 import (
    common_pb2,
    dev_escalation_pb2,
    directory_pb2,
    intake_pb2,
    notify_pb2,
    tickets_pb2,
)
from services.cli import commands, enums, render
from services.cli.client import CliError, load_endpoints, resolve_token
from services.cli.main import main
from tests.unit.cli_helpers import RecordingClient, one_call, parse, parse_error

pytestmark = pytest.mark.unit


# Organisations, contacts, agents ---------------------------------------------


def test_org_create_with_domains_policy_and_locale() -> None:
    args = parse(
        "org",
        "create",
        "ACME S.p.A.",
        "--domain",
        "acme.it",
        "acme.com",
        "--domain",
        "acme.eu",
        "--policy",
        "reopen",
        "--locale",
        "en",
    )
    assert args.func is commands.org_create
    method, request = one_call(args, directory_pb2.Organization(id=1, name="ACME S.p.A."))
    assert method == "CreateOrganization"
    assert request == directory_pb2.CreateOrganizationRequest(
        name="ACME S.p.A.",
        email_domains=["acme.it", "acme.com", "acme.eu"],
        closed_ticket_policy=common_pb2.CLOSED_TICKET_POLICY_REOPEN,
        locale="en",
    )


def test_org_create_defaults_leave_policy_to_the_service() -> None:
    _, request = one_call(parse("org", "create", "Rossi Srl"), directory_pb2.Organization())
    assert request.closed_ticket_policy == common_pb2.CLOSED_TICKET_POLICY_UNSPECIFIED
    assert list(request.email_domains) == []
    assert request.locale == ""


def test_org_policy_words(capsys: pytest.CaptureFixture[str]) -> None:
    assert parse("org", "create", "X", "--policy", "follow-up").policy == (
        common_pb2.CLOSED_TICKET_POLICY_FOLLOW_UP
    )
    err = parse_error(capsys, "org", "create", "X", "--policy", "close")
    assert "follow-up, reopen" in err
    assert "fr" in parse_error(capsys, "org", "create", "X", "--locale", "fr")


def test_contact_add_required_and_optional() -> None:
    args = parse(
        "contact",
        "add",
        "--org",
        "3",
        "--name",
        "Mario Rossi",
        "--email",
        "mario@acme.it",
        "--role",
        "referent",
    )
    method, request = one_call(args, directory_pb2.Contact())
    assert method == "AddContact"
    assert request == directory_pb2.AddContactRequest(
        organization_id=3,
        name="Mario Rossi",
        email="mario@acme.it",
        role=common_pb2.CONTACT_ROLE_REFERENT,
    )


def test_contact_add_needs_org_name_email(capsys: pytest.CaptureFixture[str]) -> None:
    err = parse_error(capsys, "contact", "add", "--name", "Mario")
    assert "--org" in err and "--email" in err


def test_contact_show_by_id_or_email() -> None:
    method, request = one_call(parse("contact", "show", "12"), directory_pb2.Contact())
    assert (method, request.id) == ("GetContact", 12)
    method, request = one_call(parse("contact", "show", "Mario@Acme.it"), directory_pb2.Contact())
    assert (method, request.email) == ("GetContactByEmail", "Mario@Acme.it")


def test_agent_create_roles(capsys: pytest.CaptureFixture[str]) -> None:
    args = parse(
        "agent", "create", "--name", "Anna", "--email", "anna@desk.it", "--role", "team-lead"
    )
    _, request = one_call(args, directory_pb2.Agent())
    assert request.role == common_pb2.AGENT_ROLE_TEAM_LEAD
    for word, value in [
        ("front-desk", common_pb2.AGENT_ROLE_FRONT_DESK),
        ("front_desk", common_pb2.AGENT_ROLE_FRONT_DESK),
        ("ADMIN", common_pb2.AGENT_ROLE_ADMIN),
    ]:
        assert (
            parse("agent", "create", "--name", "A", "--email", "a@b.it", "--role", word).role
            == value
        )
    assert "--role" in parse_error(capsys, "agent", "create", "--name", "A", "--email", "a@b")
    err = parse_error(capsys, "agent", "create", "--name", "A", "--email", "a@b", "--role", "boss")
    assert "agent, team-lead, front-desk, developer, admin" in err


# Tickets -----------------------------------------------------------------------


def test_ticket_list_filters() -> None:
    args = parse(
        "ticket",
        "list",
        "--org",
        "2",
        "--status",
        "open",
        "on-hold",
        "--status",
        "pending",
        "--priority",
        "urgent",
        "--assignee",
        "7",
        "--requester",
        "mario@acme.it",
    )
    method, request = one_call(args, tickets_pb2.ListTicketsResponse())
    assert method == "ListTickets"
    assert request.organization_id == 2
    assert list(request.statuses) == [
        common_pb2.TICKET_STATUS_OPEN,
        common_pb2.TICKET_STATUS_ON_HOLD,
        common_pb2.TICKET_STATUS_PENDING,
    ]
    assert list(request.priorities) == [common_pb2.PRIORITY_URGENT]
    assert request.assignee_id == 7
    assert request.requester_email == "mario@acme.it"


def test_ticket_list_follows_pages() -> None:
    replies = [
        tickets_pb2.ListTicketsResponse(tickets=[common_pb2.Ticket(id=1)], next_page_token="p2"),
        tickets_pb2.ListTicketsResponse(tickets=[common_pb2.Ticket(id=2)]),
    ]
    client = RecordingClient()
    tokens: list[str] = []

    def call(method: str, request: tickets_pb2.ListTicketsRequest) -> Any:
        tokens.append(request.page_token)
        return replies[len(tokens) - 1]

    client.call = call  # type: ignore[method-assign]
    args = parse("ticket", "list")
    result = args.func(client, args)
    assert tokens == ["", "p2"]
    assert [t.id for t in result.data.tickets] == [1, 2]


def test_ticket_ids_accept_hash_prefix(capsys: pytest.CaptureFixture[str]) -> None:
    assert parse("ticket", "show", "#42").id == 42
    assert parse("ticket", "history", "42").id == 42
    assert "positive" in parse_error(capsys, "ticket", "show", "0")
    assert "not a number" in parse_error(capsys, "ticket", "show", "abc")


def test_ticket_create_goes_through_intake_with_a_fresh_request_id() -> None:
    argv = (
        "ticket",
        "create",
        "--requester-email",
        "mario@acme.it",
        "--subject",
        "Stampa",
        "--description",
        "Non stampa",
        "--criticality",
        "blocking",
        "--kind",
        "bug",
    )
    reply = intake_pb2.SubmitResponse(ticket_id=5, display_id="#5", created=True)
    method, first = one_call(parse(*argv), reply)
    _, second = one_call(parse(*argv), reply)
    assert method == "SubmitWebRequest"
    assert first.requester_email == "mario@acme.it"
    assert (first.subject, first.description) == ("Stampa", "Non stampa")
    assert first.criticality == common_pb2.CRITICALITY_BLOCKING
    assert first.kind == common_pb2.TICKET_KIND_BUG
    assert uuid.UUID(first.request_id) and first.request_id != second.request_id


def test_ticket_assign_actor_defaults_to_the_assignee() -> None:
    _, request = one_call(parse("ticket", "assign", "9", "--agent", "4"), common_pb2.Ticket())
    assert request == tickets_pb2.AssignTicketRequest(
        ticket_id=9,
        assignee_id=4,
        actor=tickets_pb2.Actor(kind=common_pb2.AUTHOR_KIND_AGENT, id=4),
    )
    _, request = one_call(
        parse("ticket", "assign", "9", "--agent", "4", "--as", "1"), common_pb2.Ticket()
    )
    assert request.actor.id == 1


def test_ticket_comment_authors(capsys: pytest.CaptureFixture[str]) -> None:
    reply = tickets_pb2.AddCommentResponse()
    _, request = one_call(
        parse("ticket", "comment", "3", "--body", "Fatto", "--internal", "--as-agent", "2"), reply
    )
    assert request.visibility == common_pb2.COMMENT_VISIBILITY_INTERNAL
    assert request.author == tickets_pb2.Actor(kind=common_pb2.AUTHOR_KIND_AGENT, id=2)
    assert uuid.UUID(request.request_id)
    _, request = one_call(
        parse("ticket", "comment", "3", "--body", "Grazie", "--as-contact", "8"), reply
    )
    assert request.visibility == common_pb2.COMMENT_VISIBILITY_PUBLIC
    assert request.author == tickets_pb2.Actor(kind=common_pb2.AUTHOR_KIND_CONTACT, id=8)
    _, request = one_call(parse("ticket", "comment", "3", "--body", "x"), reply)
    assert not request.HasField("author")
    err = parse_error(
        capsys, "ticket", "comment", "3", "--body", "x", "--as-agent", "1", "--as-contact", "2"
    )
    assert "not allowed with" in err


def test_ticket_status_needs_agent(capsys: pytest.CaptureFixture[str]) -> None:
    _, request = one_call(
        parse("ticket", "status", "3", "solved", "--reason", "patch", "--as", "2"),
        common_pb2.Ticket(),
    )
    assert uuid.UUID(request.request_id)  # a fresh one: a retry changes the status once
    request.request_id = ""
    assert request == tickets_pb2.ChangeStatusRequest(
        ticket_id=3,
        status=common_pb2.TICKET_STATUS_SOLVED,
        reason="patch",
        actor=tickets_pb2.Actor(kind=common_pb2.AUTHOR_KIND_AGENT, id=2),
    )
    assert parse("ticket", "status", "3", "ON_HOLD", "--as", "2").status == (
        common_pb2.TICKET_STATUS_ON_HOLD
    )
    assert "--as" in parse_error(capsys, "ticket", "status", "3", "open")
    assert "invalid choice" in parse_error(
        capsys, "ticket", "status", "3", "unspecified", "--as", "2"
    )


def test_ticket_reopen_and_confirm_as_contact(capsys: pytest.CaptureFixture[str]) -> None:
    method, request = one_call(
        parse("ticket", "reopen", "3", "--as-contact", "8", "--reason", "ancora rotto"),
        common_pb2.Ticket(),
    )
    assert method == "ReopenTicket"
    assert request.actor == tickets_pb2.Actor(kind=common_pb2.AUTHOR_KIND_CONTACT, id=8)
    assert request.reason == "ancora rotto"
    method, request = one_call(
        parse("ticket", "confirm", "3", "--as-contact", "8"), common_pb2.Ticket()
    )
    assert method == "ConfirmSolution"
    assert request.actor.kind == common_pb2.AUTHOR_KIND_CONTACT
    assert "--as-contact" in parse_error(capsys, "ticket", "confirm", "3")


def test_phone_log() -> None:
    args = parse(
        "phone",
        "log",
        "--org",
        "2",
        "--name",
        "Mario Rossi",
        "--email",
        "mario@acme.it",
        "--phone",
        "+39 02 1234",
        "--nature",
        "Errore stampa",
        "--description",
        "Codice 42",
        "--callback",
        "+39 333 1",
        "--send-attachments",
    )
    method, request = one_call(args, intake_pb2.SubmitResponse(ticket_id=1))
    assert method == "LogPhoneCall"
    assert uuid.UUID(request.request_id)
    request.request_id = ""
    assert request == intake_pb2.LogPhoneCallRequest(
        organization_id=2,
        caller_name="Mario Rossi",
        caller_email="mario@acme.it",
        caller_phone="+39 02 1234",
        nature="Errore stampa",
        description="Codice 42",
        callback_number="+39 333 1",
        attachments_requested_by_email=True,
    )


def test_notifications_filter() -> None:
    method, request = one_call(
        parse("notifications", "--ticket", "#7"), notify_pb2.ListNotificationsResponse()
    )
    assert (method, request.ticket_id) == ("ListNotifications", 7)


def test_json_option_before_or_after_the_command() -> None:
    assert parse("--json", "ticket", "list").json is True
    assert parse("ticket", "list", "--json").json is True
    assert parse("ticket", "list").json is False
    assert parse("--token", "a", "org", "list").token == "a"
    assert parse("--token", "a", "org", "list", "--token", "b").token == "b"


def test_every_group_needs_a_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    for group in ("org", "contact", "agent", "ticket", "phone", "dev"):
        parse_error(capsys, group)
    parse_error(capsys)


# The developers' queue -----------------------------------------------------------

PROG = dev_escalation_pb2.ProgrammingTicket(id=3, title="Crash in stampa")


def test_dev_queue_filters() -> None:
    args = parse(
        "dev",
        "queue",
        "--status",
        "open",
        "scheduled",
        "--status",
        "in-progress",
        "--urgency",
        "high",
        "--release",
        "4.2",
        "--developer",
        "5",
        "--ticket",
        "#42",
    )
    method, request = one_call(args, dev_escalation_pb2.ListProgrammingTicketsResponse())
    assert method == "ListProgrammingTickets"
    assert list(request.statuses) == [
        dev_escalation_pb2.PROG_STATUS_OPEN,
        dev_escalation_pb2.PROG_STATUS_SCHEDULED,
        dev_escalation_pb2.PROG_STATUS_IN_PROGRESS,
    ]
    assert list(request.urgencies) == [dev_escalation_pb2.PROG_URGENCY_HIGH]
    assert (request.release, request.assignee_id, request.support_ticket_id) == ("4.2", 5, 42)


def test_dev_queue_defaults_and_bad_words(capsys: pytest.CaptureFixture[str]) -> None:
    _, request = one_call(
        parse("dev", "queue"), dev_escalation_pb2.ListProgrammingTicketsResponse()
    )
    assert request == dev_escalation_pb2.ListProgrammingTicketsRequest(page_size=200)
    err = parse_error(capsys, "dev", "queue", "--urgency", "urgent")
    assert "high, average, low, secondary" in err
    assert "released" in parse_error(capsys, "dev", "queue", "--status", "done")


def test_dev_ids_accept_the_p_prefix(capsys: pytest.CaptureFixture[str]) -> None:
    for word in ("3", "P-3", "p3", "P3"):
        assert parse("dev", "show", word).id == 3
    method, request = one_call(parse("dev", "show", "P-3"), PROG)
    assert (method, request.id) == ("GetProgrammingTicket", 3)
    assert "positive" in parse_error(capsys, "dev", "start", "P-0")
    assert "not a number" in parse_error(capsys, "dev", "start", "X-3")


def test_dev_start_acts_as_the_caller_unless_told() -> None:
    method, request = one_call(parse("dev", "start", "3"), PROG)
    assert method == "StartWork"
    assert request == dev_escalation_pb2.StartWorkRequest(id=3)
    _, request = one_call(parse("dev", "start", "3", "--as", "7"), PROG)
    assert request.developer_id == 7


def test_dev_schedule_release_and_date(capsys: pytest.CaptureFixture[str]) -> None:
    method, request = one_call(
        parse("dev", "schedule", "3", "--release", "4.2", "--date", "2026-12-15"), PROG
    )
    assert method == "Schedule"
    assert request.target_release == "4.2"
    planned = request.planned_date.ToDatetime(tzinfo=UTC).astimezone()
    assert (planned.year, planned.month, planned.day, planned.hour) == (2026, 12, 15, 0)
    _, request = one_call(parse("dev", "schedule", "3", "--release", "4.2"), PROG)
    assert not request.HasField("planned_date")
    assert "--release" in parse_error(capsys, "dev", "schedule", "3")
    assert "YYYY-MM-DD" in parse_error(
        capsys, "dev", "schedule", "3", "--release", "4.2", "--date", "15/12/2026"
    )


def test_dev_fix_version_and_notes(capsys: pytest.CaptureFixture[str]) -> None:
    method, request = one_call(
        parse("dev", "fix", "3", "--version", "4.2.1", "--notes", "null check", "--as", "5"),
        PROG,
    )
    assert method == "MarkFixed"
    assert request == dev_escalation_pb2.MarkFixedRequest(
        id=3, fix_version="4.2.1", notes="null check", developer_id=5
    )
    assert "--version" in parse_error(capsys, "dev", "fix", "3")


def test_dev_ship_with_and_without_a_window(capsys: pytest.CaptureFixture[str]) -> None:
    method, request = one_call(parse("dev", "ship", "3", "--notes", "Corretta stampa"), PROG)
    assert method == "ShipUpdate"
    assert request.release_notes == "Corretta stampa"
    assert not request.HasField("remote_update")
    _, request = one_call(
        parse(
            "dev",
            "ship",
            "3",
            "--notes",
            "x",
            "--window-start",
            "2026-12-01T20:00+01:00",
            "--window-end",
            "2026-12-01T22:00+01:00",
        ),
        PROG,
    )
    window = request.remote_update
    assert window.starts_at.ToDatetime(tzinfo=UTC) == datetime(2026, 12, 1, 19, 0, tzinfo=UTC)
    assert window.ends_at.ToDatetime(tzinfo=UTC) == datetime(2026, 12, 1, 21, 0, tzinfo=UTC)
    assert "--notes" in parse_error(capsys, "dev", "ship", "3")
    assert "not a date and time" in parse_error(
        capsys, "dev", "ship", "3", "--notes", "x", "--window-start", "tonight"
    )
    half = parse("dev", "ship", "3", "--notes", "x", "--window-start", "2026-12-01T20:00")
    with pytest.raises(CliError, match="go together"):
        one_call(half, PROG)
    backwards = parse(
        "dev",
        "ship",
        "3",
        "--notes",
        "x",
        "--window-start",
        "2026-12-01T22:00",
        "--window-end",
        "2026-12-01T20:00",
    )
    with pytest.raises(CliError, match="after"):
        one_call(backwards, PROG)


def test_dev_cancel_needs_a_reason(capsys: pytest.CaptureFixture[str]) -> None:
    method, request = one_call(parse("dev", "cancel", "P-3", "--reason", "not a bug"), PROG)
    assert method == "Cancel"
    assert request == dev_escalation_pb2.CancelProgrammingTicketRequest(id=3, reason="not a bug")
    assert "--reason" in parse_error(capsys, "dev", "cancel", "3")


def test_dev_queue_renders_in_the_services_order() -> None:
    items = [
        dev_escalation_pb2.ProgrammingTicket(
            id=9,
            support_ticket_id=42,
            title="Crash",
            target_release="4.2",
            urgency=dev_escalation_pb2.PROG_URGENCY_HIGH,
            status=dev_escalation_pb2.PROG_STATUS_IN_PROGRESS,
            assignee_id=5,
        ),
        dev_escalation_pb2.ProgrammingTicket(
            id=4,
            support_ticket_id=40,
            title="Typo",
            urgency=dev_escalation_pb2.PROG_URGENCY_LOW,
            status=dev_escalation_pb2.PROG_STATUS_OPEN,
        ),
    ]
    header, first, second = render.prog_tickets(items).splitlines()
    assert header.split()[:4] == ["ID", "URGENCY", "STATUS", "SUPPORT"]
    assert first.split()[:6] == ["P-9", "HIGH", "IN_PROGRESS", "#42", "5", "4.2"]
    assert second.split()[:6] == ["P-4", "LOW", "OPEN", "#40", "-", "-"]
    detail = render.prog_ticket(
        dev_escalation_pb2.ProgrammingTicket(
            id=9, title="Crash", release_notes="Corretto", fix_version="4.2.1"
        )
    )
    assert "P-9  Crash" in detail and "Release notes" in detail and "4.2.1" in detail


# Token, endpoints, errors --------------------------------------------------------


def test_token_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HELPDESK_ADMIN_TOKEN", raising=False)
    with pytest.raises(CliError, match="no admin token"):
        resolve_token(None, tmp_path)
    (tmp_path / "admin.token").write_text("from-file\n")
    assert resolve_token(None, tmp_path) == "from-file"
    monkeypatch.setenv("HELPDESK_ADMIN_TOKEN", "from-env")
    assert resolve_token(None, tmp_path) == "from-env"
    assert resolve_token("explicit", tmp_path) == "explicit"


def test_endpoints_file_fills_only_unset_addresses(tmp_path: Path) -> None:
    (tmp_path / "endpoints.env").write_text(
        "# comment\nHELPDESK_TICKETS_ADDR=127.0.0.1:40001\nHELPDESK_INTAKE_ADDR=127.0.0.1:40002\n"
    )
    environ = {"HELPDESK_INTAKE_ADDR": "10.0.0.1:1"}
    load_endpoints(tmp_path, environ)
    assert environ == {
        "HELPDESK_INTAKE_ADDR": "10.0.0.1:1",
        "HELPDESK_TICKETS_ADDR": "127.0.0.1:40001",
    }


def test_unreachable_service_prints_grpc_code_and_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from services.common.embedded import free_port

    monkeypatch.setenv("HELPDESK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HELPDESK_TICKETS_ADDR", f"127.0.0.1:{free_port()}")
    assert main(["--token", "t", "--timeout", "2", "org", "list"]) == 2
    assert capsys.readouterr().err.startswith("error: UNAVAILABLE: ")


def test_missing_token_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HELPDESK_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("HELPDESK_ADMIN_TOKEN", raising=False)
    assert main(["org", "list"]) == 2
    assert "no admin token" in capsys.readouterr().err


# Rendering -------------------------------------------------------------------


def test_enum_words_round_trip() -> None:
    for word in enums.TICKET_STATUS.words:
        assert enums.TICKET_STATUS.label(enums.TICKET_STATUS(word)) == word.upper().replace(
            "-", "_"
        )
    assert enums.TICKET_STATUS.label(0) == "-"
    assert enums.TICKET_STATUS.label(99) == "99"


def test_tables_render_and_json_keeps_proto_names() -> None:
    ticket = common_pb2.Ticket(
        id=42,
        display_id="#42",
        subject="Stampa",
        status=common_pb2.TICKET_STATUS_OPEN,
        priority=common_pb2.PRIORITY_HIGH,
        organization_id=1,
        organization_name="ACME",
        requester_email="mario@acme.it",
        assignee_id=4,
        assignee_name="Anna",
    )
    text = render.tickets([ticket])
    header, row = text.splitlines()
    assert header.split()[:3] == ["ID", "STATUS", "PRIORITY"]
    assert row.split()[:3] == ["#42", "OPEN", "HIGH"]
    assert "Anna (4)" in row
    assert render.tickets([]) == "(none)"
    assert '"display_id": "#42"' in render.as_json(ticket)
    assert '"status": "TICKET_STATUS_OPEN"' in render.as_json(ticket)
    detail = render.ticket(
        ticket,
        [
            common_pb2.Comment(
                id="c1",
                body="Ciao",
                author_kind=common_pb2.AUTHOR_KIND_AGENT,
                author_id=4,
                author_name="Anna",
                visibility=common_pb2.COMMENT_VISIBILITY_INTERNAL,
            )
        ],
    )
    assert "Milestones" in detail and "Comments (1)" in detail
    assert "agent Anna (4)  [internal]" in detail
