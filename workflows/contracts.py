"""The ticket workflow's public contract: task queues, IDs, search attributes, payloads.

Payloads between workflows and activities are dataclasses; protobuf stays at
the gRPC edge. Statuses and kinds travel as the plain names of DESIGN.md
(``"OPEN"``, ``"AGENT"``), the same words as the protobuf enums without
their prefix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from temporalio.common import RetryPolicy, SearchAttributeKey

from workflows.domain.business_time import Calendar

# The workflow worker (`workflow-worker` process) polls this queue.
WORKFLOW_TASK_QUEUE = "helpdesk-workflows"
# The tickets service hosts the ticket activities on its own queue.
TICKETS_TASK_QUEUE = "helpdesk-tickets"

# How the workflows retry their recording activities: until done, backing off to a minute.
RECORD_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1)
)

# Activity names (implemented by services/tickets/activities.py and report_mail.py).
RECORD_TICKET_CHANGE = "record_ticket_change"
REPORT_ORGANIZATIONS = "report_organizations"
SEND_ORGANIZATION_REPORT = "send_organization_report"

# The monthly report to each organisation's referents (seed 002), run by a Temporal
# schedule the tickets process keeps.
MONTHLY_REPORTS_WORKFLOW = "MonthlyReportsWorkflow"
MONTHLY_REPORTS_SCHEDULE = "monthly-reports"

TICKET_WORKFLOW = "TicketWorkflow"

SA_TICKET_ID = SearchAttributeKey.for_int("TicketId")
SA_TICKET_STATUS = SearchAttributeKey.for_keyword("TicketStatus")
SA_TICKET_PRIORITY = SearchAttributeKey.for_keyword("TicketPriority")
SA_ORGANIZATION_ID = SearchAttributeKey.for_int("OrganizationId")
SA_ASSIGNEE_ID = SearchAttributeKey.for_int("AssigneeId")
SA_SLA_BREACHED = SearchAttributeKey.for_bool("SlaBreached")

# (key, kind) pairs, registered idempotently at start-up.
SEARCH_ATTRIBUTES = (
    (SA_TICKET_ID, "int"),
    (SA_TICKET_STATUS, "keyword"),
    (SA_TICKET_PRIORITY, "keyword"),
    (SA_ORGANIZATION_ID, "int"),
    (SA_ASSIGNEE_ID, "int"),
    (SA_SLA_BREACHED, "bool"),
)


def ticket_workflow_id(ticket_id: int) -> str:
    return f"ticket-{ticket_id}"


def ticket_id_from_workflow_id(workflow_id: str) -> int:
    prefix, _, number = workflow_id.partition("-")
    if prefix != "ticket" or not number.isdigit():
        raise ValueError(f"not a ticket workflow ID: {workflow_id!r}")
    return int(number)


def event_id(ticket_id: int, seq: int) -> str:
    """The ID of a ticket's ``seq``-th event: stable across activity retries."""
    return f"ticket-{ticket_id}-ev-{seq}"


@dataclass
class ActorRef:
    kind: str  # "CONTACT" | "AGENT" | "SYSTEM"
    id: int = 0
    # The authenticated principal that made the call, for the audit trail
    # ("AGENT AGENT#3", "SERVICE service"); empty for the workflow's own moves.
    by: str = ""


SYSTEM = ActorRef("SYSTEM", 0)


@dataclass
class SlaTargets:
    """Plain durations per priority: the targets of a ticket started before business-hours
    service levels (``TicketState.terms`` None)."""

    taken_in_charge_seconds: int
    first_feedback_seconds: int


@dataclass
class MilestoneTargets:
    """Business minutes from the start of the clocks to each milestone (seed 002)."""

    taken_in_charge_minutes: int
    first_feedback_minutes: int
    resolution_minutes: int


