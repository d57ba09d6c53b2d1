"""The desk's verbs of ``helpdesk`` (escalate, merge, requalify, record-call, duty,
maintenance...): argument parsing, the requests built and the text printed, no servers."""

from __future__ import annotations

import argparse
import io
import re
import uuid
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest

from helpdesk.v1 import (
    common_pb2,
    dev_escalation_pb2,
    directory_pb2,
    intake_pb2,
    knowledge_pb2,
    sales_pb2,
    tickets_pb2,
)
from services.cli import desk, render
from services.cli.client import CliError
from services.cli.main import build_parser, main
from tests.unit.cli_helpers import RecordingClient, parse, parse_error, run_command, ts

pytestmark = pytest.mark.unit

AGENT_2 = tickets_pb2.Actor(kind=common_pb2.AUTHOR_KIND_AGENT, id=2)


def fresh_id(request: Any) -> None:
    """The request carries a fresh UUID request ID; cleared to compare the rest."""
    assert uuid.UUID(request.request_id)
    request.request_id = ""


TICKET = common_pb2.Ticket(
    id=42, display_id="#42", subject="Stampa ferma", status=common_pb2.TICKET_STATUS_OPEN,
    priority=common_pb2.PRIORITY_HIGH,
)  # fmt: skip


# Second level, merge, time, priority ------------------------------------------


def test_escalate_opens_a_programming_ticket(capsys: pytest.CaptureFixture[str]) -> None:
    args = parse(
        "ticket", "escalate", "#42", "--title", "Crash on print", "--urgency", "high",
        "--description", "Stack trace...", "--as", "2",
    )  # fmt: skip
    reply = tickets_pb2.EscalateToDevelopmentResponse(
        ticket=TICKET,
        programming_ticket=dev_escalation_pb2.ProgrammingTicket(
            id=12, title="Crash on print", urgency=dev_escalation_pb2.PROG_URGENCY_HIGH,
            status=dev_escalation_pb2.PROG_STATUS_OPEN,
        ),
    )  # fmt: skip
    method, request, text = run_command(args, reply)
    assert method == "EscalateToDevelopment"
    first = request.request_id
    fresh_id(request)
    assert request == tickets_pb2.EscalateToDevelopmentRequest(
        ticket_id=42, title="Crash on print", technical_description="Stack trace...",
        urgency=dev_escalation_pb2.PROG_URGENCY_HIGH, actor=AGENT_2,
    )  # fmt: skip
    assert text.startswith("programming ticket P-12 OPEN  HIGH  Crash on print opened for #42")
    _, again, _ = run_command(args, reply)
    assert again.request_id != first
    assert "--urgency" in parse_error(capsys, "ticket", "escalate", "42", "--title", "x")
    err = parse_error(capsys, "ticket", "escalate", "42", "--title", "x", "--urgency", "asap")
    assert "invalid choice: 'asap'" in err and "secondary" in err


def test_detach_names_the_programming_ticket(capsys: pytest.CaptureFixture[str]) -> None:
    method, request, text = run_command(
        parse("ticket", "detach", "42", "P-12", "--reason", "fixed in a later release"), TICKET
    )
    assert method == "DetachProgrammingTicket"
    assert request == tickets_pb2.DetachProgrammingTicketRequest(
        ticket_id=42, programming_ticket_id=12, reason="fixed in a later release"
    )
    assert not request.HasField("actor")  # the caller's own token says who
    assert text.startswith("P-12 detached from #42")
    assert "--reason" in parse_error(capsys, "ticket", "detach", "42", "12")


def test_merge_into_another_ticket() -> None:
    method, request, text = run_command(
        parse("ticket", "merge", "#7", "--into", "#42", "--reason", "same printer", "--as", "2"),
        TICKET,
    )
    assert method == "MergeTickets"
    assert request == tickets_pb2.MergeTicketsRequest(
        source_ticket_id=7, target_ticket_id=42, reason="same printer", actor=AGENT_2
    )
    assert text.splitlines()[0] == "#7 merged into #42"
    with pytest.raises(CliError, match="into itself"):
        run_command(parse("ticket", "merge", "7", "--into", "#7", "--reason", "x"), TICKET)


@pytest.mark.parametrize(
    ("text", "value"),
    [("1.5", 1.5), ("1,5", 1.5), ("1h30", 1.5), ("1h30m", 1.5), ("90m", 1.5), ("45min", 0.75),
     ("2h", 2.0), ("24", 24.0)],
)  # fmt: skip
def test_hours(text: str, value: float) -> None:
    assert desk.hours(text) == value


