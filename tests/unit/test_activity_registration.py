"""Every activity a workflow calls is defined and registered by the service that owns its
task queue; workflow code stays free of service plumbing (DESIGN.md §3 layering)."""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from temporalio import activity

import workflows.contracts as contracts
import workflows.maintenance_contracts as maintenance_contracts
import workflows.prog_contracts as prog_contracts
import workflows.quote_contracts as quote_contracts
from services.dev_escalation.activities import ProgActivities
from services.tickets.activities import TicketActivities

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS_DIR = REPO / "workflows"
WORKFLOW_MODULES = sorted(WORKFLOWS_DIR.glob("*.py"))

ACTIVITY_CALLS = {
    "execute_activity",
    "start_activity",
    "execute_local_activity",
    "start_local_activity",
}
# These take the activity callable itself, which would import the service into the workflow.
CALLABLE_ACTIVITY_CALLS = {
    "execute_activity_method",
    "start_activity_method",
    "execute_activity_class",
    "start_activity_class",
    "execute_local_activity_method",
    "start_local_activity_method",
    "execute_local_activity_class",
    "start_local_activity_class",
}


@dataclass(frozen=True)
class Owner:
    app: Path  # the module whose Worker hosts the queue's activities
    activities: type


# Task queue -> the service that hosts its activities. A new queue needs a line here.
OWNERS: dict[str, Owner] = {
    contracts.TICKETS_TASK_QUEUE: Owner(REPO / "services/tickets/app.py", TicketActivities),
    prog_contracts.DEV_ESCALATION_TASK_QUEUE: Owner(
        REPO / "services/dev_escalation/app.py", ProgActivities
    ),
}
CONTRACT_MODULES = {
    "workflows.contracts": contracts,
    "workflows.prog_contracts": prog_contracts,
    "workflows.maintenance_contracts": maintenance_contracts,
    "workflows.quote_contracts": quote_contracts,
}


@dataclass(frozen=True)
class ActivityCall:
    where: str
    name: str
    task_queue: str


def contracts_names(tree: ast.Module) -> dict[str, Any]:
    """Local name -> its value, for names imported from the workflow contract modules."""
    names: dict[str, Any] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in CONTRACT_MODULES:
            for alias in node.names:
                names[alias.asname or alias.name] = getattr(
                    CONTRACT_MODULES[node.module], alias.name
                )
    return names


def resolve(node: ast.expr, imported: dict[str, Any], where: str) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name) and node.id in imported:
        return imported[node.id]
    pytest.fail(f"{where}: cannot resolve {ast.unparse(node)} to a constant of workflows.contracts")


def activity_calls(path: Path) -> list[ActivityCall]:
    tree = ast.parse(path.read_text(), str(path))
    imported = contracts_names(tree)
    calls = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        where = f"{path.relative_to(REPO)}:{node.lineno}"
        if node.func.attr in CALLABLE_ACTIVITY_CALLS:
            pytest.fail(f"{where}: call activities by a name from workflows.contracts")
        if node.func.attr not in ACTIVITY_CALLS:
            continue
        keywords = {k.arg: k.value for k in node.keywords}
        name_node = node.args[0] if node.args else keywords.get("activity")
        assert name_node is not None, f"{where}: activity call without an activity"
        queue_node = keywords.get("task_queue")
        # Without task_queue the activity runs on the workflow's own queue.
        queue = (
            resolve(queue_node, imported, where)
            if queue_node is not None
            else contracts.WORKFLOW_TASK_QUEUE
        )
        calls.append(ActivityCall(where, resolve(name_node, imported, where), queue))
    return calls


def defined_activities(cls: type) -> dict[str, str]:
    """Activity name -> method name, for the methods of ``cls`` decorated with activity.defn."""
    found: dict[str, str] = {}
    for klass in reversed(cls.__mro__):  # inherited activities (mixins) count too
        for attr, fn in vars(klass).items():
            defn = activity._Definition.from_callable(fn) if callable(fn) else None
            if defn is not None and defn.name is not None:
                found[defn.name] = attr
    return found


