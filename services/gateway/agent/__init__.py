"""The agent console: the desk's own pages under ``/agent/``, for AGENT, TEAM_LEAD,
FRONT_DESK, DEVELOPER, SALES and ADMIN. Each page calls the gRPC services with the signed-in
person's token, so the services' access table decides what each role may do and see.

- ``queues``: the queues with counts and filters, and the live feed (``live``);
- ``workspace``: a ticket's page and every action on it;
- ``search``: tickets and articles by their words, and a ticket's similar tickets and
  articles; ``articles``: the knowledge base's articles, written and published;
- ``desk_tools``: the front desk's phone form, the team lead's dashboard, the developers'
  queue, administration;
- ``sales``: the sales office's requests, and the price list's versions.
"""

from __future__ import annotations

from fastapi import APIRouter

from services.gateway.agent import articles, desk_tools, live, queues, sales, search, workspace
from services.gateway.web import Web


def agent_routes(web: Web) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    for part in (live, queues, workspace, desk_tools, search, articles, sales):
        router.include_router(part.routes(web))
    return router