@pytest.mark.parametrize("text", ["0", "-1", "24.5", "25h", "abc", "nan", "inf", "1h75"])
def test_bad_hours_exit_2(capsys: pytest.CaptureFixture[str], text: str) -> None:
    err = parse_error(capsys, "ticket", "log-time", "42", text)
    assert "hours" in err or "duration" in err


def test_log_time_with_a_note() -> None:
    reply = common_pb2.Ticket(id=42, display_id="#42", hours_spent=3.0)
    method, request, text = run_command(
        parse("ticket", "log-time", "42", "1h30", "--note", "remote session", "--as", "2"), reply
    )
    assert method == "LogTime"
    fresh_id(request)
    assert request == tickets_pb2.LogTimeRequest(
        ticket_id=42, hours=1.5, note="remote session", actor=AGENT_2
    )
    assert text.splitlines()[0] == "1.5 h logged on #42, 3 h in all"


def test_priority_with_a_reason(capsys: pytest.CaptureFixture[str]) -> None:
    reply = common_pb2.Ticket(
        id=42, display_id="#42", priority=common_pb2.PRIORITY_URGENT,
        next_due_at=ts("2026-12-02T11:00:00+00:00"),
        next_due_target=common_pb2.SLA_TARGET_FIRST_FEEDBACK,
    )  # fmt: skip
    method, request, text = run_command(
        parse("ticket", "priority", "42", "urgent", "--reason", "line down"), reply
    )
    assert (method, request) == (
        "ChangePriority",
        tickets_pb2.ChangePriorityRequest(
            ticket_id=42, priority=common_pb2.PRIORITY_URGENT, reason="line down"
        ),
    )
    assert "URGENT" in text and "first-feedback" in text
    assert "--reason" in parse_error(capsys, "ticket", "priority", "42", "high")
    assert "invalid choice" in parse_error(capsys, "ticket", "priority", "42", "asap",
                                           "--reason", "x")  # fmt: skip


# Requalify, third party ------------------------------------------------------------


def test_requalify_sends_only_what_is_given() -> None:
    args = parse(
        "ticket", "requalify", "42", "--criticality", "blocking", "--kind", "hardware",
        "--level", "l2", "--os", "", "--reason", "the whole line is down", "--as", "2",
    )  # fmt: skip
    reply = common_pb2.Ticket(
        id=42, display_id="#42", criticality=common_pb2.CRITICALITY_BLOCKING,
        kind=common_pb2.TICKET_KIND_HARDWARE, level=common_pb2.SUPPORT_LEVEL_L2,
        priority=common_pb2.PRIORITY_URGENT, product="Gestionale", version="4.2",
    )  # fmt: skip
    method, request, text = run_command(args, reply)
    assert method == "RequalifyTicket"
    fresh_id(request)
    assert request == tickets_pb2.RequalifyTicketRequest(
        ticket_id=42, criticality=common_pb2.CRITICALITY_BLOCKING,
        kind=common_pb2.TICKET_KIND_HARDWARE, level=common_pb2.SUPPORT_LEVEL_L2, os="",
        reason="the whole line is down", actor=AGENT_2,
    )  # fmt: skip
    assert request.HasField("os")  # given empty: cleared
    assert not request.HasField("product") and not request.HasField("version")  # unchanged
    assert "BLOCKING" in text and "HARDWARE" in text and "L2" in text
    assert "Gestionale 4.2" in text