@dataclass
class SlaTerms:
    """What a ticket is timed by: its organisation's contract (or the default one).

    ``targets`` maps a priority ("URGENT", "HIGH", "NORMAL", "LOW") to its targets.
    A pending reminder / auto-solve of 0 business days is off.
    """

    calendar: Calendar
    targets: dict[str, MilestoneTargets]
    calendar_name: str = ""
    plan_name: str = ""
    pending_reminder_business_days: int = 0
    pending_auto_solve_business_days: int = 0


@dataclass
class SlaBreach:
    target: str  # "TAKEN_IN_CHARGE" | "FIRST_FEEDBACK" | "RESOLUTION"
    due_at: datetime
    recorded_at: datetime


@dataclass
class ProgLink:
    """A programming ticket hanging from this support ticket."""

    id: int
    title: str
    urgency: str
    status: str = "OPEN"
    detached: bool = False
    # The EscalateToDevelopment request that opened it: a retry finds it here.
    request_key: str = ""

    @property
    def holds(self) -> bool:
        """Still holds the support ticket: neither finished nor detached."""
        return not self.detached and self.status not in ("RELEASED", "CANCELLED")


@dataclass
class Qualification:
    """What the desk says a ticket is (seed 002: "qualifica"); names as in DESIGN.md,
    "" when not set."""

    criticality: str = ""  # "NON_BLOCKING" | "BLOCKING" | "CRITICAL"
    kind: str = ""  # "QUESTION" | "INCIDENT" | "BUG" | "CHANGE_REQUEST" | "QUOTE" | "HARDWARE"
    product: str = ""
    version: str = ""
    os: str = ""


@dataclass
class TicketState:
    """Everything the workflow decides on; also the snapshot written to the read model."""

    ticket_id: int
    subject: str
    organization_id: int
    organization_name: str
    requester_id: int
    priority: str
    status: str
    received_at: datetime
    sla: SlaTargets
    auto_close_after_seconds: int
    assignee_id: int = 0
    taken_in_charge_at: datetime | None = None
    first_feedback_at: datetime | None = None
    solved_at: datetime | None = None
    closed_at: datetime | None = None
    close_reason: str = ""
    taken_in_charge_due: datetime | None = None
    first_feedback_due: datetime | None = None
    breaches: list[SlaBreach] = field(default_factory=list)
    auto_close_at: datetime | None = None
    reopen_count: int = 0
    follow_up_of: int = 0
    # Second level (seed 002) and third parties (seed 001).
    level: str = "L1"  # "L1" | "L2"
    programming_tickets: list[ProgLink] = field(default_factory=list)
    awaiting_verification: bool = False
    hours_spent: float = 0.0
    hold_reason: str = ""  # "" | "DEVELOPMENT" | "THIRD_PARTY" | "OTHER"
    third_party_name: str = ""
    third_party_reference: str = ""
    third_party_remind_at: datetime | None = None
    # Merged into this ticket (CLOSED, close_reason "MERGED").
    merged_into: int = 0
    # Business-hours service levels. None: a ticket started before them,
    # timed by the plain durations in ``sla`` as it always was.
    terms: SlaTerms | None = None
    # When the clocks started: the desk's next opening at or after received_at.
    clocks_start_at: datetime | None = None
    # Business seconds counted up to sla_as_of; the clocks run from sla_as_of when running.
    sla_elapsed_seconds: float = 0.0
    sla_as_of: datetime | None = None
    sla_running: bool = False
    # Targets whose 80% warning was sent.
    sla_warned: list[str] = field(default_factory=list)
    resolution_due: datetime | None = None
    # PENDING: the reminder to the customer, then (by the contract) the automatic solve.
    pending_remind_at: datetime | None = None
    pending_solve_at: datetime | None = None
    # Idempotency keys of the latest LogTime calls (bounded), so a retry adds nothing.
    recent_keys: list[str] = field(default_factory=list)
    # Number of events recorded so far; the next event's ID is event_id(ticket_id, seq + 1).
    event_seq: int = 0
    # Criticality, kind, product, version and OS, kept by the workflow once it has them
    # (None: a ticket started before requalification; the read model's values stand).
    qualification: Qualification | None = None
    # The quote the ticket waits for (seed 003: PENDING until the customer answers); 0: none.
    open_quote_id: int = 0


