"""What the second-level ticket events carry in their ``detail``, as template variables.

The ticket workflow writes the detail of these events as one line of text:

- ``development_update_shipped``: ``P-7 (v2.3.1): <release notes for the customer>``
  (no parentheses when there is no fix version);
- ``programming_ticket_cancelled``: ``P-7 cancelled: <reason>``;
- ``third_party_hold`` / ``third_party_reminder``: ``[still ]waiting for <vendor> (ref. <ref>)``
  (no parentheses when there is no reference);
- ``merged`` (on the ticket that takes a merge): ``#43 (<its subject>) merged into this
  ticket: <reason>[; P-7 moved here]`` (the reason, an agent's words, is never mailed).

A detail that does not have the expected shape is not an error: the whole text is shown
where the notes, the reason or the vendor would be.
"""

from __future__ import annotations

import re

from services.common.messages.tickets import TicketEventPayload

_SHIPPED = re.compile(r"^(?P<prog>P-\d+)(?: \((?P<version>[^)]*)\))?: ?(?P<notes>.*)$", re.DOTALL)
_CANCELLED = re.compile(r"^(?P<prog>P-\d+) cancelled: ?(?P<reason>.*)$", re.DOTALL)
_MERGED = re.compile(r"^#(?P<source>\d+) \((?P<subject>.*)\) merged into this ticket:", re.DOTALL)
_THIRD_PARTY = re.compile(
    r"^(?:still )?waiting for (?P<vendor>.*?)(?: \(ref\. (?P<ref>.*)\))?$", re.DOTALL
)


def detail_context(event: TicketEventPayload) -> dict[str, str]:
    """The variables the second-level templates use (empty strings for other events)."""
    detail = (event.get("detail") or "").strip()
    ctx = {
        "prog_display_id": "",
        "fix_version": "",
        "release_notes": "",
        "cancel_reason": "",
        "vendor": "",
        "vendor_reference": "",
        "merged_display_id": "",
        "merged_subject": "",
    }
    kind = event["type"]
    if kind == "development_update_shipped":
        shipped = _SHIPPED.match(detail)
        if shipped:
            ctx["prog_display_id"] = shipped["prog"]
            ctx["fix_version"] = (shipped["version"] or "").strip()
            ctx["release_notes"] = shipped["notes"].strip()
        else:
            ctx["release_notes"] = detail
    elif kind == "programming_ticket_cancelled":
        cancelled = _CANCELLED.match(detail)
        if cancelled:
            ctx["prog_display_id"] = cancelled["prog"]
            ctx["cancel_reason"] = cancelled["reason"].strip()
        else:
            ctx["cancel_reason"] = detail
    elif kind in ("third_party_hold", "third_party_reminder"):
        waiting = _THIRD_PARTY.match(detail)
        if waiting:
            ctx["vendor"] = waiting["vendor"].strip()
            ctx["vendor_reference"] = (waiting["ref"] or "").strip()
        else:
            ctx["vendor"] = detail
    elif kind == "merged":
        merged = _MERGED.match(detail)
        if merged:
            ctx["merged_display_id"] = f"#{merged['source']}"
            ctx["merged_subject"] = merged["subject"].strip()
    return ctx
