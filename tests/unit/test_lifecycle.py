"""The ticket state machine (workflows/domain/lifecycle.py): every (status, action) pair.

The expected table below is written out from the domain rules (DESIGN.md §2, seed 003),
not copied from ``MOVES``: a status or action added to the module without a decision
here fails ``test_table_decides_every_pair``.
"""

from __future__ import annotations

import re
from collections import deque

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workflows.domain.lifecycle import (
    Action,
    IllegalTransition,
    Status,
    agent_action_for,
    customer_is_waited_on,
    is_final,
    next_status,
)

pytestmark = pytest.mark.unit

ILLEGAL = "-"

# Rows: the action; columns: the ticket's current status; cell: the status it leads to,
# or "-" when the lifecycle forbids it (FAILED_PRECONDITION naming both states).
#
# - Agents set OPEN / PENDING / ON_HOLD / SOLVED on a live ticket; a SOLVED ticket is the
#   customer's turn, so from there an agent may only reopen it (OPEN) or close it.
# - An agent closes after verifying with the customer (seed 002): not a NEW ticket nobody
#   looked at, not one waiting on development (ON_HOLD).
# - Assignment takes a NEW ticket in charge (OPEN), elsewhere it keeps the status.
# - Comments keep the status, except the customer's answer to PENDING or SOLVED, which
#   brings the ticket back to work (seed 003: "rispondi a questo messaggio" reopens).
# - Only a SOLVED ticket is confirmed or reopened by the customer, or auto-closed.
# - CLOSED is final (seed 003); only the REOPEN policy (seed 004) reactivates it.
# - A live ticket not yet solved may be escalated to development (seed 002): it waits
#   ON_HOLD; when development is done with it, it comes back OPEN for verification.
# - Any live ticket may be merged into another (seed 004): it closes for good.
EXPECTED_TABLE = """
action                NEW      OPEN     PENDING  ON_HOLD  SOLVED   CLOSED
AGENT_SET_OPEN        OPEN     OPEN     OPEN     OPEN     OPEN     -
AGENT_SET_PENDING     PENDING  PENDING  PENDING  PENDING  -        -
AGENT_SET_ON_HOLD     ON_HOLD  ON_HOLD  ON_HOLD  ON_HOLD  -        -
AGENT_SET_SOLVED      SOLVED   SOLVED   SOLVED   SOLVED   -        -
AGENT_CLOSE_VERIFIED  -        CLOSED   CLOSED   -        CLOSED   -
ASSIGN                OPEN     OPEN     PENDING  ON_HOLD  SOLVED   -
AGENT_COMMENT         NEW      OPEN     PENDING  ON_HOLD  SOLVED   -
CUSTOMER_COMMENT      NEW      OPEN     OPEN     ON_HOLD  OPEN     -
CUSTOMER_REOPEN       -        -        -        -        OPEN     -
CUSTOMER_CONFIRM      -        -        -        -        CLOSED   -
AUTO_CLOSE            -        -        -        -        CLOSED   -
REACTIVATE            -        -        -        -        -        OPEN
ESCALATE              ON_HOLD  ON_HOLD  ON_HOLD  ON_HOLD  -        -
DEVELOPMENT_RETURNED  OPEN     OPEN     OPEN     OPEN     -        -
MERGE                 CLOSED   CLOSED   CLOSED   CLOSED   CLOSED   -
"""

# The status an illegal action was heading for, named in the error next to the current
# one. ``None``: the action keeps the status, so the target is the current status.
INTENDED: dict[Action, Status | None] = {
    Action.AGENT_SET_OPEN: Status.OPEN,
    Action.AGENT_SET_PENDING: Status.PENDING,
    Action.AGENT_SET_ON_HOLD: Status.ON_HOLD,
    Action.AGENT_SET_SOLVED: Status.SOLVED,
    Action.AGENT_CLOSE_VERIFIED: Status.CLOSED,
    Action.ASSIGN: Status.OPEN,
    Action.AGENT_COMMENT: None,
    Action.CUSTOMER_COMMENT: Status.OPEN,
    Action.CUSTOMER_REOPEN: Status.OPEN,
    Action.CUSTOMER_CONFIRM: Status.CLOSED,
    Action.AUTO_CLOSE: Status.CLOSED,
    Action.REACTIVATE: Status.OPEN,
    Action.ESCALATE: Status.ON_HOLD,
    Action.DEVELOPMENT_RETURNED: Status.OPEN,
    Action.MERGE: Status.CLOSED,
}