@dataclass
class TicketWorkflowInput:
    state: TicketState
    # "created" | "follow_up_opened": a new ticket, publish its first event;
    # "continued": continue-as-new; "reactivated": a CLOSED ticket's new run
    # (REOPEN policy), started together with the customer's comment.
    start: str = "created"
    # Continue as new past this many history events (tests lower it).
    max_history_events: int = 2000
    # ... or past half this many history bytes; at this many, new comments are refused as
    # busy until it has (Temporal ends a workflow whose history reaches 50 MB).
    max_history_bytes: int = 16 * 1024 * 1024
    # Second level: passed on to each programming ticket's workflow.
    start_work_within_seconds: int = 3600
    remote_update_notice_seconds: int = 86400
    # Third party: the assignee is reminded every this many business days.
    third_party_reminder_business_days: int = 2


@dataclass
class InteractionData:
    """A phone call or remote session an agent records as a comment (seed 000)."""

    type: str  # "PHONE_CALL" | "REMOTE_SESSION"
    duration_minutes: int
    direction: str = ""  # "INBOUND" | "OUTBOUND" (phone calls)
    contact_id: int = 0
    with_whom: str = ""
    # Email the summary (the comment's body) to the customer; public comments only.
    notify_customer: bool = False


@dataclass
class CommentData:
    id: str
    visibility: str  # "PUBLIC" | "INTERNAL"
    author: ActorRef
    body: str
    attachment_ids: list[str] = field(default_factory=list)
    # Set when the comment records a phone call or a remote session.
    interaction: InteractionData | None = None


@dataclass
class TimeEntryData:
    id: str
    hours: float
    note: str
    agent_id: int


@dataclass
class ChangeRecord:
    """One event of a ticket: written to the read model and published, exactly once."""

    event_id: str
    event_type: str
    occurred_at: datetime
    actor: ActorRef
    state: TicketState
    from_status: str
    to_status: str
    detail: str = ""
    comment: CommentData | None = None
    time_entry: TimeEntryData | None = None
    # "assigned": who held the ticket before (0: nobody) and the take-over's reason.
    previous_assignee_id: int = 0
    reason: str = ""


# Update inputs and results -------------------------------------------------


@dataclass
class AssignInput:
    assignee_id: int
    actor: ActorRef
    # A ticket another agent holds moves only when taken over (with a reason) or when the
    # caller may reassign (a team lead, the admin, a service).
    take_over: bool = False
    reason: str = ""
    may_reassign: bool = False


@dataclass
class CommentInput:
    comment: CommentData
    # Only for the first update of a "reactivated" run.
    reactivate: bool = False


@dataclass
class CommentResult:
    state: TicketState
    reopened: bool


@dataclass
class StatusInput:
    status: str
    actor: ActorRef
    reason: str = ""
    # CLOSED: the hours spent, recorded as a time entry with the close (0: none given).
    hours_spent: float = 0.0


@dataclass
class RequalifyInput:
    """The new qualification (None: unchanged) and the reason. ``current``: the read
    model's values, for a ticket whose workflow does not keep them yet."""

    reason: str
    actor: ActorRef
    current: Qualification
    current_level: str = "L1"
    criticality: str | None = None
    kind: str | None = None
    product: str | None = None
    version: str | None = None
    os: str | None = None
    level: str | None = None


@dataclass
class CustomerAnswerInput:
    actor: ActorRef
    reason: str = ""


@dataclass
class EscalateInput:
    request_key: str
    title: str
    technical_description: str
    urgency: str  # "HIGH" | "AVERAGE" | "LOW" | "SECONDARY"
    actor: ActorRef


@dataclass
class EscalateResult:
    state: TicketState
    programming_ticket_id: int


@dataclass
class DetachInput:
    programming_ticket_id: int
    reason: str
    actor: ActorRef