def test_requalify_needs_a_change_and_a_reason(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(CliError, match="nothing to requalify"):
        run_command(parse("ticket", "requalify", "42", "--reason", "x"), TICKET)
    assert "--reason" in parse_error(capsys, "ticket", "requalify", "42", "--kind", "quote")
    err = parse_error(capsys, "ticket", "requalify", "42", "--kind", "x", "--reason", "y")
    assert "change-request" in err and "hardware" in err


def test_third_party_hold() -> None:
    reply = common_pb2.Ticket(
        id=42, display_id="#42", status=common_pb2.TICKET_STATUS_ON_HOLD,
        third_party_name="Telecom Italia", third_party_reference="TT-991",
    )  # fmt: skip
    method, request, text = run_command(
        parse("ticket", "third-party", "42", "--name", "Telecom Italia", "--reference", "TT-991"),
        reply,
    )
    assert method == "HoldForThirdParty"
    assert request == tickets_pb2.HoldForThirdPartyRequest(
        ticket_id=42, third_party_name="Telecom Italia", third_party_reference="TT-991"
    )
    assert "ON_HOLD" in text and "waiting for Telecom Italia (case TT-991)" in text


# Resend, followers -----------------------------------------------------------------


def test_resend_every_answer_to_the_requester_or_one_to_a_colleague() -> None:
    reply = tickets_pb2.ResendAnswersResponse(
        resend_id="r1", recipient_email="mario@acme.it", comment_ids=["c1", "c2"]
    )
    method, request, text = run_command(parse("ticket", "resend", "42"), reply)
    assert method == "ResendAnswers"
    fresh_id(request)
    assert request == tickets_pb2.ResendAnswersRequest(ticket_id=42)
    assert text == "2 answers of #42 re-sent to mario@acme.it (resend r1)"
    reply = tickets_pb2.ResendAnswersResponse(
        resend_id="r2", recipient_email="luca@acme.it", comment_ids=["c2"]
    )
    _, request, text = run_command(
        parse("ticket", "resend", "42", "--comment", "c2", "--to", "luca@acme.it"), reply
    )
    assert (request.comment_id, request.recipient_email) == ("c2", "luca@acme.it")
    assert text.startswith("1 answer of #42 re-sent to luca@acme.it")


def test_follow_and_unfollow(capsys: pytest.CaptureFixture[str]) -> None:
    reply = common_pb2.Ticket(
        id=42, display_id="#42",
        followers=[common_pb2.Follower(contact_id=12, name="Luca", email="luca@acme.it",
                                       source="AGENT")],
    )  # fmt: skip
    method, request, text = run_command(parse("ticket", "follow", "42", "--contact", "12"), reply)
    assert method == "AddFollower"
    fresh_id(request)
    assert request == tickets_pb2.AddFollowerRequest(ticket_id=42, contact_id=12)
    assert "Luca <luca@acme.it> (12)  AGENT" in text
    method, request, text = run_command(
        parse("ticket", "unfollow", "42", "--email", "luca@acme.it"), TICKET
    )
    assert method == "RemoveFollower"
    fresh_id(request)
    assert request == tickets_pb2.RemoveFollowerRequest(ticket_id=42, email="luca@acme.it")
    assert "no followers" in text
    assert "required" in parse_error(capsys, "ticket", "follow", "42")
    err = parse_error(capsys, "ticket", "follow", "42", "--contact", "1", "--email", "a@b.it")
    assert "not allowed with" in err


# Phone calls and remote sessions ----------------------------------------------------


def test_record_a_phone_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("Spiegato come riavviare lo spooler."))
    args = parse(
        "ticket", "record-call", "42", "--direction", "inbound", "--contact", "8",
        "--duration", "1h15", "--summary", "-", "--notify-customer", "--as", "2",
    )  # fmt: skip
    reply = tickets_pb2.RecordInteractionResponse(
        comment=common_pb2.Comment(id="c9"), ticket=TICKET
    )
    method, request, text = run_command(args, reply)
    assert method == "RecordInteraction"
    fresh_id(request)
    assert request == tickets_pb2.RecordInteractionRequest(
        ticket_id=42, type=common_pb2.INTERACTION_TYPE_PHONE_CALL,
        direction=common_pb2.CALL_DIRECTION_INBOUND, contact_id=8, duration_minutes=75,
        summary="Spiegato come riavviare lo spooler.",
        visibility=common_pb2.COMMENT_VISIBILITY_PUBLIC, notify_customer=True, actor=AGENT_2,
    )  # fmt: skip
    assert text.splitlines()[0] == (
        "phone call recorded on #42 as comment c9 (75 min logged;"
        " the customer is emailed the summary)"
    )