def parse_table(text: str) -> dict[tuple[str, str], str]:
    """``(status, action) -> target or ILLEGAL`` as plain names, checking the grid's shape."""
    header, *rows = (line.split() for line in text.strip().splitlines())
    assert header[0] == "action"
    statuses = header[1:]
    assert len(set(statuses)) == len(statuses), f"duplicate column in {statuses}"
    table: dict[tuple[str, str], str] = {}
    seen_actions: set[str] = set()
    for row in rows:
        action, *cells = row
        assert action not in seen_actions, f"action {action} appears twice"
        seen_actions.add(action)
        assert len(cells) == len(statuses), f"row {action} has {len(cells)} cells"
        for status, cell in zip(statuses, cells, strict=True):
            table[(status, action)] = cell
    return table


TABLE = parse_table(EXPECTED_TABLE)
ALL_PAIRS = [(s, a) for s in Status for a in Action]
LEGAL_PAIRS = [(s, a) for s, a in ALL_PAIRS if TABLE.get((s.value, a.value)) != ILLEGAL]
ILLEGAL_PAIRS = [(s, a) for s, a in ALL_PAIRS if TABLE.get((s.value, a.value)) == ILLEGAL]


def pair_id(pair: tuple[Status, Action]) -> str:
    return f"{pair[0].value}+{pair[1].value}"


def test_table_decides_every_pair() -> None:
    expected = {(s.value, a.value) for s, a in ALL_PAIRS}
    missing = sorted(expected - TABLE.keys())
    unknown = sorted(TABLE.keys() - expected)
    assert not missing, f"no decision in EXPECTED_TABLE for (status, action): {missing}"
    assert not unknown, f"EXPECTED_TABLE names statuses/actions the module lacks: {unknown}"
    bad_cells = {k: v for k, v in TABLE.items() if v != ILLEGAL and v not in Status.__members__}
    assert not bad_cells, f"cells that are neither a status nor '-': {bad_cells}"
    assert set(INTENDED) == set(Action), "INTENDED must name every action's target"


def test_the_six_statuses_of_seed_003() -> None:
    assert [s.value for s in Status] == ["NEW", "OPEN", "PENDING", "ON_HOLD", "SOLVED", "CLOSED"]


@pytest.mark.parametrize("pair", LEGAL_PAIRS, ids=pair_id)
def test_legal_move(pair: tuple[Status, Action]) -> None:
    current, action = pair
    assert next_status(current, action) is Status(TABLE[(current.value, action.value)])


@pytest.mark.parametrize("pair", ILLEGAL_PAIRS, ids=pair_id)
def test_illegal_move_names_both_states(pair: tuple[Status, Action]) -> None:
    current, action = pair
    target = INTENDED[action] or current
    with pytest.raises(IllegalTransition) as exc:
        next_status(current, action)
    err = exc.value
    assert (err.current, err.action) == (current, action)
    message = str(err)
    assert re.search(rf"\bfrom {current.value}\b.*\bto {target.value}\b", message), message


# -- the rules a user checks -------------------------------------------------------------


@pytest.mark.parametrize("action", [a for a in Action if a is not Action.REACTIVATE])
def test_closed_is_final(action: Action) -> None:
    with pytest.raises(IllegalTransition):
        next_status(Status.CLOSED, action)