def worker_activity_methods(app: Path, queue: str, cls: type) -> set[str]:
    """Methods of ``cls`` listed in ``activities=[...]`` of the Worker on ``queue`` in ``app``."""
    tree = ast.parse(app.read_text(), str(app))
    imported = contracts_names(tree)
    instances = {
        target.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Name)
        and node.value.func.id == cls.__name__
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    methods: set[str] = set()
    workers = 0
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and ast.unparse(node.func).endswith("Worker")):
            continue
        keywords = {k.arg: k.value for k in node.keywords}
        if "task_queue" not in keywords or "activities" not in keywords:
            continue
        if resolve(keywords["task_queue"], imported, str(app)) != queue:
            continue
        workers += 1
        listed = keywords["activities"]
        assert isinstance(listed, ast.List | ast.Tuple), f"{app}: activities is not a literal list"
        for elt in listed.elts:
            if (
                isinstance(elt, ast.Attribute)
                and isinstance(elt.value, ast.Name)
                and elt.value.id in instances
            ):
                methods.add(elt.attr)
    assert workers == 1, (
        f"{app.relative_to(REPO)}: expected one Worker on {queue!r}, found {workers}"
    )
    return methods


def all_activity_calls() -> list[ActivityCall]:
    return [call for path in WORKFLOW_MODULES for call in activity_calls(path)]


def test_workflows_call_activities() -> None:
    # Guards the scan itself: the ticket workflow records every change through an activity.
    names = {call.name for call in all_activity_calls()}
    assert contracts.RECORD_TICKET_CHANGE in names


@pytest.mark.parametrize("call", all_activity_calls(), ids=lambda c: f"{c.name}@{c.where}")
def test_called_activity_is_registered_by_its_owner(call: ActivityCall) -> None:
    owner = OWNERS.get(call.task_queue)
    assert owner is not None, (
        f"{call.where}: activity {call.name!r} runs on task queue {call.task_queue!r}, "
        "which no service hosts"
    )
    defined = defined_activities(owner.activities)
    assert call.name in defined, (
        f"{call.where}: {owner.activities.__qualname__} defines no @activity.defn(name="
        f"{call.name!r}); it defines {sorted(defined)}"
    )
    listed = worker_activity_methods(owner.app, call.task_queue, owner.activities)
    assert defined[call.name] in listed, (
        f"{call.where}: {owner.app.relative_to(REPO)} does not register "
        f"{owner.activities.__name__}.{defined[call.name]} ({call.name!r}) on its Worker"
    )


@pytest.mark.parametrize("queue", sorted(OWNERS))
def test_worker_registers_only_defined_activities(queue: str) -> None:
    owner = OWNERS[queue]
    listed = worker_activity_methods(owner.app, queue, owner.activities)
    assert listed, f"{owner.app.relative_to(REPO)} registers no {owner.activities.__name__} method"
    undefined = sorted(listed - set(defined_activities(owner.activities).values()))
    assert not undefined, f"registered without @activity.defn: {undefined}"


# -- layering -----------------------------------------------------------------------------

FORBIDDEN = ("sqlalchemy", "grpc", "nats", "services", "helpdesk", "google.protobuf")
ALLOWED_ROOTS = {"__future__", "temporalio", "workflows", "holidays"} | set(sys.stdlib_module_names)
# The worker process's entry point may import service plumbing inside main(), never at module
# level; every other module under workflows/ is loaded into the workflow sandbox.
ENTRY_POINTS = {"worker.py"}
LAYERED_MODULES = sorted(WORKFLOWS_DIR.rglob("*.py"))


def imported_modules(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    nodes = tree.body if path.name in ENTRY_POINTS else list(ast.walk(tree))
    found: list[tuple[int, str]] = []
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def forbidden(module: str) -> bool:
    return any(
        module == f or module.startswith(f + ".") or module.startswith(f + "_") for f in FORBIDDEN
    )


def test_layering_scan_sees_imports() -> None:
    assert any(m == "temporalio" for _, m in imported_modules(WORKFLOWS_DIR / "ticket.py"))
    assert forbidden("sqlalchemy.orm") and forbidden("grpc_health.v1") and forbidden("services")
    assert not forbidden("servicesx") and not forbidden("temporalio.workflow")


@pytest.mark.parametrize("path", LAYERED_MODULES, ids=lambda p: str(p.relative_to(WORKFLOWS_DIR)))
def test_workflow_module_imports_only_temporalio_contracts_and_domain(path: Path) -> None:
    where = path.relative_to(REPO)
    imports = imported_modules(path)
    bad = [f"{where}:{line} imports {m}" for line, m in imports if forbidden(m)]
    assert not bad, "workflows must not import service plumbing: " + "; ".join(bad)
    other = [
        f"{where}:{line} imports {m}" for line, m in imports if m.split(".")[0] not in ALLOWED_ROOTS
    ]
    assert not other, "workflows import only temporalio, workflows.* and the stdlib: " + (
        "; ".join(other)
    )