def test_record_an_internal_remote_session() -> None:
    args = parse(
        "ticket", "record-call", "42", "--type", "remote-session", "--with", "IT dept (Gino)",
        "--duration", "40", "--summary", "Driver reinstalled", "--internal",
    )  # fmt: skip
    reply = tickets_pb2.RecordInteractionResponse(
        comment=common_pb2.Comment(id="c1"), ticket=TICKET
    )
    _, request, text = run_command(args, reply)
    assert request.type == common_pb2.INTERACTION_TYPE_REMOTE_SESSION
    assert request.direction == common_pb2.CALL_DIRECTION_UNSPECIFIED
    assert (request.with_whom, request.contact_id, request.duration_minutes) == (
        "IT dept (Gino)", 0, 40,
    )  # fmt: skip
    assert request.visibility == common_pb2.COMMENT_VISIBILITY_INTERNAL
    assert not request.notify_customer
    assert text.startswith("remote session recorded on #42 as comment c1 (40 min logged)")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--contact", "8"], "needs --direction"),
        (["--type", "remote-session", "--direction", "outbound", "--contact", "8"],
         "phone calls only"),
        (["--direction", "inbound"], "with whom"),
        (["--direction", "inbound", "--with", "  "], "with whom"),
        (["--direction", "inbound", "--contact", "8", "--internal", "--notify-customer"],
         "never emailed"),
    ],
)  # fmt: skip
def test_record_call_bad_combinations(extra: list[str], message: str) -> None:
    args = parse("ticket", "record-call", "42", "--duration", "5", "--summary", "x", *extra)
    with pytest.raises(CliError, match=message):
        run_command(args, None)


@pytest.mark.parametrize("duration", ["0", "1441", "25h", "abc", "1h60"])
def test_record_call_bad_durations_exit_2(
    capsys: pytest.CaptureFixture[str], duration: str
) -> None:
    err = parse_error(
        capsys, "ticket", "record-call", "42", "--direction", "inbound", "--contact", "8",
        "--duration", duration, "--summary", "x",
    )  # fmt: skip
    assert "duration" in err


# Assign, close with hours, queues -------------------------------------------------


def test_assign_take_over_needs_a_reason() -> None:
    _, request, _ = run_command(
        parse("ticket", "assign", "42", "--agent", "2", "--take-over", "--reason", "Anna is ill"),
        TICKET,
    )
    assert request == tickets_pb2.AssignTicketRequest(
        ticket_id=42, assignee_id=2, actor=AGENT_2, take_over=True, reason="Anna is ill"
    )
    with pytest.raises(CliError, match="needs a --reason"):
        run_command(parse("ticket", "assign", "42", "--agent", "2", "--take-over"), TICKET)
    with pytest.raises(CliError, match="goes with --take-over"):
        run_command(parse("ticket", "assign", "42", "--agent", "2", "--reason", "x"), TICKET)


def test_close_with_hours(capsys: pytest.CaptureFixture[str]) -> None:
    _, request, _ = run_command(
        parse("ticket", "status", "42", "closed", "--hours", "2,5", "--as", "2"), TICKET
    )
    fresh_id(request)
    assert request == tickets_pb2.ChangeStatusRequest(
        ticket_id=42, status=common_pb2.TICKET_STATUS_CLOSED, hours_spent=2.5, actor=AGENT_2
    )
    with pytest.raises(CliError, match="--hours goes with closed"):
        run_command(parse("ticket", "status", "42", "solved", "--hours", "1", "--as", "2"), TICKET)
    assert "hours" in parse_error(capsys, "ticket", "status", "42", "closed", "--hours", "0",
                                  "--as", "2")  # fmt: skip


def test_ticket_list_queue_order_and_filters(capsys: pytest.CaptureFixture[str]) -> None:
    args = parse(
        "ticket", "list", "--order", "next-due", "--unassigned", "--due-within", "30",
        "--breached", "--kind", "bug", "hardware", "--level", "l2", "--subject", "stampa",
    )  # fmt: skip
    method, request, _ = run_command(args, tickets_pb2.ListTicketsResponse())
    assert method == "ListTickets"
    assert request.order_by == tickets_pb2.TICKET_ORDER_NEXT_DUE
    assert (request.unassigned_only, request.due_within_minutes, request.breached_only) == (
        True, 30, True,
    )  # fmt: skip
    assert list(request.kinds) == [common_pb2.TICKET_KIND_BUG, common_pb2.TICKET_KIND_HARDWARE]
    assert list(request.levels) == [common_pb2.SUPPORT_LEVEL_L2]
    assert request.subject_contains == "stampa"
    _, request, _ = run_command(parse("ticket", "list"), tickets_pb2.ListTicketsResponse())
    assert request.order_by == tickets_pb2.TICKET_ORDER_UNSPECIFIED  # the service's default
    assert not (request.unassigned_only or request.breached_only or request.kinds)
    for word, order in (("priority", tickets_pb2.TICKET_ORDER_PRIORITY),
                        ("updated", tickets_pb2.TICKET_ORDER_UPDATED),
                        ("id", tickets_pb2.TICKET_ORDER_ID)):  # fmt: skip
        assert parse("ticket", "list", "--order", word).order == order
    err = parse_error(capsys, "ticket", "list", "--order", "due")
    assert "invalid choice: 'due'" in err and "next-due" in err
    assert "positive" in parse_error(capsys, "ticket", "list", "--due-within", "0")