def test_only_reactivation_leaves_closed_and_only_closed_is_final() -> None:
    assert next_status(Status.CLOSED, Action.REACTIVATE) is Status.OPEN
    assert [s for s in Status if is_final(s)] == [Status.CLOSED]


@pytest.mark.parametrize("current", [Status.PENDING, Status.SOLVED])
def test_customer_message_to_waiting_ticket_reopens_it(current: Status) -> None:
    assert next_status(current, Action.CUSTOMER_COMMENT) is Status.OPEN


@pytest.mark.parametrize(
    "action, result",
    [(Action.CUSTOMER_CONFIRM, Status.CLOSED), (Action.CUSTOMER_REOPEN, Status.OPEN)],
)
def test_only_solved_is_confirmed_or_reopened_by_customer(action: Action, result: Status) -> None:
    assert next_status(Status.SOLVED, action) is result
    for current in Status:
        if current is not Status.SOLVED:
            with pytest.raises(IllegalTransition):
                next_status(current, action)


def test_assignment_takes_new_ticket_in_charge() -> None:
    assert next_status(Status.NEW, Action.ASSIGN) is Status.OPEN


def test_auto_close_only_from_solved() -> None:
    legal_from = []
    for current in Status:
        try:
            next_status(current, Action.AUTO_CLOSE)
        except IllegalTransition:
            continue
        legal_from.append(current)
    assert legal_from == [Status.SOLVED]
    assert next_status(Status.SOLVED, Action.AUTO_CLOSE) is Status.CLOSED


def test_agent_cannot_set_new() -> None:
    with pytest.raises(ValueError, match=r"\bNEW\b"):
        agent_action_for(Status.NEW)


@pytest.mark.parametrize("target", [s for s in Status if s is not Status.NEW])
def test_agent_action_leads_to_its_status(target: Status) -> None:
    # From OPEN an agent may set any status but NEW (see EXPECTED_TABLE).
    assert next_status(Status.OPEN, agent_action_for(target)) is target


def test_customer_is_waited_on_in_pending_and_solved_only() -> None:
    assert [s for s in Status if customer_is_waited_on(s)] == [Status.PENDING, Status.SOLVED]


# -- properties --------------------------------------------------------------------------

actions = st.sampled_from(list(Action))
statuses = st.sampled_from(list(Status))


def walk(start: Status, steps: list[Action]) -> list[tuple[Status, Action, Status]]:
    """Apply ``steps`` from ``start``, skipping illegal ones: the moves actually made."""
    moves = []
    current = start
    for action in steps:
        try:
            new = next_status(current, action)
        except IllegalTransition:
            continue
        moves.append((current, action, new))
        current = new
    return moves


def reachable_from(start: Status) -> set[Status]:
    seen = {start}
    queue = deque([start])
    while queue:
        current = queue.popleft()
        for action in Action:
            try:
                new = next_status(current, action)
            except IllegalTransition:
                continue
            if new not in seen:
                seen.add(new)
                queue.append(new)
    return seen


@given(st.lists(actions, max_size=60))
def test_closed_is_left_only_by_reactivation(steps: list[Action]) -> None:
    for before, action, after in walk(Status.NEW, steps):
        if before is Status.CLOSED and after is not Status.CLOSED:
            assert action is Action.REACTIVATE, f"{action} left CLOSED for {after}"


def test_every_status_is_reachable_from_new() -> None:
    assert reachable_from(Status.NEW) == set(Status)


@given(statuses)
def test_status_is_reachable_from_new(target: Status) -> None:
    assert target in reachable_from(Status.NEW)


@given(statuses)
def test_every_ticket_can_still_be_closed(start: Status) -> None:
    # No dead end: from wherever a ticket is, some sequence of moves closes it.
    assert Status.CLOSED in reachable_from(start)


@given(statuses, actions)
def test_next_status_is_total(current: Status, action: Action) -> None:
    try:
        result = next_status(current, action)
    except IllegalTransition as err:
        assert err.current is current
    else:
        assert isinstance(result, Status)
