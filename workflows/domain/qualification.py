"""What a ticket is (criticality, kind, product, version, OS, level) and how a
requalification changes it (pure logic, no I/O).

Seed 001's tiers decide the priority: a new criticality moves it, as ChangePriority would.
"""

from __future__ import annotations

from dataclasses import dataclass

CRITICALITIES = ("NON_BLOCKING", "BLOCKING", "CRITICAL")
KINDS = ("QUESTION", "INCIDENT", "BUG", "CHANGE_REQUEST", "QUOTE", "HARDWARE")
LEVELS = ("L1", "L2")
# Seed 001: non-blocking, blocking, absolutely critical (immediate).
PRIORITY_BY_CRITICALITY = {"CRITICAL": "URGENT", "BLOCKING": "HIGH", "NON_BLOCKING": "NORMAL"}
# The fields a requalification may set, in the order the history names them.
FIELDS = ("criticality", "kind", "product", "version", "os", "level")


@dataclass(frozen=True)
class Change:
    field: str
    old: str
    new: str

    def describe(self) -> str:
        return f"{self.field} {self.old or '-'} -> {self.new or '-'}"


def changes(current: dict[str, str], wanted: dict[str, str | None]) -> list[Change]:
    """The fields ``wanted`` sets to something else than ``current`` (None: unchanged)."""
    found = []
    for name in FIELDS:
        new = wanted.get(name)
        if new is not None and new != current.get(name, ""):
            found.append(Change(name, current.get(name, ""), new))
    return found


def invalid_field(wanted: dict[str, str | None]) -> str:
    """The first enumerated field whose value is unknown, as "field: ..."; "" when none."""
    allowed = {"criticality": CRITICALITIES, "kind": KINDS, "level": LEVELS}
    for name, values in allowed.items():
        value = wanted.get(name)
        if value is not None and value not in values:
            return f"{name}: must be one of {', '.join(values)}"
    return ""
