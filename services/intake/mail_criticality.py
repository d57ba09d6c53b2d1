"""Seed 001's tiers for mail: an email ticket is NON_BLOCKING unless its subject has one
of the critical words instant messages are read for (``HELPDESK_CRITICAL_KEYWORDS``),
then CRITICAL; an agent requalifies it (``RequalifyTicket``) when it is BLOCKING."""

from __future__ import annotations

import re

from helpdesk.v1 import common_pb2 as pb
from services.common.settings import DEFAULT_CRITICAL_KEYWORDS
from services.intake.im_processor import keyword_matcher

DEFAULT_KEYWORDS = tuple(
    k.strip().lower() for k in DEFAULT_CRITICAL_KEYWORDS.split(",") if k.strip()
)


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


class MailCriticality:
    def __init__(self, keywords: tuple[str, ...] | None = None) -> None:
        self.matcher = keyword_matcher(DEFAULT_KEYWORDS if keywords is None else keywords)

    def of(self, subject: str) -> pb.Criticality.ValueType:
        if self.matcher is not None and self.matcher.search(_norm(subject)):
            return pb.CRITICALITY_CRITICAL
        return pb.CRITICALITY_NON_BLOCKING
