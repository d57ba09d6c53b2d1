"""The quote workflow's public contract (seed 003: a quote before any direct intervention).

SalesService.SendQuote asks the ticket's workflow (update ``send_quote``), which puts the
ticket in PENDING and starts the child workflow ``quote-<id>``. The child waits for the
customer's answer (update ``decide``), reminds them once before the validity ends, and
otherwise expires the quote; each move is recorded by one activity of the tickets service
(the quote's row + a ``helpdesk.sales.quote_<type>`` event with a workflow-made ID). Once
decided or expired, the child signals the ticket's workflow (``quote_outcome``), which
takes the ticket back to work (accepted, expired) or solves it (declined). What the
ticket's workflow takes lives with its contracts (``workflows.contracts``: its sandbox
resolves a handler's argument types there).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

QUOTE_WORKFLOW = "QuoteWorkflow"
RECORD_QUOTE_CHANGE = "record_quote_change"

UPDATE_SEND_QUOTE = "send_quote"  # on the ticket's workflow
UPDATE_DECIDE_QUOTE = "decide"  # on the quote's workflow
SIGNAL_QUOTE_OUTCOME = "quote_outcome"  # child -> the ticket's workflow
QUERY_QUOTE_STATE = "state"

OPEN = "SENT"
ACCEPTED = "ACCEPTED"
DECLINED = "DECLINED"
EXPIRED = "EXPIRED"
DECIDED = (ACCEPTED, DECLINED)

# The one reminder goes this long before the quote expires (half the validity when that
# is shorter).
REMIND_BEFORE = timedelta(days=3)


def quote_workflow_id(quote_id: int) -> str:
    return f"quote-{quote_id}"


def quote_event_id(quote_id: int, seq: int) -> str:
    """The ID of a quote's ``seq``-th event: stable across retries."""
    return f"quote-{quote_id}-ev-{seq}"


def reminder_at(sent_at: datetime, expires_at: datetime) -> datetime:
    """When the customer is reminded of a quote still unanswered."""
    return expires_at - min(REMIND_BEFORE, (expires_at - sent_at) / 2)


@dataclass
class QuoteState:
    """What the quote's workflow decides on; the store keeps the rest (lines, totals)."""

    id: int
    ticket_id: int
    organization_id: int
    sent_at: datetime
    # The end of the validity date in the organisation's time zone.
    expires_at: datetime
    remind_at: datetime
    total: str = ""
    proposed_dates: str = ""
    status: str = OPEN
    reminded: bool = False
    decided_at: datetime | None = None
    decided_by_id: int = 0
    decided_by_name: str = ""
    reason: str = ""
    # The ticket's workflow was told the outcome.
    parent_told: bool = False
    event_seq: int = 0


@dataclass
class QuoteWorkflowInput:
    state: QuoteState


@dataclass
class QuoteDecision:
    """The customer's answer (AcceptQuote / DeclineQuote)."""

    accept: bool
    actor_id: int
    actor_name: str
    reason: str = ""


@dataclass
class QuoteChangeRecord:
    """One event of a quote: written to its row and published, exactly once."""

    event_id: str
    event_type: str  # "quote_sent" | "quote_reminder" | "quote_accepted" | ...
    occurred_at: datetime
    state: QuoteState
