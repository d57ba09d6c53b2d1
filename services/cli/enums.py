"""Protobuf enums as command-line words: ``on-hold`` <-> ``TICKET_STATUS_ON_HOLD``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Generic, TypeVar

from helpdesk.v1 import (
    common_pb2,
    dev_escalation_pb2,
    directory_pb2,
    knowledge_pb2,
    notify_pb2,
    tickets_pb2,
)

if TYPE_CHECKING:
    from google.protobuf.internal.enum_type_wrapper import _EnumTypeWrapper

V = TypeVar("V", bound=int)


class EnumWords(Generic[V]):
    """The values of one protobuf enum, spelt in lower case with dashes and no prefix.

    An instance is also an argparse ``type``: it turns a word into the enum value.
    """

    def __init__(self, wrapper: _EnumTypeWrapper[V], prefix: str) -> None:
        self._wrapper = wrapper
        self._prefix = prefix
        self.__name__ = prefix.rstrip("_").lower()  # argparse names the type in its errors

    @property
    def words(self) -> list[str]:
        return [
            name[len(self._prefix) :].lower().replace("_", "-")
            for name in self._wrapper.keys()  # noqa: SIM118 (an enum wrapper, not a dict)
            if not name.endswith("_UNSPECIFIED")
        ]

    def __call__(self, word: str) -> V:
        name = self._prefix + word.strip().upper().replace("-", "_")
        if name.endswith("_UNSPECIFIED") or name not in self._wrapper.keys():  # noqa: SIM118
            raise argparse.ArgumentTypeError(
                f"invalid choice: {word!r} (choose from {', '.join(self.words)})"
            )
        return self._wrapper.Value(name)

    def label(self, value: int) -> str:
        """``ON_HOLD`` for ``TICKET_STATUS_ON_HOLD``, ``-`` if unspecified, else the number."""
        try:
            name = self._wrapper.Name(value)  # type: ignore[arg-type]
        except ValueError:
            return str(value)
        if name.endswith("_UNSPECIFIED"):
            return "-"
        return name[len(self._prefix) :]


TICKET_STATUS = EnumWords(common_pb2.TicketStatus, "TICKET_STATUS_")
PRIORITY = EnumWords(common_pb2.Priority, "PRIORITY_")
CRITICALITY = EnumWords(common_pb2.Criticality, "CRITICALITY_")
TICKET_KIND = EnumWords(common_pb2.TicketKind, "TICKET_KIND_")
CHANNEL = EnumWords(common_pb2.Channel, "CHANNEL_")
SUPPORT_LEVEL = EnumWords(common_pb2.SupportLevel, "SUPPORT_LEVEL_")
CONTACT_ROLE = EnumWords(common_pb2.ContactRole, "CONTACT_ROLE_")
AGENT_ROLE = EnumWords(common_pb2.AgentRole, "AGENT_ROLE_")
CLOSED_TICKET_POLICY = EnumWords(common_pb2.ClosedTicketPolicy, "CLOSED_TICKET_POLICY_")
COMMENT_VISIBILITY = EnumWords(common_pb2.CommentVisibility, "COMMENT_VISIBILITY_")
AUTHOR_KIND = EnumWords(common_pb2.AuthorKind, "AUTHOR_KIND_")
CLOSE_REASON = EnumWords(common_pb2.CloseReason, "CLOSE_REASON_")
SLA_TARGET = EnumWords(common_pb2.SlaTarget, "SLA_TARGET_")
SLA_STATE = EnumWords(common_pb2.SlaState, "SLA_STATE_")
DELIVERY_STATUS = EnumWords(notify_pb2.DeliveryStatus, "DELIVERY_STATUS_")
PROG_STATUS = EnumWords(dev_escalation_pb2.ProgStatus, "PROG_STATUS_")
PROG_URGENCY = EnumWords(dev_escalation_pb2.ProgUrgency, "PROG_URGENCY_")
HOLD_REASON = EnumWords(common_pb2.HoldReason, "HOLD_REASON_")
INTERACTION_TYPE = EnumWords(common_pb2.InteractionType, "INTERACTION_TYPE_")
CALL_DIRECTION = EnumWords(common_pb2.CallDirection, "CALL_DIRECTION_")
TICKET_ORDER = EnumWords(tickets_pb2.TicketOrder, "TICKET_ORDER_")
MAINTENANCE_MEDIUM = EnumWords(tickets_pb2.MaintenanceMedium, "MAINTENANCE_MEDIUM_")
MAINTENANCE_STATUS = EnumWords(tickets_pb2.MaintenanceStatus, "MAINTENANCE_STATUS_")
IM_PROVIDER = EnumWords(directory_pb2.ImProvider, "IM_PROVIDER_")
ARTICLE_STATUS = EnumWords(knowledge_pb2.ArticleStatus, "ARTICLE_STATUS_")
ARTICLE_VISIBILITY = EnumWords(knowledge_pb2.ArticleVisibility, "ARTICLE_VISIBILITY_")
