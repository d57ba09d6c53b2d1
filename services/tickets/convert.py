"""Protobuf enums (`TICKET_STATUS_OPEN`) to and from the plain names used inside (`OPEN`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from services.common.rpc_errors import invalid


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


def ts(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


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
