"""The layers a newcomer can rely on: no service imports another, ``services.common``
imports no service, and the workflows import no service code (their determinism and the
sandbox depend on it). The process entry points are the only places that join them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {"intake", "tickets", "notify", "dev_escalation", "gateway", "cli", "launcher"}
# Where the layers meet on purpose: the image's entry point starts every service, the CLI
# reads the launcher's endpoints file, and the workflow worker's process hosts the
# workflows with the services' plumbing (health port, settings) imported in its main(),
# started like every process through the entry point.
JOINS = {
    ("services/entrypoint.py", "services"),
    ("services/cli/client.py", "services.launcher"),
    ("workflows/worker.py", "services.common"),
    ("workflows/worker.py", "services.entrypoint"),
}


def imported(path: Path) -> set[str]:
    """Every absolute module an import in ``path`` names (at any depth: lazy ones count)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def crosses(layer: tuple[str, ...], module: str) -> bool:
    """Whether a file at ``layer`` (path parts) importing ``module`` leaves its layer."""
    parts = module.split(".")
    if parts[0] != "services":
        return False
    if layer[0] == "workflows":
        return True
    in_a_service = len(layer) > 2  # services/<name>/...; services/entrypoint.py is not
    return len(parts) > 1 and parts[1] in SERVICES and not (in_a_service and parts[1] == layer[1])


def crossings() -> list[tuple[str, str]]:
    files = [*ROOT.joinpath("services").rglob("*.py"), *ROOT.joinpath("workflows").rglob("*.py")]
    found: list[tuple[str, str]] = []
    for path in sorted(files):
        layer = path.relative_to(ROOT).parts
        where = path.relative_to(ROOT).as_posix()
        found += [(where, m) for m in sorted(imported(path)) if crosses(layer, m)]
    return found


def allowed(where: str, module: str, joins: set[tuple[str, str]] = JOINS) -> bool:
    return any(where == w and (module == m or module.startswith(f"{m}.")) for w, m in joins)


def test_no_layer_imports_what_it_must_not() -> None:
    assert [c for c in crossings() if not allowed(*c)] == []


def test_every_join_listed_is_still_used() -> None:
    """A join that is gone leaves the list, so that the list stays the truth."""
    used = {join for join in JOINS if any(allowed(w, m, {join}) for w, m in crossings())}
    assert used == JOINS


def test_no_test_module_imports_another() -> None:
    """What tests share lives in fixture and helper modules, never in a test module."""
    found = []
    for path in sorted(ROOT.joinpath("tests").rglob("*.py")):
        for module in imported(path):
            last = module.rsplit(".", 1)[-1]
            if module.startswith("tests.") and last.startswith("test_"):
                found.append((path.relative_to(ROOT).as_posix(), module))
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tests"):
                found += [
                    (path.relative_to(ROOT).as_posix(), f"{node.module}.{alias.name}")
                    for alias in node.names
                    if alias.name.startswith("test_")
                ]
    assert found == []
