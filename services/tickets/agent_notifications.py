"""An agent's alert preferences (``DirectoryService.SetAgentNotifications``): which kinds of
alert reach them, by email and by instant message.

Stored on the agent as the list of what is turned off (``"digest.email"``), so a new kind
is on for everyone until they turn it off, and an agent nobody configured gets everything.
Notify reads them back through ``GetAgent`` each time it is about to alert someone.
"""

from __future__ import annotations

import grpc

from helpdesk.v1 import directory_pb2 as dpb
from services.common.access import Principal, Role
from services.common.rpc_errors import RpcError

# The proto's field names in AgentNotifications, in its order.
KINDS = ("new_ticket", "assigned", "customer_reply", "reassigned_away", "digest")
CHANNELS = ("email", "im")
# Who may set another agent's preferences.
MANAGERS = frozenset({Role.TEAM_LEAD, Role.ADMIN, Role.SERVICE})


def notifications_pb(off: list[str]) -> dpb.AgentNotifications:
    """Every kind and channel, on unless listed in ``off``."""
    found = set(off or ())
    result = dpb.AgentNotifications()
    for kind in KINDS:
        channels: dpb.NotificationChannels = getattr(result, kind)
        for channel in CHANNELS:
            setattr(channels, channel, f"{kind}.{channel}" not in found)
    return result


def updated(off: list[str], request: dpb.AgentNotifications) -> list[str]:
    """``off`` with the kinds and channels ``request`` sets (unset ones unchanged), sorted."""
    found = {item for item in off or () if item.partition(".")[0] in KINDS}
    for kind in KINDS:
        if not request.HasField(kind):  # type: ignore[arg-type]
            continue
        channels: dpb.NotificationChannels = getattr(request, kind)
        for channel in CHANNELS:
            if channels.HasField(channel):  # type: ignore[arg-type]
                key = f"{kind}.{channel}"
                if getattr(channels, channel):
                    found.discard(key)
                else:
                    found.add(key)
    return sorted(found)


def check_may_set(who: Principal, agent_id: int) -> None:
    """Agents set their own preferences; team leads, the admin and services anyone's."""
    if who.role in MANAGERS:
        return
    if who.kind == "AGENT" and who.id == agent_id:
        return
    raise RpcError(
        grpc.StatusCode.PERMISSION_DENIED,
        f"agent_id: only agent {agent_id}, a team lead or an admin may change these alerts",
    )
