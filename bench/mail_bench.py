"""The mail scenarios: ``mail_accept`` (SMTP ``DATA`` to ``250``, the durable write
included) and ``mail_to_ticket`` (``DATA`` until the ticket or comment is recorded)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiosmtplib

from bench import corpus
from bench.harness import Result, Sizes, result
from bench.infra import HelpDesk, event_watch, latency_summary, log, start_python, wait_port
from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import directory_pb2 as dpb
from services.common.embedded import free_port


async def mail_scenarios(
    work: Path, hd: HelpDesk, bare: Any, sizes: Sizes, targets: list[int]
) -> list[Result]:
    """``[mail_accept, mail_to_ticket]``; ``bare`` is the bare service stack
    (``bench.stack.BareStack``), ``targets`` open tickets the corpus's replies name."""
    return [await _mail_ingest(work, hd, sizes, targets)]


async def _send_all(
    port: int, mails: list[tuple[corpus.Sample, bytes]], connections: int
) -> tuple[float, list[float]]:
    """Send every message over ``connections`` SMTP sessions; (wall, per-message DATA times)."""
    lanes = [mails[i::connections] for i in range(connections)]
    latencies: list[float] = []

    async def lane(batch: list[tuple[corpus.Sample, bytes]]) -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=120)
        await smtp.connect()
        try:
            for sample, raw in batch:
                t0 = time.monotonic()
                await smtp.sendmail(sample.sender, [sample.rcpt], raw)
                latencies.append(time.monotonic() - t0)
        finally:
            await smtp.quit()

    start = time.monotonic()
    await asyncio.gather(*(lane(b) for b in lanes if b))
    return time.monotonic() - start, latencies


def _expected_events(mails: list[tuple[corpus.Sample, bytes]]) -> tuple[int, int]:
    """(tickets, comments) the messages make."""
    comments = sum(1 for sample, _ in mails if sample.comment)
    return len(mails) - comments, comments


async def _wait_mail_done(
    watch: Any, mails: list[tuple[corpus.Sample, bytes]], timeout: float
) -> float:
    """Until every message's ticket or comment is on NATS; when the last arrived."""
    tickets, comments = _expected_events(mails)
    last = await watch.wait_count("created", tickets, timeout)
    if comments:
        last = max(last, await watch.wait_count("comment_added", comments, timeout))
    return float(last)


async def _mail_ingest(work: Path, hd: HelpDesk, sizes: Sizes, targets: list[int]) -> Result:
    directory = hd.system.directory()
    mix = corpus.samples()
    # The replies' senders comment on tickets others opened: as referents, they may (a plain
    # user's mail quoting a colleague's ticket opens a ticket of its own).
    replying = {sample.sender.lower() for sample in mix if sample.comment}
    people = dict(corpus.FOREIGN_CONTACTS)  # corpus senders of other domains
    people.update({email: email.split("@")[0] for email in replying if email not in people})
    for email, name in people.items():
        await directory.AddContact(
            dpb.AddContactRequest(
                organization_id=hd.org.id,
                name=name,
                email=email,
                role=pb.CONTACT_ROLE_REFERENT if email.lower() in replying else 0,
            ),
            metadata=hd.system.metadata,
        )
    count = max(sizes.mail_messages, len(mix))
    port = free_port()
    bare = start_python("bare-smtp", ["-m", "bench.bare_smtp", str(port)], work / "logs")
    try:
        await wait_port(port, 30)
        await _send_all(port, corpus.messages(len(mix), targets), 4)  # warm-up: one of each
        b_wall, b_lat = await _send_all(
            port, corpus.messages(count, targets), sizes.mail_connections
        )
    finally:
        bare.stop()
    smtp_port = int(hd.system.env["HELPDESK_SMTP_LISTEN"].rsplit(":", 1)[1])
    nats_url = hd.system.env["HELPDESK_NATS_URL"]
    # Warm-up: one of each (its senders of rossi.it become contacts by their domain here).
    async with event_watch(nats_url) as watch:
        warm = corpus.messages(len(mix), targets)
        await _send_all(smtp_port, warm, 4)
        await _wait_mail_done(watch, warm, 120)
    async with event_watch(nats_url) as watch:
        mails = corpus.messages(count, targets)
        start = time.monotonic()
        d_send, d_lat = await _send_all(smtp_port, mails, sizes.mail_connections)
        last = await _wait_mail_done(watch, mails, 600)
        d_wall = last - start
    tickets, comments = _expected_events(mails)
    value = len(mails) / d_wall
    baseline = len(mails) / b_wall
    log(
        f"mail_ingest: help desk {value:.1f} msg/s ({tickets} tickets, {comments} comments; "
        f"SMTP accepted all in {d_send:.1f}s); bare {baseline:.1f} msg/s"
    )
    return result(
        "mail_ingest",
        value,
        baseline,
        "messages/s",
        "ratio >= 0.5",
        value / baseline >= 0.5,
        {
            "messages": len(mails),
            "smtp_connections": sizes.mail_connections,
            "mix": [sample.name for sample in mix],
            "mix_source": "tests/data/email/*.eml (the parser's test corpus), each copy with its "
            "own Message-ID; replies point at open tickets of the bench organisation",
            "excluded": corpus.EXCLUDED,
            "path": "SMTP DATA at the intake listener until each message's ticket 'created' "
            "event (new tickets) or 'comment_added' event (replies) is on NATS",
            "baseline_path": "aiosmtpd server (own process) that parses each message with "
            "intake's parser before answering 250",
        },
        {
            "tickets": tickets,
            "comments": comments,
            "helpdesk_seconds": round(d_wall, 3),
            "helpdesk_smtp_accept_seconds": round(d_send, 3),
            "helpdesk_data_latency": latency_summary(d_lat),
            "bare_seconds": round(b_wall, 3),
            "bare_data_latency": latency_summary(b_lat),
        },
        higher_is_better=True,
    )
