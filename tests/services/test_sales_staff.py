"""The sales office's staff: an admin adds a SALES agent in the directory, who signs in
with a password, lists the requests and the people they need, and is among the owners and
among those told of a new request."""

from __future__ import annotations

import uuid

import grpc
import pytest

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import sales_pb2 as spb
from services.common.auth import bearer_metadata
from tests.services import sales_fixtures
from tests.services.sales_fixtures import Office, fails, portal_request, sales_events

office = sales_fixtures.office  # the fixture

pytestmark = [pytest.mark.db, pytest.mark.timeout(120)]


async def test_a_new_sales_agent_signs_in_and_works_requests(office: Office) -> None:
    email = f"vera.{uuid.uuid4().hex[:6]}@desk.it"
    agent = await office.directory.CreateAgent(
        dpb.CreateAgentRequest(name="Vera Vendite", email=email, role=pb.AGENT_ROLE_SALES),
        metadata=office.admin,
    )
    assert agent.role == pb.AGENT_ROLE_SALES
    listed = await office.directory.ListAgents(dpb.ListAgentsRequest(), metadata=office.admin)
    assert pb.AGENT_ROLE_SALES in [a.role for a in listed.agents if a.id == agent.id]
    await office.directory.SetPassword(
        dpb.SetPasswordRequest(
            kind=dpb.PRINCIPAL_KIND_AGENT, id=agent.id, new_password="password-di-vera"
        ),
        metadata=office.admin,
    )
    login = await office.directory.Login(dpb.LoginRequest(email=email, password="password-di-vera"))
    assert login.role == "SALES" and login.id == agent.id
    vera = bearer_metadata(login.access_token)

    # What the console needs: who they are, their colleagues, the requests.
    me = await office.directory.GetAgent(dpb.GetAgentRequest(id=agent.id), metadata=vera)
    assert me.name == "Vera Vendite"
    await office.directory.ListAgents(dpb.ListAgentsRequest(), metadata=vera)
    made = await office.sales.CreateSalesRequest(portal_request(), metadata=office.mario)
    found = await office.sales.ListSalesRequests(spb.ListSalesRequestsRequest(), metadata=vera)
    assert [r.id for r in found.requests] == [made.id]
    taken = await office.sales.AssignSalesRequest(
        spb.AssignSalesRequestRequest(id=made.id, owner_id=agent.id), metadata=vera
    )
    assert taken.owner_name == "Vera Vendite"
    # They are told of each new request, and they do not upload price lists.
    [created, assigned] = await sales_events(office, made.id)
    assert email in [p["email"] for p in created["sales_emails"]]
    assert assigned["assigned_by_id"] == assigned["owner_id"] == agent.id
    await fails(
        grpc.StatusCode.PERMISSION_DENIED,
        office.sales.UploadPriceList(spb.UploadPriceListRequest(), metadata=vera),
    )
