"""Protobuf enums (`TICKET_STATUS_OPEN`) to and from the plain names used inside (`OPEN`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from google.protobuf.timestamp_pb2 import Timestamp

from services.common.rpc_errors import invalid

if TYPE_CHECKING:
    from google.protobuf.internal.enum_type_wrapper import _EnumTypeWrapper

_V = TypeVar("_V", bound=int)


def _prefix(enum: Any) -> str:
    first: str = enum.DESCRIPTOR.values[0].name
    return first[: -len("UNSPECIFIED")]


def name_of(enum: Any, value: int) -> str:
    """``TICKET_STATUS_OPEN`` -> ``OPEN``; ``""`` for UNSPECIFIED."""
    full: str = enum.Name(value)
    short = full[len(_prefix(enum)) :]
    return "" if short == "UNSPECIFIED" else short


def value_of(enum: Any, name: str) -> Any:
    """``OPEN`` -> the enum number (typed as the enum's ValueType); 0 for ``""``."""
    if not name:
        return 0
    return enum.Value(_prefix(enum) + name)


def enum_values(enum: _EnumTypeWrapper[_V]) -> dict[str, _V]:
    """Every plain name of ``enum`` with its number (``""`` and ``UNSPECIFIED`` are 0): what
    ``value_of`` answers, as one dictionary built once, for code that converts every row of
    a page (an unknown name is a ``KeyError`` there, as it is a ``ValueError`` here)."""
    prefix = _prefix(enum)
    values = {name[len(prefix) :]: number for name, number in enum.items()}
    values[""] = values["UNSPECIFIED"]
    return values


def required_name(enum: Any, value: int, field: str) -> str:
    """The plain name of a set enum field; ``INVALID_ARGUMENT`` naming ``field`` otherwise."""
    try:
        name = name_of(enum, value)
    except ValueError:
        invalid(field, f"unknown value {value}")
    if not name:
        invalid(field, "is required")
    return name


def optional_name(enum: Any, value: int, field: str) -> str:
    try:
        return name_of(enum, value)
    except ValueError:
        invalid(field, f"unknown value {value}")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def ts(value: datetime | None) -> Timestamp | None:
    """``value`` as a Timestamp (a naive one read as UTC), the same as
    ``Timestamp.FromDatetime`` gives, in a few times less time: a page converts hundreds."""
    if value is None:
        return None
    since = (value if value.tzinfo is not None else value.replace(tzinfo=UTC)) - _EPOCH
    return Timestamp(seconds=since.days * 86_400 + since.seconds, nanos=value.microsecond * 1000)


CRITICALITY_PRIORITY = {"CRITICAL": "URGENT", "BLOCKING": "HIGH", "NON_BLOCKING": "NORMAL"}


def priority_for(criticality: str, requested: str) -> str:
    """Seed 001 tiers map to priorities; an explicit priority wins, but only CRITICAL may
    claim URGENT from the customer side (seed 003)."""
    derived = CRITICALITY_PRIORITY.get(criticality, "NORMAL")
    if not requested:
        return derived
    if requested == "URGENT" and criticality != "CRITICAL":
        invalid("priority", "URGENT is reserved for CRITICAL requests")
    return requested