def test_list_and_show_print_next_due_followers_and_interactions() -> None:
    ticket = common_pb2.Ticket(
        id=42, display_id="#42", subject="Stampa", status=common_pb2.TICKET_STATUS_OPEN,
        next_due_at=ts("2026-12-02T11:00:00+00:00"),
        next_due_target=common_pb2.SLA_TARGET_RESOLUTION,
        followers=[common_pb2.Follower(contact_id=12, name="Luca", email="luca@acme.it",
                                       source="MERGE")],
        hours_spent=1.5,
    )  # fmt: skip
    due = render.when(ticket.next_due_at)
    header, row = render.tickets([ticket]).splitlines()
    assert "NEXT DUE" in header and f"{due} resolution" in row
    assert "-" in render.tickets([common_pb2.Ticket(id=1)]).splitlines()[1]
    call = common_pb2.Comment(
        id="c9", body="Riavviato lo spooler", author_kind=common_pb2.AUTHOR_KIND_AGENT,
        author_id=2, author_name="Anna",
        interaction=common_pb2.Interaction(
            type=common_pb2.INTERACTION_TYPE_PHONE_CALL,
            direction=common_pb2.CALL_DIRECTION_OUTBOUND, with_whom="Mario Rossi",
            duration_minutes=15, notify_customer=True,
        ),
    )  # fmt: skip
    detail = render.ticket(ticket, [call, common_pb2.Comment(id="c1", body="Ciao")])
    assert re.search(rf"\n  next due +{due} resolution\n", detail)
    assert re.search(r"\n  hours spent +1\.5\n", detail)
    assert "Followers (1)\n  Luca <luca@acme.it> (12)  MERGE" in detail
    assert (
        "agent Anna (2)  [phone call, outbound, with Mario Rossi, 15 min, customer emailed]  id c9"
    ) in detail
    assert "  id c1" in detail


# Agents, contacts, the front desk ---------------------------------------------------


def test_duty_keeps_what_is_not_given(capsys: pytest.CaptureFixture[str]) -> None:
    agent = directory_pb2.Agent(id=3, name="Anna", email="anna@desk.it", on_call=True)
    method, request, text = run_command(
        parse("agent", "duty", "3", "--on-call", "--no-lead"), agent
    )
    assert (method, request) == (
        "SetAgentDuty",
        directory_pb2.SetAgentDutyRequest(agent_id=3, on_call=True, development_lead=False),
    )
    assert text.startswith("Agent 3: Anna <anna@desk.it>") and "(on call)" in text
    current = directory_pb2.Agent(id=3, on_call=True, development_lead=True)
    client = RecordingClient(agent, GetAgent=current)
    args = parse("agent", "duty", "3", "--off-call")
    args.func(client, args)
    assert [m for m, _ in client.calls] == ["GetAgent", "SetAgentDuty"]
    assert client.calls[1][1] == directory_pb2.SetAgentDutyRequest(
        agent_id=3, on_call=False, development_lead=True
    )
    with pytest.raises(CliError, match="nothing to change"):
        run_command(parse("agent", "duty", "3"), agent)
    assert "not allowed with" in parse_error(capsys, "agent", "duty", "3", "--on-call",
                                             "--off-call")  # fmt: skip


def test_agent_list_on_call_and_leads() -> None:
    reply = directory_pb2.ListAgentsResponse(
        agents=[directory_pb2.Agent(id=3, name="Anna", on_call=True, development_lead=True)]
    )
    method, request, text = run_command(parse("agent", "list", "--on-call", "--leads"), reply)
    assert method == "ListAgents"
    assert (request.on_call_only, request.development_leads_only) == (True, True)
    assert text.splitlines()[0].split()[-1] == "DUTY" and "on call, lead" in text
    _, request, _ = run_command(parse("agent", "list"), reply)
    assert not (request.on_call_only or request.development_leads_only)


