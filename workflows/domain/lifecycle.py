"""The six statuses of a support ticket and the moves between them (pure logic).

Seed 003 names the statuses; DESIGN.md §2 says who moves a ticket where.
Every move is an ``Action`` by someone; ``next_status`` answers where it
leads or raises ``IllegalTransition`` naming both states.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    NEW = "NEW"
    OPEN = "OPEN"
    PENDING = "PENDING"
    ON_HOLD = "ON_HOLD"
    SOLVED = "SOLVED"
    CLOSED = "CLOSED"


class Action(StrEnum):
    # An agent sets a status with ChangeStatus.
    AGENT_SET_OPEN = "AGENT_SET_OPEN"
    AGENT_SET_PENDING = "AGENT_SET_PENDING"
    AGENT_SET_ON_HOLD = "AGENT_SET_ON_HOLD"
    AGENT_SET_SOLVED = "AGENT_SET_SOLVED"
    # Closed by an agent after verifying with the customer (seed 002).
    AGENT_CLOSE_VERIFIED = "AGENT_CLOSE_VERIFIED"
    # An agent is assigned: a NEW ticket is taken in charge.
    ASSIGN = "ASSIGN"
    # An agent writes (public or internal): the ticket is being worked.
    AGENT_COMMENT = "AGENT_COMMENT"
    # The requester writes on the ticket.
    CUSTOMER_COMMENT = "CUSTOMER_COMMENT"
    # The requester answers "solved": not solved / confirmed.
    CUSTOMER_REOPEN = "CUSTOMER_REOPEN"
    CUSTOMER_CONFIRM = "CUSTOMER_CONFIRM"
    # HELPDESK_AUTO_CLOSE_AFTER passed in SOLVED with no customer activity.
    AUTO_CLOSE = "AUTO_CLOSE"
    # A customer message to a CLOSED ticket of an organisation whose policy is REOPEN.
    REACTIVATE = "REACTIVATE"
    # An agent opens a programming ticket (seed 002): the ticket waits on development.
    ESCALATE = "ESCALATE"
    # The last programming ticket holding it was shipped or cancelled.
    DEVELOPMENT_RETURNED = "DEVELOPMENT_RETURNED"
    # An agent merges it into another ticket about the same problem (seed 004).
    MERGE = "MERGE"


class IllegalTransition(Exception):
    def __init__(self, current: Status, action: Action, target: Status | None = None) -> None:
        self.current = current
        self.action = action
        self.target = target
        where = target.value if target else current.value
        super().__init__(
            f"cannot move ticket from {current.value} to {where} ({action.value.lower()})"
        )


S = Status
A = Action

# (current status, action) -> next status. Anything absent is illegal.
MOVES: dict[tuple[Status, Action], Status] = {
    # agents set statuses
    (S.NEW, A.AGENT_SET_OPEN): S.OPEN,
    (S.NEW, A.AGENT_SET_PENDING): S.PENDING,
    (S.NEW, A.AGENT_SET_ON_HOLD): S.ON_HOLD,
    (S.NEW, A.AGENT_SET_SOLVED): S.SOLVED,
    (S.OPEN, A.AGENT_SET_OPEN): S.OPEN,
    (S.OPEN, A.AGENT_SET_PENDING): S.PENDING,
    (S.OPEN, A.AGENT_SET_ON_HOLD): S.ON_HOLD,
    (S.OPEN, A.AGENT_SET_SOLVED): S.SOLVED,
    (S.OPEN, A.AGENT_CLOSE_VERIFIED): S.CLOSED,
    (S.PENDING, A.AGENT_SET_OPEN): S.OPEN,
    (S.PENDING, A.AGENT_SET_PENDING): S.PENDING,
    (S.PENDING, A.AGENT_SET_ON_HOLD): S.ON_HOLD,
    (S.PENDING, A.AGENT_SET_SOLVED): S.SOLVED,
    (S.PENDING, A.AGENT_CLOSE_VERIFIED): S.CLOSED,
    (S.ON_HOLD, A.AGENT_SET_OPEN): S.OPEN,
    (S.ON_HOLD, A.AGENT_SET_PENDING): S.PENDING,
    (S.ON_HOLD, A.AGENT_SET_ON_HOLD): S.ON_HOLD,
    (S.ON_HOLD, A.AGENT_SET_SOLVED): S.SOLVED,
    (S.SOLVED, A.AGENT_SET_OPEN): S.OPEN,
    (S.SOLVED, A.AGENT_CLOSE_VERIFIED): S.CLOSED,
    # assignment takes a NEW ticket in charge; elsewhere it keeps the status
    (S.NEW, A.ASSIGN): S.OPEN,
    (S.OPEN, A.ASSIGN): S.OPEN,
    (S.PENDING, A.ASSIGN): S.PENDING,
    (S.ON_HOLD, A.ASSIGN): S.ON_HOLD,
    (S.SOLVED, A.ASSIGN): S.SOLVED,
    # agents' comments never move the ticket
    (S.NEW, A.AGENT_COMMENT): S.NEW,
    (S.OPEN, A.AGENT_COMMENT): S.OPEN,
    (S.PENDING, A.AGENT_COMMENT): S.PENDING,
    (S.ON_HOLD, A.AGENT_COMMENT): S.ON_HOLD,
    (S.SOLVED, A.AGENT_COMMENT): S.SOLVED,
    # the customer writes: an answer to PENDING or SOLVED brings it back to work
    (S.NEW, A.CUSTOMER_COMMENT): S.NEW,
    (S.OPEN, A.CUSTOMER_COMMENT): S.OPEN,
    (S.PENDING, A.CUSTOMER_COMMENT): S.OPEN,
    (S.ON_HOLD, A.CUSTOMER_COMMENT): S.ON_HOLD,
    (S.SOLVED, A.CUSTOMER_COMMENT): S.OPEN,
    # the customer's two answers to "solved"
    (S.SOLVED, A.CUSTOMER_REOPEN): S.OPEN,
    (S.SOLVED, A.CUSTOMER_CONFIRM): S.CLOSED,
    (S.SOLVED, A.AUTO_CLOSE): S.CLOSED,
    # a closed ticket comes back only under the REOPEN policy
    (S.CLOSED, A.REACTIVATE): S.OPEN,
    # second level: waiting on development, then back to work for verification
    (S.NEW, A.ESCALATE): S.ON_HOLD,
    (S.OPEN, A.ESCALATE): S.ON_HOLD,
    (S.PENDING, A.ESCALATE): S.ON_HOLD,
    (S.ON_HOLD, A.ESCALATE): S.ON_HOLD,
    (S.NEW, A.DEVELOPMENT_RETURNED): S.OPEN,
    (S.OPEN, A.DEVELOPMENT_RETURNED): S.OPEN,
    (S.PENDING, A.DEVELOPMENT_RETURNED): S.OPEN,
    (S.ON_HOLD, A.DEVELOPMENT_RETURNED): S.OPEN,
    # merged into another ticket: closed for good, its messages go to the survivor
    (S.NEW, A.MERGE): S.CLOSED,
    (S.OPEN, A.MERGE): S.CLOSED,
    (S.PENDING, A.MERGE): S.CLOSED,
    (S.ON_HOLD, A.MERGE): S.CLOSED,
    (S.SOLVED, A.MERGE): S.CLOSED,
}

AGENT_SET: dict[Status, Action] = {
    S.OPEN: A.AGENT_SET_OPEN,
    S.PENDING: A.AGENT_SET_PENDING,
    S.ON_HOLD: A.AGENT_SET_ON_HOLD,
    S.SOLVED: A.AGENT_SET_SOLVED,
    S.CLOSED: A.AGENT_CLOSE_VERIFIED,
}


def next_status(current: Status, action: Action) -> Status:
    """Where ``action`` takes a ticket in ``current``; ``IllegalTransition`` if nowhere."""
    try:
        return MOVES[(current, action)]
    except KeyError:
        raise IllegalTransition(current, action, _intended_target(action)) from None


def agent_action_for(target: Status) -> Action:
    """The action an agent's ChangeStatus to ``target`` stands for."""
    try:
        return AGENT_SET[target]
    except KeyError:
        raise ValueError(f"an agent cannot set status {target.value}") from None


_TARGETS: dict[Action, Status] = {
    **{action: status for status, action in AGENT_SET.items()},
    A.ASSIGN: S.OPEN,
    A.CUSTOMER_COMMENT: S.OPEN,
    A.CUSTOMER_REOPEN: S.OPEN,
    A.CUSTOMER_CONFIRM: S.CLOSED,
    A.AUTO_CLOSE: S.CLOSED,
    A.REACTIVATE: S.OPEN,
    A.ESCALATE: S.ON_HOLD,
    A.DEVELOPMENT_RETURNED: S.OPEN,
    A.MERGE: S.CLOSED,
}


def _intended_target(action: Action) -> Status | None:
    return _TARGETS.get(action)


def is_final(status: Status) -> bool:
    return status is S.CLOSED


def customer_is_waited_on(status: Status) -> bool:
    """True when the next word is the customer's (the auto-close and reminder clocks)."""
    return status in (S.PENDING, S.SOLVED)
