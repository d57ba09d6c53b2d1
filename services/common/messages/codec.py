"""The wire form every message on NATS shares: one UTF-8 JSON object per message."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any


def to_json(payload: Mapping[str, object], *, strict: bool = False) -> bytes:
    """``payload`` as a message body: non-ASCII text kept as is and, unless ``strict``,
    values JSON has no type for (dates, decimals) written as their text."""
    if strict:
        return json.dumps(payload, ensure_ascii=False).encode()
    return json.dumps(payload, ensure_ascii=False, default=str).encode()


def json_object(data: bytes) -> dict[str, Any]:
    """The JSON object a body holds; ``ValueError`` when it is not JSON or not an object."""
    try:
        raw: Any = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"not JSON: {err}") from err
    if not isinstance(raw, dict):
        raise ValueError("not a JSON object")
    return raw


def check_instant(value: Any, field: str) -> None:
    """``ValueError`` naming ``field`` unless ``value`` is an ISO 8601 date and time."""
    if not isinstance(value, str):
        raise ValueError(f"{field}: missing or not an ISO 8601 string")
    try:
        datetime.fromisoformat(value)
    except ValueError as err:
        raise ValueError(f"{field}: not an ISO 8601 date and time") from err