def test_agent_notifications_turn_kinds_and_channels_off_and_on(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = parse(
        "agent", "notifications", "3", "--off", "assigned:email,digest",
        "--off", "new-ticket:im", "--on", "customer-reply",
    )  # fmt: skip
    prefs = directory_pb2.AgentNotifications()
    for kind in desk.ALERT_KINDS:
        getattr(prefs, kind).email = getattr(prefs, kind).im = True
    prefs.digest.email = prefs.digest.im = prefs.assigned.email = False
    reply = directory_pb2.Agent(id=3, name="Anna", email="anna@desk.it", notifications=prefs)
    method, request, text = run_command(args, reply)
    assert method == "SetAgentNotifications"
    n = request.notifications
    assert request.agent_id == 3
    assert n.assigned.HasField("email") and not n.assigned.email
    assert not n.assigned.HasField("im")  # unset: unchanged
    assert (n.digest.email, n.digest.im) == (False, False)
    assert n.new_ticket.HasField("im") and not n.new_ticket.HasField("email")
    assert (n.customer_reply.email, n.customer_reply.im) == (True, True)
    assert not n.HasField("reassigned_away")
    lines = text.splitlines()
    assert lines[1].split() == ["ALERT", "EMAIL", "IM"]
    assert ["assigned", "off", "on"] in [line.split() for line in lines]
    assert ["digest", "off", "off"] in [line.split() for line in lines]
    # Nothing given: nothing changes, the settings are shown.
    _, request, _ = run_command(parse("agent", "notifications", "3"), reply)
    assert request == directory_pb2.SetAgentNotificationsRequest(
        agent_id=3, notifications=directory_pb2.AgentNotifications()
    )
    with pytest.raises(CliError, match="both turned on and off"):
        run_command(parse("agent", "notifications", "3", "--off", "all", "--on", "digest"), reply)
    err = parse_error(capsys, "agent", "notifications", "3", "--off", "sms")
    assert "not a kind of alert: 'sms'" in err and "reassigned-away" in err
    assert "not a channel" in parse_error(capsys, "agent", "notifications", "3", "--on",
                                          "digest:fax")  # fmt: skip


def test_agent_link_im(capsys: pytest.CaptureFixture[str]) -> None:
    reply = directory_pb2.Agent(id=3, name="Anna", telegram_user_id="5551")
    method, request, text = run_command(parse("agent", "link-im", "3", "telegram", "5551"), reply)
    assert (method, request) == (
        "LinkAgentIm",
        directory_pb2.LinkAgentImRequest(
            agent_id=3, provider=directory_pb2.IM_PROVIDER_TELEGRAM, id="5551"
        ),
    )
    assert "telegram 5551" in text
    _, request, _ = run_command(parse("agent", "link-im", "3", "whatsapp", "--unlink"), reply)
    assert (request.provider, request.id) == (directory_pb2.IM_PROVIDER_WHATSAPP, "")
    with pytest.raises(CliError, match="ACCOUNT"):
        run_command(parse("agent", "link-im", "3", "telegram"), reply)
    assert "invalid choice" in parse_error(capsys, "agent", "link-im", "3", "signal", "1")


def test_contact_find_across_organisations() -> None:
    reply = directory_pb2.FindContactsResponse(
        contacts=[directory_pb2.Contact(id=8, name="Mario Rossi", email="mario@acme.it",
                                        phone="+39 02 1234", organization_id=2,
                                        organization_name="ACME")]
    )  # fmt: skip
    method, request, text = run_command(
        parse("contact", "find", "--phone", "02 1234", "--name", "rossi"), reply
    )
    assert (method, request) == (
        "FindContacts",
        directory_pb2.FindContactsRequest(phone="02 1234", name="rossi", page_size=100),
    )
    assert "Mario Rossi" in text and "ACME (2)" in text
    with pytest.raises(CliError, match="whom to find"):
        run_command(parse("contact", "find", "--email", " "), reply)


def test_contact_set_phone() -> None:
    reply = directory_pb2.Contact(id=8, name="Mario", email="m@acme.it", phone="+39 333 1")
    method, request, text = run_command(parse("contact", "set-phone", "8", "+39 333 1"), reply)
    assert (method, request) == (
        "SetContactPhone",
        directory_pb2.SetContactPhoneRequest(contact_id=8, phone="+39 333 1"),
    )
    assert "+39 333 1" in text


def test_phone_log_for_a_known_caller_needs_only_the_nature() -> None:
    method, request, _ = run_command(
        parse("phone", "log", "--contact", "8", "--nature", "Stampa ferma"),
        intake_pb2.SubmitResponse(ticket_id=1, created=True),
    )
    assert method == "LogPhoneCall"
    fresh_id(request)
    assert request == intake_pb2.LogPhoneCallRequest(contact_id=8, nature="Stampa ferma")
    _, request, _ = run_command(
        parse("phone", "log", "--phone", "02 1234", "--nature", "x"), intake_pb2.SubmitResponse()
    )
    assert (request.caller_phone, request.contact_id) == ("02 1234", 0)
    with pytest.raises(CliError, match="who called"):
        run_command(
            parse("phone", "log", "--org", "2", "--name", "Mario", "--nature", "x"),
            intake_pb2.SubmitResponse(),
        )


# Maintenance windows -------------------------------------------------------------


WINDOW = tickets_pb2.MaintenanceWindow(
    id=5, organization_id=2, organization_name="ACME", summary="Aggiornamento 4.2",
    medium=tickets_pb2.MAINTENANCE_MEDIUM_FILE_TRANSFER,
    status=tickets_pb2.MAINTENANCE_STATUS_PLANNED,
    planned_start=ts("2026-12-05T19:00:00+00:00"), planned_end=ts("2026-12-05T21:00:00+00:00"),
    planned_by_agent_id=2, planned_by_name="Anna", workflow_id="maintenance-5",
)  # fmt: skip


def test_maintenance_plan(capsys: pytest.CaptureFixture[str]) -> None:
    args = parse(
        "maintenance", "plan", "--org", "2", "--medium", "file-transfer",
        "--start", "2026-12-05T20:00+01:00", "--end", "2026-12-05T22:00+01:00",
        "--summary", "Aggiornamento 4.2",
    )  # fmt: skip
    method, request, text = run_command(args, WINDOW)
    assert method == "PlanMaintenance"
    fresh_id(request)
    assert request == tickets_pb2.PlanMaintenanceRequest(
        organization_id=2, medium=tickets_pb2.MAINTENANCE_MEDIUM_FILE_TRANSFER,
        planned_start=ts("2026-12-05T19:00:00+00:00"),
        planned_end=ts("2026-12-05T21:00:00+00:00"), summary="Aggiornamento 4.2",
    )  # fmt: skip
    assert request.planned_start.ToDatetime(tzinfo=UTC).hour == 19
    assert text.startswith("Maintenance 5: Aggiornamento 4.2")
    assert "FILE_TRANSFER" in text and "PLANNED" in text and "Anna (2)" in text
    assert "maintenance-5" in text
    backwards = parse(
        "maintenance", "plan", "--org", "2", "--medium", "physical-media",
        "--start", "2026-12-05T22:00", "--end", "2026-12-05T20:00", "--summary", "x",
    )  # fmt: skip
    with pytest.raises(CliError, match="--end must be after --start"):
        run_command(backwards, WINDOW)
    err = parse_error(capsys, "maintenance", "plan", "--org", "2", "--medium", "cd",
                      "--start", "2026-12-05T20:00", "--end", "2026-12-05T22:00",
                      "--summary", "x")  # fmt: skip
    assert "physical-media" in err
    assert "not a date" in parse_error(
        capsys, "maintenance", "plan", "--org", "2", "--medium", "file-transfer",
        "--start", "sabato",
        "--end", "2026-12-05T22:00", "--summary", "x",
    )  # fmt: skip


def test_maintenance_start_finish_and_list() -> None:
    method, request, _ = run_command(
        parse("maintenance", "start", "5", "--note", "server rebooting"), WINDOW
    )
    assert (method, request) == (
        "MarkMaintenanceStarted",
        tickets_pb2.MarkMaintenanceRequest(id=5, note="server rebooting"),
    )
    method, request, _ = run_command(parse("maintenance", "finish", "5"), WINDOW)
    assert (method, request) == (
        "MarkMaintenanceFinished",
        tickets_pb2.MarkMaintenanceRequest(id=5),
    )
    overdue = tickets_pb2.MaintenanceWindow()
    overdue.CopyFrom(WINDOW)
    overdue.status, overdue.overdue = tickets_pb2.MAINTENANCE_STATUS_STARTED, True
    method, request, text = run_command(
        parse("maintenance", "list", "--org", "2", "--status", "planned", "started"),
        tickets_pb2.ListMaintenanceResponse(windows=[overdue]),
    )
    assert method == "ListMaintenance"
    assert request.organization_id == 2
    assert list(request.statuses) == [
        tickets_pb2.MAINTENANCE_STATUS_PLANNED,
        tickets_pb2.MAINTENANCE_STATUS_STARTED,
    ]
    header, row = text.splitlines()
    assert header.split()[:3] == ["ID", "ORGANISATION", "STATUS"]
    assert "STARTED OVERDUE" in row and "Aggiornamento 4.2" in row


# Sales requests, chat groups ------------------------------------------------------


def test_sales_request_list() -> None:
    reply = sales_pb2.ListSalesRequestsResponse(
        requests=[
            sales_pb2.SalesRequest(id="s1", sender="info@prospect.it", sender_name="Gino",
                                    subject="Preventivo", message_id="web:1",
                                    received_at=ts("2026-12-01T09:00:00+00:00")),
            sales_pb2.SalesRequest(id="s2", sender="a@b.it", subject="Info",
                                    attachment_names=["x.pdf"]),
        ]
    )  # fmt: skip
    method, request, text = run_command(parse("sales-request", "list", "--limit", "5"), reply)
    assert (method, request.page_size) == ("ListSalesRequests", 5)
    lines = text.splitlines()
    assert "Gino <info@prospect.it>" in lines[1] and "web" in lines[1]
    assert "email" in lines[2] and lines[2].rstrip().endswith("1")


def test_im_group_register(capsys: pytest.CaptureFixture[str]) -> None:
    reply = intake_pb2.RegisterImGroupResponse(
        provider="telegram", chat_id="-1001", organization_id=2
    )
    method, request, text = run_command(
        parse("im-group", "register", "telegram", "-1001", "--org", "2"), reply
    )
    assert (method, request) == (
        "RegisterImGroup",
        intake_pb2.RegisterImGroupRequest(provider="telegram", chat_id="-1001", organization_id=2),
    )
    assert text.startswith("telegram group -1001 belongs to organisation 2")
    assert "invalid choice" in parse_error(capsys, "im-group", "register", "signal", "1",
                                           "--org", "2")  # fmt: skip
    assert "--org" in parse_error(capsys, "im-group", "register", "telegram", "1")


# The whole command line ---------------------------------------------------------


def test_every_desk_verb_is_there() -> None:
    parser = build_parser()
    groups = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices

    def verbs(group: str) -> set[str]:
        sub = next(a for a in groups[group]._actions if isinstance(a, argparse._SubParsersAction))
        return set(sub.choices)

    assert {
        "escalate", "detach", "merge", "log-time", "priority", "requalify", "third-party",
        "resend", "follow", "unfollow", "record-call",
    } <= verbs("ticket")  # fmt: skip
    assert {"duty", "notifications", "link-im"} <= verbs("agent")
    assert {"find", "set-phone"} <= verbs("contact")
    assert verbs("maintenance") == {"plan", "start", "finish", "list"}
    assert verbs("sales-request") == {"list"}
    assert verbs("im-group") == {"register"}


def test_a_bad_combination_exits_2_before_any_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HELPDESK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HELPDESK_TOKEN", "t")
    monkeypatch.setenv("HELPDESK_TICKETS_ADDR", "127.0.0.1:9")  # never dialled
    assert main(["ticket", "merge", "7", "--into", "7", "--reason", "x"]) == 2
    assert capsys.readouterr().err == "error: a ticket cannot be merged into itself\n"


# Search ------------------------------------------------------------------------


def test_search_sends_the_words_and_prints_the_snippets() -> None:
    hit = tickets_pb2.TicketHit(
        ticket=common_pb2.Ticket(
            id=7,
            subject="La stampante non stampa",
            status=common_pb2.TICKET_STATUS_SOLVED,
            organization_name="Rossi Srl",
        ),
        snippet=[
            knowledge_pb2.SnippetPart(text="Da ieri la ", match=False),
            knowledge_pb2.SnippetPart(text="stampante", match=True),
        ],
        found_in="note",
    )
    method, request, text = run_command(
        parse("ticket", "search", "stampanti", "rete", "--status", "solved", "--org", "3"),
        tickets_pb2.SearchTicketsResponse(hits=[hit]),
    )
    assert method == "SearchTickets"
    assert request == tickets_pb2.SearchTicketsRequest(
        query="stampanti rete",
        statuses=[common_pb2.TICKET_STATUS_SOLVED],
        organization_id=3,
        page_size=20,
    )
    assert text.splitlines() == [
        "#7 SOLVED La stampante non stampa - Rossi Srl (internal note)",
        "    Da ieri la [stampante]",
    ]
    method, request, text = run_command(
        parse("ticket", "similar", "#7"), tickets_pb2.SearchTicketsResponse()
    )
    assert (method, request.ticket_id, request.limit) == ("SimilarTickets", 7, 5)
    assert text == "no ticket found"
