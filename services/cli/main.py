"""``helpdesk``: the agents' command line over gRPC.

Addresses come from the ``HELPDESK_*`` environment (or the running launcher's
``endpoints.env`` in the data dir); the token from ``--token``,
``HELPDESK_ADMIN_TOKEN`` or the data dir's ``admin.token``.
"""

from __future__ import annotations

import argparse
import sys

import grpc

from services.cli import (
    articles,
    commands,
    contracts,
    desk,
    enums,
    quotes,
    render,
    report,
    sales,
    traces,
)
from services.cli.args import (
    Verbs,
    enum_list,
    local_date,
    local_datetime,
    positive_int,
    prog_ticket_id,
    ticket_id,
)
from services.cli.client import Client, CliError

EXIT_ERROR = 2


def _common_options(json_output: bool) -> argparse.ArgumentParser:
    """Options every subcommand also takes after its name; they override the global ones."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--token", default=argparse.SUPPRESS, help="bearer token (admin)")
    parent.add_argument(
        "--timeout", type=float, default=argparse.SUPPRESS, help="seconds per call (default 30)"
    )
    if json_output:
        parent.add_argument(
            "--json",
            action="store_true",
            default=argparse.SUPPRESS,
            help="print the protobuf reply as JSON",
        )
    return parent


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="helpdesk",
        description="Help desk command line for agents (talks gRPC to the running services).",
        epilog="Token: --token, HELPDESK_TOKEN, the session of `helpdesk login`, "
        "HELPDESK_ADMIN_TOKEN, or the data dir's admin.token (HELPDESK_DATA_DIR, default "
        "./var). gRPC errors exit with code 2.",
    )
    parser.add_argument("--token", help="bearer token (admin)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per call")
    parser.add_argument("--json", action="store_true", help="print protobuf replies as JSON")
    common = _common_options(json_output=True)
    groups = parser.add_subparsers(dest="group", required=True, metavar="COMMAND")

    verbs = Verbs(groups, common)
    leaf = verbs.leaf

    # login / logout -------------------------------------------------------------
    p = groups.add_parser(
        "login",
        help="log in by email and password (later commands act as you)",
        parents=[common],
    )
    p.set_defaults(func=commands.login)
    p.add_argument("email")
    p.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    p = groups.add_parser("logout", help="end the session of `helpdesk login`", parents=[common])
    p.set_defaults(func=commands.logout)

    # org -----------------------------------------------------------------------
    org = groups.add_parser("org", help="customer organisations").add_subparsers(
        dest="command", required=True, metavar="SUBCOMMAND"
    )
    p = leaf(org, "create", commands.org_create, "create an organisation")
    p.add_argument("name", help="company name (ragione sociale)")
    p.add_argument(
        "--domain",
        dest="domains",
        action="extend",
        nargs="+",
        metavar="DOMAIN",
        help="email domain(s) whose senders belong to it",
    )
    p.add_argument(
        "--policy",
        type=enums.CLOSED_TICKET_POLICY,
        metavar="{" + ",".join(enums.CLOSED_TICKET_POLICY.words) + "}",
        help="what a reply to a CLOSED ticket does (default follow-up)",
    )
    p.add_argument("--locale", choices=["it", "en"], help="default it")
    leaf(org, "list", commands.org_list, "list organisations")
    p = leaf(org, "show", commands.org_show, "show one organisation")
    p.add_argument("id", type=positive_int)

    # contact -------------------------------------------------------------------
    contact = groups.add_parser("contact", help="people at organisations").add_subparsers(
        dest="command", required=True, metavar="SUBCOMMAND"
    )
    p = leaf(contact, "add", commands.contact_add, "add a contact to an organisation")
    p.add_argument("--org", type=positive_int, required=True, metavar="ID")
    p.add_argument("--name", required=True)
    p.add_argument("--email", required=True)
    p.add_argument("--phone")
    p.add_argument(
        "--role",
        type=enums.CONTACT_ROLE,
        metavar="{" + ",".join(enums.CONTACT_ROLE.words) + "}",
        help="default user",
    )
    p.add_argument("--locale", choices=["it", "en"], help="default: the organisation's")
    p = leaf(contact, "list", commands.contact_list, "list contacts")
    p.add_argument("--org", type=positive_int, metavar="ID", help="only this organisation's")
    p = leaf(contact, "show", commands.contact_show, "show a contact by ID or email")
    p.add_argument("contact", metavar="ID|EMAIL")
    desk.add_contact_commands(contact, leaf)

    # agent ---------------------------------------------------------------------
    agent = groups.add_parser("agent", help="help-desk staff").add_subparsers(
        dest="command", required=True, metavar="SUBCOMMAND"
    )
    p = leaf(agent, "create", commands.agent_create, "create an agent")
    p.add_argument("--name", required=True)
    p.add_argument("--email", required=True)
    p.add_argument(
        "--role",
        type=enums.AGENT_ROLE,
        required=True,
        metavar="{" + ",".join(enums.AGENT_ROLE.words) + "}",
    )
    p = leaf(agent, "list", commands.agent_list, "list agents")
    p.add_argument("--on-call", action="store_true", help="only agents on call")
    p.add_argument("--leads", action="store_true", help="only development leads")
    desk.add_agent_commands(agent, leaf)

    # ticket --------------------------------------------------------------------
    ticket = groups.add_parser("ticket", help="support tickets").add_subparsers(
        dest="command", required=True, metavar="SUBCOMMAND"
    )
    p = leaf(ticket, "list", commands.ticket_list, "list tickets")
    p.add_argument("--org", type=positive_int, metavar="ID")
    enum_list(p, "--status", "statuses", enums.TICKET_STATUS, "STATUS")
    enum_list(p, "--priority", "priorities", enums.PRIORITY, "PRIORITY")
    p.add_argument("--assignee", type=positive_int, metavar="AGENT_ID")
    p.add_argument("--requester", metavar="EMAIL")
    desk.add_queue_options(p)
    p.add_argument("--limit", type=positive_int, default=0, help="at most this many")

    p = leaf(ticket, "show", commands.ticket_show, "details, milestones, SLA and comments")
    p.add_argument("id", type=ticket_id)

    p = leaf(ticket, "create", commands.ticket_create, "open a ticket as a web request")
    p.add_argument("--requester-email", required=True, metavar="EMAIL")
    p.add_argument("--subject", required=True)
    p.add_argument("--description", required=True, help="text, or - to read standard input")
    p.add_argument("--product")
    p.add_argument("--version", dest="version")
    p.add_argument("--os")
    p.add_argument("--phone")
    _criticality_and_kind(p)

    p = leaf(ticket, "assign", commands.ticket_assign, "assign a ticket to an agent")
    p.add_argument("id", type=ticket_id)
    p.add_argument("--agent", type=positive_int, required=True, metavar="AGENT_ID")
    p.add_argument(
        "--as",
        dest="actor",
        type=positive_int,
        metavar="AGENT_ID",
        help="the agent who assigns (default: the assignee)",
    )
    p.add_argument(
        "--take-over",
        action="store_true",
        help="take a ticket another agent holds (needs --reason; the holder is told)",
    )
    p.add_argument("--reason", help="why you take it over")

    p = leaf(ticket, "comment", commands.ticket_comment, "add a comment")
    p.add_argument("id", type=ticket_id)
    p.add_argument("--body", required=True, help="text, or - to read standard input")
    p.add_argument("--internal", action="store_true", help="agents only (default: public)")
    author = p.add_mutually_exclusive_group()
    author.add_argument("--as-agent", type=positive_int, metavar="AGENT_ID")
    author.add_argument("--as-contact", type=positive_int, metavar="CONTACT_ID")

    p = leaf(ticket, "status", commands.ticket_status, "change a ticket's status (agent)")
    p.add_argument("id", type=ticket_id)
    p.add_argument(
        "status",
        type=enums.TICKET_STATUS,
        metavar="{" + ",".join(enums.TICKET_STATUS.words) + "}",
    )
    p.add_argument("--reason")
    p.add_argument(
        "--hours",
        type=desk.hours,
        metavar="HOURS",
        help="closed: the hours spent (1.5, 1h30), unless logged before",
    )
    p.add_argument("--as", dest="actor", type=positive_int, required=True, metavar="AGENT_ID")

    p = leaf(ticket, "reopen", commands.ticket_reopen, "the customer reopens a solved ticket")
    p.add_argument("id", type=ticket_id)
    p.add_argument("--as-contact", type=positive_int, required=True, metavar="CONTACT_ID")
    p.add_argument("--reason")

    p = leaf(ticket, "confirm", commands.ticket_confirm, "the customer confirms the solution")
    p.add_argument("id", type=ticket_id)
    p.add_argument("--as-contact", type=positive_int, required=True, metavar="CONTACT_ID")

    p = leaf(ticket, "history", commands.ticket_history, "every event of a ticket")
    p.add_argument("id", type=ticket_id)
    desk.add_ticket_commands(ticket, leaf)

    # dev: the developers' queue (programming tickets) ---------------------------
    dev = groups.add_parser(
        "dev", help="programming tickets: the developers' queue"
    ).add_subparsers(dest="command", required=True, metavar="SUBCOMMAND")
    p = leaf(dev, "queue", commands.dev_queue, "list programming tickets, urgent first")
    enum_list(p, "--status", "statuses", enums.PROG_STATUS, "STATUS")
    enum_list(p, "--urgency", "urgencies", enums.PROG_URGENCY, "URGENCY")
    p.add_argument("--release", help="only those planned for this release")
    p.add_argument("--developer", type=positive_int, metavar="AGENT_ID", help="assigned to")
    p.add_argument("--ticket", type=ticket_id, metavar="ID", help="of this support ticket")
    p.add_argument("--limit", type=positive_int, default=0, help="at most this many")

    p = leaf(dev, "show", commands.dev_show, "details of a programming ticket")
    p.add_argument("id", type=prog_ticket_id, metavar="ID")

    def developer(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--as",
            dest="developer",
            type=positive_int,
            metavar="AGENT_ID",
            help="the developer who acts (needed with the admin token; default: you)",
        )

    p = leaf(dev, "start", commands.dev_start, "start work on it (OPEN or SCHEDULED)")
    p.add_argument("id", type=prog_ticket_id, metavar="ID")
    developer(p)

    p = leaf(dev, "schedule", commands.dev_schedule, "plan it for a release")
    p.add_argument("id", type=prog_ticket_id, metavar="ID")
    p.add_argument("--release", required=True, help="target release, e.g. 4.2")
    p.add_argument("--date", type=local_date, metavar="YYYY-MM-DD", help="planned date")
    developer(p)

    p = leaf(dev, "fix", commands.dev_fix, "mark it fixed in a version")
    p.add_argument("id", type=prog_ticket_id, metavar="ID")
    p.add_argument("--version", required=True, help="the version carrying the fix")
    p.add_argument("--notes", help="technical notes (text, or - to read standard input)")
    developer(p)

    p = leaf(dev, "ship", commands.dev_ship, "ship the update to the customer")
    p.add_argument("id", type=prog_ticket_id, metavar="ID")
    p.add_argument(
        "--notes",
        required=True,
        help="release notes for the customer (text, or - to read standard input)",
    )
    p.add_argument(
        "--window-start",
        type=local_datetime,
        metavar="ISO",
        help="scheduled remote update: start (referents are told in advance)",
    )
    p.add_argument("--window-end", type=local_datetime, metavar="ISO", help="... and end")
    developer(p)

    p = leaf(dev, "cancel", commands.dev_cancel, "abandon it (the support ticket reopens)")
    p.add_argument("id", type=prog_ticket_id, metavar="ID")
    p.add_argument("--reason", required=True)
    developer(p)

    # phone ---------------------------------------------------------------------
    phone = groups.add_parser("phone", help="the front desk's phone log").add_subparsers(
        dest="command", required=True, metavar="SUBCOMMAND"
    )
    p = leaf(phone, "log", commands.phone_log, "record a phone call as a ticket")
    p.add_argument(
        "--contact",
        type=positive_int,
        metavar="CONTACT_ID",
        help="a known caller (`contact find`): then only --nature is needed",
    )
    p.add_argument("--org", type=positive_int, metavar="ID", help="a new caller's organisation")
    p.add_argument("--name", help="caller's name")
    p.add_argument("--email", help="caller's email")
    p.add_argument("--phone", help="caller's phone (one on file identifies the caller)")
    p.add_argument("--nature", required=True, help="the nature of the request (the subject)")
    p.add_argument("--description", default="", help="text, or - to read standard input")
    p.add_argument("--callback", metavar="NUMBER", help="number to call back")
    p.add_argument(
        "--send-attachments",
        action="store_true",
        help="the caller was asked to email the attachment",
    )
    _criticality_and_kind(p)

    # report (seed 002) ---------------------------------------------------------
    p = leaf(groups, "report", report.report, "report of tickets received in a period")
    p.add_argument("--org", type=positive_int, metavar="ID", help="one organisation (default all)")
    p.add_argument("--from", dest="date_from", type=local_date, required=True, metavar="YYYY-MM-DD")
    p.add_argument(
        "--to",
        dest="date_to",
        type=local_date,
        required=True,
        metavar="YYYY-MM-DD",
        help="last day included",
    )
    p.add_argument("--csv", metavar="FILE", help="also write every figure to FILE as CSV")
    p.add_argument(
        "--email",
        action="store_true",
        help="also email it to the organisation's referents (needs --org)",
    )

    # notifications -------------------------------------------------------------
    p = leaf(groups, "notifications", commands.notifications, "outbound messages sent")
    p.add_argument("--ticket", type=ticket_id, metavar="ID")
    p.add_argument("--recipient", metavar="EMAIL")
    p.add_argument("--limit", type=positive_int, default=0, help="at most this many")
    contracts.add_commands(verbs)
    desk.add_commands(verbs)
    articles.add_commands(verbs)
    sales.add_commands(verbs)
    quotes.add_commands(verbs)
    traces.add_command(groups, common)
    return parser


def _criticality_and_kind(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--criticality",
        type=enums.CRITICALITY,
        metavar="{" + ",".join(enums.CRITICALITY.words) + "}",
    )
    p.add_argument(
        "--kind", type=enums.TICKET_KIND, metavar="{" + ",".join(enums.TICKET_KIND.words) + "}"
    )


def run(args: argparse.Namespace) -> int:
    # Logging in and out needs no token yet; a trace is read from a file.
    needs_token = args.func not in (commands.login, commands.logout, traces.show)
    client = Client.from_env(args.token, args.timeout, required=needs_token)
    try:
        result = args.func(client, args)
    finally:
        client.close()
    if args.json:
        data = result.data
        print(render.dumps(data) if isinstance(data, dict) else render.as_json(data))
    else:
        # Everything printed passes here: what came from outside cannot drive the terminal.
        print(render.terminal_safe(result.text))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except grpc.RpcError as err:
        code = err.code().name if isinstance(err, grpc.Call) else "UNKNOWN"
        details = err.details() if isinstance(err, grpc.Call) else str(err)
        print(render.terminal_safe(f"error: {code}: {details}"), file=sys.stderr)
        if code == "UNAVAILABLE":
            print("hint: is the help desk running (`make run`)?", file=sys.stderr)
        return EXIT_ERROR
    except CliError as err:
        print(render.terminal_safe(f"error: {err}"), file=sys.stderr)
        return EXIT_ERROR
    except ValueError as err:  # a bad HELPDESK_* setting
        print(render.terminal_safe(f"error: {err}"), file=sys.stderr)
        return EXIT_ERROR