@dataclass
class ThirdPartyInput:
    name: str
    reference: str
    actor: ActorRef


@dataclass
class PriorityInput:
    priority: str  # "URGENT" | "HIGH" | "NORMAL" | "LOW"
    reason: str
    actor: ActorRef


@dataclass
class LogTimeInput:
    request_key: str
    hours: float
    note: str
    actor: ActorRef


@dataclass
class MergeInput:
    """Merge this ticket into ``target_ticket_id`` (validated by the service first)."""

    target_ticket_id: int
    reason: str
    actor: ActorRef


@dataclass
class AbsorbInput:
    """Sent by a merged ticket's workflow to the surviving ticket's."""

    source_ticket_id: int
    source_subject: str
    programming_tickets: list[ProgLink]
    reason: str
    actor: ActorRef


@dataclass
class ProgOutcome:
    """Sent by a programming ticket's workflow to its support ticket's when it ends."""

    programming_ticket_id: int
    title: str
    urgency: str
    status: str  # "RELEASED" | "CANCELLED"
    release_notes: str = ""
    fix_version: str = ""
    reason: str = ""


# Update and query names (strings so that services need not import the workflow).
UPDATE_ASSIGN = "assign"
UPDATE_ADD_COMMENT = "add_comment"
UPDATE_CHANGE_STATUS = "change_status"
UPDATE_REOPEN = "reopen"
UPDATE_CONFIRM = "confirm_solution"
UPDATE_ESCALATE = "escalate_to_development"
UPDATE_DETACH = "detach_programming_ticket"
UPDATE_THIRD_PARTY = "hold_for_third_party"
UPDATE_LOG_TIME = "log_time"
SIGNAL_PROG_OUTCOME = "programming_ticket_outcome"
UPDATE_MERGE = "merge_into"
UPDATE_CHANGE_PRIORITY = "change_priority"
UPDATE_REQUALIFY = "requalify"
SIGNAL_ABSORB = "absorb_merged_ticket"
QUERY_STATE = "state"

# ApplicationError types the services map to gRPC codes.
ERR_ILLEGAL_TRANSITION = "IllegalTransition"
ERR_INVALID = "InvalidArgument"
# Refused for now, not for good: retry (a ticket whose history is about to continue as new).
ERR_BUSY = "Busy"


@dataclass
class ReportInput:
    """Email one organisation's report over ``[period_start, period_end)`` to its referents;
    ``key`` tells runs apart ("monthly", a request ID): the same key sends once."""

    organization_id: int
    period_start: datetime
    period_end: datetime
    key: str


# The digest at the desk's opening of the tickets received while it was closed: one
# long-running workflow, started by the tickets process, sleeping until each opening.
DESK_DIGEST_WORKFLOW = "DeskDigestWorkflow"
DESK_DIGEST_WORKFLOW_ID = "desk-digest"
SEND_DESK_DIGEST = "send_desk_digest"


@dataclass
class DeskDigestInput:
    """The desk's calendar, and the last opening a digest went out for (None: none yet;
    the next one is the first opening after the workflow starts)."""

    calendar: Calendar
    last_opening: datetime | None = None
    # Continue as new after this many openings (a short history).
    openings_per_run: int = 20


@dataclass
class DeskOpening:
    """One opening's digest: the tickets received in ``[closed_since, opened_at)``."""

    opened_at: datetime
    closed_since: datetime


# Quotes (seed 003; workflows/quote_contracts.py has the quote workflow's own) ------


@dataclass
class SendQuoteInput:
    """SalesService.SendQuote, through the ticket's workflow."""

    quote_id: int
    expires_at: datetime
    total: str
    proposed_dates: str
    actor_kind: str
    actor_id: int
    by: str = ""


@dataclass
class QuoteOutcome:
    """What the ticket's workflow is told once a quote is decided or expired."""

    quote_id: int
    status: str
    actor_id: int = 0
    actor_name: str = ""
    reason: str = ""
    proposed_dates: str = ""
