"""Our Message-IDs: only the ones we wrote verify; older and forged ones still thread."""

from __future__ import annotations

import hashlib
import re

import pytest

from services.common.mail_threading import MessageIds, OurMessageId, mail_domain, thread_id

pytestmark = pytest.mark.unit

KEY = "a-signing-key-of-at-least-32-characters"
IDS = MessageIds(KEY, "helpdesk.test")
# The shape intake's threading has matched so far: new IDs must keep matching it.
LEGACY_SHAPE = re.compile(
    r"^<(?:ticket-(\d{1,12})|notify\.[a-z_]+\.t(\d{1,12})\.[0-9a-f]{32})@helpdesk\.test>$",
    re.IGNORECASE,
)


def test_an_id_we_wrote_verifies_and_names_its_ticket() -> None:
    written = IDS.notification("ticket-42-ev-1", "agent_reply", 42)
    assert written.startswith("<notify.agent_reply.t42.") and written.endswith("@helpdesk.test>")
    assert written == IDS.notification("ticket-42-ev-1", "agent_reply", 42)  # a resend
    assert written != IDS.notification("ticket-42-ev-2", "agent_reply", 42)
    assert IDS.parse(written) == OurMessageId(42, "agent_reply", verified=True)
    assert IDS.parse(f"  {written.upper()} ") == OurMessageId(42, "agent_reply", verified=True)
    assert LEGACY_SHAPE.match(written) is not None
    no_ticket = IDS.notification("secret-ev-1", "credentials_issued")
    assert re.fullmatch(r"<notify\.credentials_issued\.[0-9a-f]{32}@helpdesk\.test>", no_ticket)
    assert IDS.parse(no_ticket) == OurMessageId(0, "credentials_issued", verified=True)


def test_ids_we_did_not_write_thread_but_do_not_verify() -> None:
    written = IDS.notification("ticket-42-ev-1", "created", 42)
    # Written before the seal: anyone could compute it from the event ID.
    digest = hashlib.sha256(b"ticket-42-ev-1\x00created").hexdigest()[:32]
    legacy = f"<notify.created.t42.{digest}@helpdesk.test>"
    other_key = MessageIds("another-key", "helpdesk.test").notification(
        "ticket-42-ev-1", "created", 42
    )
    retargeted = written.replace(".t42.", ".t7.")
    retemplated = written.replace(".created.", ".solved.")
    for forged, ticket, template in (
        (legacy, 42, "created"),
        (other_key, 42, "created"),
        (retargeted, 7, "created"),
        (retemplated, 42, "solved"),
    ):
        assert IDS.parse(forged) == OurMessageId(ticket, template, verified=False), forged
    assert IDS.parse(thread_id(42, "helpdesk.test")) == OurMessageId(42, "", verified=False)


def test_what_is_not_ours_is_none() -> None:
    written = IDS.notification("ticket-42-ev-1", "created", 42)
    for other in (
        written.replace("@helpdesk.test", "@evil.test"),
        "<notify.x@helpdesk.test>",
        "<first-1@acme.it>",
        written[1:],
        written.replace("@", "\n@"),
        "",
    ):
        assert IDS.parse(other) is None, other
    with pytest.raises(ValueError):
        IDS.notification("ev", "Created.Evil")
    with pytest.raises(ValueError):
        MessageIds("", "helpdesk.test")


def test_the_domain_is_the_support_address_s() -> None:
    assert mail_domain("Assistenza <Assistenza@Helpdesk.Test>") == "helpdesk.test"
    assert mail_domain("") == "helpdesk.localhost"
    assert thread_id(42, "Helpdesk.Test") == "<ticket-42@helpdesk.test>"
