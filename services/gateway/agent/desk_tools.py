"""The desk's tool pages: the front desk's phone form, the team lead's dashboard, the
developers' queue and administration (one module each)."""

from __future__ import annotations

from fastapi import APIRouter

from services.gateway.agent import admin, dashboard, development, front_desk
from services.gateway.agent.tool_pages import Tools
from services.gateway.web import Web


def routes(web: Web) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    tools = Tools(web)
    for part in (front_desk, dashboard, development, admin):
        router.include_router(part.routes(tools))
    return router
