"""Closing after verification (seed 002: "concorda la chiusura del ticket indicando le ore
impiegate"): the hours spent come with the close or were logged before, at first level as
at second; the ticket's workflow refuses a close without them."""

from __future__ import annotations

from helpdesk.v1 import tickets_pb2 as tpb
from services.common.rpc_errors import invalid

MAX_HOURS = 24.0


def closing_hours(request: tpb.ChangeStatusRequest, target: str) -> float:
    """The hours given with ``ChangeStatus`` (0: none), only for a close."""
    hours = request.hours_spent
    if hours == 0:
        return 0.0
    if target != "CLOSED":
        invalid("hours_spent", "is given only when closing (status CLOSED); log time with LogTime")
    if not 0 < hours <= MAX_HOURS:
        invalid("hours_spent", f"must be more than 0 and at most {MAX_HOURS:g}")
    return round(hours, 4)
