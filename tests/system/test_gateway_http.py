"""The gateway over plain HTTP against the whole system: the JSON API and its status codes,
sessions, CSRF, escaping, security headers, oversized uploads, double submits, password
reset through the pages, the request form for non-customers, and a service that is down."""

from __future__ import annotations

import base64
import re
import uuid
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import sales_pb2 as spb
from helpdesk.v1 import tickets_pb2 as tpb
from services.common.embedded import EmbeddedProcess
from services.common.limits import MAX_ATTACHMENT_BYTES
from tests.support import eventually
from tests.system.browser import generated_password, mail_to
from tests.system.conftest import CORE, running_system

pytestmark = [pytest.mark.system, pytest.mark.db, pytest.mark.timeout(300)]

# A functional check, not a timing one: a loaded CI machine may take seconds on a request.
WEB_TIMEOUT = 30.0
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_REQUEST_ID = re.compile(r'name="request_id" value="([^"]+)"')


async def form_tokens(client: httpx.AsyncClient, path: str) -> tuple[str, str]:
    """The CSRF token and the request ID of the form on ``path``."""
    page = await client.get(path)
    assert page.status_code == 200, page.text
    request_id = _REQUEST_ID.search(page.text)
    return _CSRF.search(page.text).group(1), request_id.group(1) if request_id else ""  # type: ignore[union-attr]


async def portal_sign_in(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    csrf, _ = await form_tokens(client, "/login")
    return await client.post(
        "/login", data={"csrf_token": csrf, "email": email, "password": password, "next": ""}
    )


async def test_api_pages_and_failures(
    tmp_path: Path,
    temporal_dev_server: EmbeddedProcess,
    temporal_client: Client,
    nats_url: str,
    database_url: str,
) -> None:
    async with running_system(
        tmp_path, temporal_dev_server, nats_url, database_url, (*CORE, "gateway")
    ) as (sut, box):
        directory, md = sut.directory(), sut.metadata
        suffix = uuid.uuid4().hex[:6]
        org = await directory.CreateOrganization(
            dpb.CreateOrganizationRequest(name=f"Oripan {suffix}"), metadata=md
        )
        other = await directory.CreateOrganization(
            dpb.CreateOrganizationRequest(name=f"Altra {suffix}"), metadata=md
        )
        email, other_email = f"giulia.{suffix}@oripan.it", f"paolo.{suffix}@altra.it"
        for org_id, name, address in (
            (org.id, "Giulia Neri", email),
            (other.id, "Paolo Blu", other_email),
        ):
            await directory.AddContact(
                dpb.AddContactRequest(organization_id=org_id, name=name, email=address),
                metadata=md,
            )
        password = generated_password(
            await eventually(lambda: mail_to(box, email, "Password:"), timeout=30)
        )
        other_password = generated_password(
            await eventually(lambda: mail_to(box, other_email, "Password:"), timeout=30)
        )

        async with httpx.AsyncClient(base_url=sut.portal_url, timeout=WEB_TIMEOUT) as anon:
            assert (await anon.get("/healthz")).status_code == 200
            assert (await anon.get("/readyz")).status_code == 200
            login_page = await anon.get("/login")
            csp = login_page.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
            assert "unsafe-inline" not in csp
            assert login_page.headers["x-content-type-options"] == "nosniff"
            assert (await anon.get("/static/htmx.min.js")).status_code == 200
            # A page that needs a session sends to sign-in, and remembers where to come back.
            asked = await anon.get("/tickets/1")
            assert asked.status_code == 303
            assert asked.headers["location"].startswith("/login?next=%2Ftickets%2F1")
            # No CSRF token: refused, and nobody signed in.
            forged = await anon.post("/login", data={"email": email, "password": password})
            assert forged.status_code == 403
            # A wrong password says nothing about whether the email exists.
            wrong = await portal_sign_in(anon, email, "sbagliata-2026")
            unknown = await portal_sign_in(anon, f"nessuno.{suffix}@oripan.it", "sbagliata-2026")
            assert wrong.status_code == unknown.status_code == 401
            assert "Email o password errate" in wrong.text
            assert "Email o password errate" in unknown.text

        # -- the JSON API with a bearer token -------------------------------------------
        async with httpx.AsyncClient(base_url=sut.portal_url, timeout=WEB_TIMEOUT) as api:
            schema = (await api.get("/api/openapi.json")).json()
            assert "/api/v1/tickets" in schema["paths"]
            assert (await api.get("/api/docs")).status_code == 200
            assert (await api.get("/api/v1/tickets")).status_code == 401
            bad = await api.post("/api/v1/login", json={"email": email, "password": "no-no-no"})
            assert bad.status_code == 401 and bad.json()["error"]["code"] == "UNAUTHENTICATED"
            tokens = (
                await api.post("/api/v1/login", json={"email": email, "password": password})
            ).json()
            me = {"Authorization": f"Bearer {tokens['access_token']}"}
            body = {
                "subject": "<script>alert('x')</script> Fattura",
                "description": "Il totale è <b>sbagliato</b>",
                "criticality": "NON_BLOCKING",
                "request_id": f"api-{suffix}",
                "attachments": [
                    {
                        "filename": "nota.txt",
                        "content_type": "text/plain",
                        "content_base64": base64.b64encode(b"riga 1\n").decode(),
                    }
                ],
            }
            created = await api.post("/api/v1/tickets", json=body, headers=me)
            assert created.status_code == 201, created.text
            ticket = created.json()
            # A retry with the same request ID is the same ticket.
            again = await api.post("/api/v1/tickets", json=body, headers=me)
            assert again.json()["id"] == ticket["id"]
            listed = (await api.get("/api/v1/tickets", headers=me)).json()
            assert [t["id"] for t in listed["tickets"]] == [ticket["id"]]
            empty = await api.post(
                "/api/v1/tickets", json={**body, "subject": " ", "request_id": ""}, headers=me
            )
            assert empty.status_code == 400 and empty.json()["error"]["field"] == "subject"
            early = await api.post(f"/api/v1/tickets/{ticket['id']}/confirm", headers=me)
            assert early.status_code == 409, early.text
            file_id = ticket["attachments"][0]["id"]
            got = await api.get(f"/api/v1/tickets/{ticket['id']}/attachments/{file_id}", headers=me)
            assert got.status_code == 200 and got.content == b"riga 1\n"
            comment = await api.post(
                f"/api/v1/tickets/{ticket['id']}/comments",
                json={"body": "Aggiungo un dettaglio.", "request_id": f"c-{suffix}"},
                headers=me,
            )
            assert comment.status_code == 201, comment.text

            theirs = (
                await api.post(
                    "/api/v1/login", json={"email": other_email, "password": other_password}
                )
            ).json()
            them = {"Authorization": f"Bearer {theirs['access_token']}"}
            hidden = await api.get(f"/api/v1/tickets/{ticket['id']}", headers=them)
            assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "NOT_FOUND"
            hidden_file = await api.get(
                f"/api/v1/tickets/{ticket['id']}/attachments/{file_id}", headers=them
            )
            assert hidden_file.status_code == 404
            assert (await api.get("/api/v1/tickets", headers=them)).json().get("tickets", []) == []

        # -- pages with a session ---------------------------------------------------------
        async with httpx.AsyncClient(base_url=sut.portal_url, timeout=WEB_TIMEOUT) as browser:
            signed_in = await portal_sign_in(browser, email, password)
            assert signed_in.status_code == 303
            cookie = signed_in.headers["set-cookie"]
            assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
            page = await browser.get(f"/tickets/{ticket['id']}")
            assert page.status_code == 200
            # Customer text is shown, never run.
            assert "<script>alert" not in page.text
            assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page.text
            assert "&lt;b&gt;sbagliato&lt;/b&gt;" in page.text
            # The page's poll gets the conversation alone, the newest comment in it; another
            # organisation's ticket is not there either way.
            polled = await browser.get(f"/tickets/{ticket['id']}/conversation")
            assert polled.status_code == 200
            assert polled.text.lstrip().startswith("<section") and "<html" not in polled.text
            assert "Aggiungo un dettaglio." in polled.text
            assert 'name="message"' not in polled.text  # no reply form: only the thread

            # A double-clicked Send: the same form twice makes one ticket.
            csrf, request_id = await form_tokens(browser, "/tickets/new")
            form = {
                "csrf_token": csrf,
                "request_id": request_id,
                "subject": "Scanner non rilevato",
                "description": "Lo scanner non viene più rilevato.",
                "criticality": str(pb.CRITICALITY_BLOCKING),
            }
            first = await browser.post("/tickets/new", data=form)
            second = await browser.post("/tickets/new", data=form)
            assert first.status_code == second.status_code == 303
            assert first.headers["location"] == second.headers["location"]

            # Over the limit: 413 naming it, and nothing stored.
            before = len(
                (await sut.tickets().ListTickets(tpb.ListTicketsRequest(), metadata=md)).tickets
            )
            csrf, request_id = await form_tokens(browser, "/tickets/new")
            too_big = await browser.post(
                "/tickets/new",
                data={**form, "csrf_token": csrf, "request_id": request_id},
                files={
                    "attachments": ("video.mp4", b"\0" * (MAX_ATTACHMENT_BYTES + 1), "video/mp4")
                },
            )
            assert too_big.status_code == 413
            assert "20 MiB" in too_big.text
            after = len(
                (await sut.tickets().ListTickets(tpb.ListTicketsRequest(), metadata=md)).tickets
            )
            assert after == before

            # Logging out ends the session on the server, not only in this browser.
            csrf, _ = await form_tokens(browser, "/tickets")
            old_cookie = browser.cookies.get("hd_session")
            await browser.post("/logout", data={"csrf_token": csrf})
            async with httpx.AsyncClient(
                base_url=sut.portal_url,
                cookies={"hd_session": old_cookie or ""},
                timeout=WEB_TIMEOUT,
            ) as copied:
                assert (await copied.get("/tickets")).status_code == 303

        # -- forgotten password through the pages ------------------------------------------
        async with httpx.AsyncClient(base_url=sut.portal_url, timeout=WEB_TIMEOUT) as anon:
            csrf, _ = await form_tokens(anon, "/forgot")
            sent = await anon.post("/forgot", data={"csrf_token": csrf, "email": email})
            assert sent.status_code == 303 and sent.headers["location"].startswith("/reset?email=")
            reset_mail = await eventually(lambda: mail_to(box, email, "/reset?email="), timeout=30)
            code = re.search(r"\b(\d{8})\b", reset_mail).group(1)  # type: ignore[union-attr]
            csrf, _ = await form_tokens(anon, "/reset")
            done = await anon.post(
                "/reset",
                data={
                    "csrf_token": csrf,
                    "email": email,
                    "code": code,
                    "new_password": "una-nuova-password-2026",
                },
            )
            assert done.status_code == 303, done.text
            assert (await portal_sign_in(anon, email, "una-nuova-password-2026")).status_code == 303

        # -- not a customer: "Invia una richiesta" becomes a sales request, never a ticket ----
        async with httpx.AsyncClient(base_url=sut.portal_url, timeout=WEB_TIMEOUT) as anon:
            csrf, request_id = await form_tokens(anon, "/request")
            prospect = f"lucia.{suffix}@nuovocliente.it"
            fields = {
                "csrf_token": csrf,
                "request_id": request_id,
                "name": "Lucia Gialli",
                "company": "Nuovo Cliente Srl",
                "email": prospect,
                "subject": "Preventivo per il gestionale",
                "message": "Vorremmo un preventivo per 10 postazioni.",
            }
            assert (await anon.post("/request", data=fields)).status_code == 200
            assert (await anon.post("/request", data=fields)).status_code == 200
            # The honeypot: filled in only by robots, and then nothing happens.
            robot = {
                **fields,
                "request_id": "web-robot",
                "email": f"bot.{suffix}@spam.example",
                "website": "x",
            }
            assert (await anon.post("/request", data=robot)).status_code == 200
            sales = await sut.intake().ListSalesRequests(
                spb.ListSalesRequestsRequest(), metadata=md
            )
            assert [r.sender for r in sales.requests] == [prospect]
            await eventually(lambda: mail_to(box, prospect, ""), timeout=30)

        # -- a service down: a readable 503 that keeps what was written ----------------------
        async with httpx.AsyncClient(base_url=sut.portal_url, timeout=WEB_TIMEOUT) as browser:
            await portal_sign_in(browser, email, "una-nuova-password-2026")
            csrf, request_id = await form_tokens(browser, "/tickets/new")
            sut.kill("intake")
            down = await browser.post(
                "/tickets/new",
                data={
                    **form,
                    "csrf_token": csrf,
                    "request_id": request_id,
                    "subject": "Da non perdere",
                },
            )
            assert down.status_code == 503
            assert 'value="Da non perdere"' in down.text
            assert (await browser.get("/readyz")).status_code == 503
