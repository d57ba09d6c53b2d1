"""The mail scenarios: ``mail_accept`` (SMTP ``DATA`` to ``250``, the durable write
included) and ``mail_to_ticket`` (``DATA`` until the ticket or comment is recorded)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosmtplib

from bench import corpus
from bench.harness import Result, Sizes, drive, result
from bench.infra import HelpDesk, event_watch, latency_summary, log, start_python, wait_port
from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import intake_pb2 as ipb
from services.common.embedded import free_port

Mails = list[tuple[corpus.Sample, bytes]]
TARGETS_PER_DOMAIN = 2  # open tickets per organisation of the multi-domain corpus


async def mail_scenarios(
    work: Path, hd: HelpDesk, bare: Any, sizes: Sizes, targets: list[int]
) -> list[Result]:
    """``[mail_accept, mail_to_ticket]``; ``bare`` is the bare service stack
    (``bench.stack.BareStack``), ``targets`` open tickets the corpus's replies name."""
    mix = corpus.samples()
    count = max(sizes.mail_messages, len(mix))
    conns = sizes.mail_connections
    smtp_port = int(hd.system.env["HELPDESK_SMTP_LISTEN"].rsplit(":", 1)[1])
    nats_url = hd.system.env["HELPDESK_NATS_URL"]

    t0 = time.monotonic()
    await _one_domain_contacts(hd, mix)
    domains = await _domain_organisations(hd, count)
    domain_targets = await _domain_tickets(hd, domains, nats_url)
    # Each new contact's password mail, sent by notify: done before anything is measured.
    await _wait_mailed(hd, corpus.domain_senders(count, list(corpus.DOMAINS)), 120)
    setup_s = time.monotonic() - t0
    log(f"mail: {len(domains)} organisations with contacts and open tickets in {setup_s:.1f}s")

    bare_smtp = await _bare_accept(work, count, domain_targets, conns)

    # Warm-up: one of each, from the one domain and from the domains (the one domain's
    # senders of rossi.it become contacts by their domain here).
    async with event_watch(nats_url) as watch:
        warm = corpus.messages(len(mix), targets)
        warm += corpus.messages(len(mix), [], domains=domain_targets)
        await _send_all(smtp_port, warm, 4)
        await _wait_mail_done(watch, warm, 120)
    one = await _measure(smtp_port, nats_url, corpus.messages(count, targets), conns)
    multi = await _measure(
        smtp_port, nats_url, corpus.messages(count, [], domains=domain_targets), conns
    )
    log(
        f"mail: help desk one domain {count / one.wall:.1f} msg/s, "
        f"{len(domain_targets)} domains {count / multi.wall:.1f} msg/s"
    )

    await drive(conns, conns, bare.one)  # warm-up
    s_wall, s_lat = await drive(count, conns, bare.one)
    # At c=1 a third of the messages give the rate as well (the rest would only add time).
    ones = max(conns, count // 3)
    s1_wall, s1_lat = await drive(ones, 1, bare.one)
    s1_wall *= count / ones  # the same count's wall time at that rate
    log(f"mail: bare stack c={conns} {count / s_wall:.1f}/s, c=1 {count / s1_wall:.1f}/s")
    return [
        _accept_result(count, conns, multi, one, bare_smtp),
        _to_ticket_result(
            mix, count, conns, multi, one, (s_wall, s_lat), (s1_wall, s1_lat), setup_s
        ),
    ]


# -- the directory: organisations, contacts, open tickets -----------------------------------


async def _one_domain_contacts(hd: HelpDesk, mix: list[corpus.Sample]) -> None:
    """The corpus as it is: its replying senders and its senders of other domains become
    contacts of the bench organisation (rossi.it)."""
    directory = hd.system.directory()
    # The replies' senders comment on tickets others opened: as referents, they may (a plain
    # user's mail quoting a colleague's ticket opens a ticket of its own).
    replying = {email for email, replies in corpus.senders(mix).items() if replies}
    people = dict(corpus.FOREIGN_CONTACTS)  # corpus senders of other domains
    people.update({email: email.split("@")[0] for email in replying if email not in people})
    for email, name in people.items():
        await directory.AddContact(
            dpb.AddContactRequest(
                organization_id=hd.org.id,
                name=name,
                email=email,
                role=pb.CONTACT_ROLE_REFERENT
                if email.lower() in replying
                else pb.CONTACT_ROLE_USER,
            ),
            metadata=hd.system.metadata,
        )


@dataclass(frozen=True)
class Domain:
    org: dpb.Organization
    requester: str  # a contact of it, who opens its open tickets


async def _domain_organisations(hd: HelpDesk, count: int) -> dict[str, Domain]:
    """One organisation per ``corpus.DOMAINS`` entry, its contacts the senders the
    multi-domain run of ``count`` messages writes from at its domain (the replying ones as
    referents, so they may comment on the organisation's tickets). Only those: each new
    contact costs an Argon2 hash and a password mail."""
    directory = hd.system.directory()
    md = hd.system.metadata
    suffix = hd.org.name.rsplit(" ", 1)[-1]

    async def one(k: int, domain: str, people: dict[str, bool]) -> tuple[str, Domain]:
        org = await directory.CreateOrganization(
            dpb.CreateOrganizationRequest(
                name=f"Cliente {k} {suffix}",
                email_domains=[domain],
                closed_ticket_policy=pb.CLOSED_TICKET_POLICY_FOLLOW_UP,
            ),
            metadata=md,
        )
        for email, replies in people.items():
            await directory.AddContact(
                dpb.AddContactRequest(
                    organization_id=org.id,
                    name=email.split("@")[0],
                    email=email,
                    role=pb.CONTACT_ROLE_REFERENT if replies else pb.CONTACT_ROLE_USER,
                ),
                metadata=md,
            )
        return domain, Domain(org, next(iter(people)))

    senders = corpus.domain_senders(count, list(corpus.DOMAINS))
    return dict(
        await asyncio.gather(*(one(k, d, senders[d]) for k, d in enumerate(corpus.DOMAINS)))
    )


async def _domain_tickets(
    hd: HelpDesk, domains: dict[str, Domain], nats_url: str
) -> dict[str, list[int]]:
    """``TARGETS_PER_DOMAIN`` open tickets of each organisation (web requests), recorded:
    what the multi-domain corpus's replies name."""
    intake = hd.system.intake()
    out: dict[str, list[int]] = {d: [] for d in domains}
    async with event_watch(nats_url) as watch:

        async def one(domain: str, n: int) -> None:
            reply = await intake.SubmitWebRequest(
                ipb.SubmitWebRequestRequest(
                    requester_email=domains[domain].requester,
                    subject=f"Errore in stampa fatture ({n})",
                    description="Errore 1234 in stampa fattura, versione 5.2.1, Windows 11.",
                    product="Gestionale",
                    version="5.2.1",
                    os="Windows 11",
                ),
                metadata=hd.system.metadata,
                timeout=120,
            )
            await watch.wait("created", reply.ticket_id)
            out[domain].append(reply.ticket_id)

        await asyncio.gather(*(one(d, n) for d in domains for n in range(TARGETS_PER_DOMAIN)))
    return out


async def _wait_mailed(hd: HelpDesk, senders: dict[str, dict[str, bool]], timeout: float) -> None:
    """Until the relay has a message to each of ``senders``' addresses (or ``timeout``)."""
    wanted = {email for people in senders.values() for email in people}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        mailed = {
            str(a.addr_spec).lower()
            for m in hd.box.messages
            for a in getattr(m["To"], "addresses", ())
        }
        if wanted <= mailed:
            return
        await asyncio.sleep(0.2)
    log(f"mail: {len(wanted - mailed)} password mails not at the relay after {timeout:.0f}s")


# -- sending and waiting --------------------------------------------------------------------


async def _send_all(port: int, mails: Mails, connections: int) -> tuple[float, list[float]]:
    """Send every message over ``connections`` SMTP sessions; (wall, per-message times of
    MAIL FROM, RCPT TO and DATA until ``250``)."""
    lanes = [mails[i::connections] for i in range(connections)]
    latencies: list[float] = []

    async def lane(batch: Mails) -> None:
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


def _expected_events(mails: Mails) -> tuple[int, int]:
    """(tickets, comments) the messages make."""
    comments = sum(1 for sample, _ in mails if sample.comment)
    return len(mails) - comments, comments


async def _wait_mail_done(watch: Any, mails: Mails, timeout: float) -> float:
    """Until every message's ticket or comment is on NATS; when the last arrived."""
    tickets, comments = _expected_events(mails)
    last = await watch.wait_count("created", tickets, timeout)
    if comments:
        last = max(last, await watch.wait_count("comment_added", comments, timeout))
    return float(last)


@dataclass(frozen=True)
class Run:
    messages: int
    tickets: int
    comments: int
    domains: int
    wall: float  # first DATA sent to the last message's event on NATS
    send: float  # first DATA sent to the last 250
    data_latency: list[float]

    def summary(self, bare_wall: float, bare_latency: list[float], bare_c: int) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "sender_domains": self.domains,
            "tickets": self.tickets,
            "comments": self.comments,
            "helpdesk_per_s": round(self.messages / self.wall, 2),
            "helpdesk_seconds": round(self.wall, 3),
            "helpdesk_smtp_accept_seconds": round(self.send, 3),
            "helpdesk_data_latency": latency_summary(self.data_latency),
            f"bare_stack_c{bare_c}_per_s": round(self.messages / bare_wall, 2),
            f"bare_stack_c{bare_c}_latency": latency_summary(bare_latency),
            "ratio": round(bare_wall / self.wall, 3),
        }


async def _measure(port: int, nats_url: str, mails: Mails, connections: int) -> Run:
    async with event_watch(nats_url) as watch:
        start = time.monotonic()
        send, latency = await _send_all(port, mails, connections)
        last = await _wait_mail_done(watch, mails, 600)
    tickets, comments = _expected_events(mails)
    domains = len({sample.sender.rsplit("@", 1)[1].lower() for sample, _ in mails})
    return Run(len(mails), tickets, comments, domains, last - start, send, latency)


# -- the bare SMTP server -------------------------------------------------------------------


@dataclass(frozen=True)
class BareAccept:
    wall: float
    latency: list[float]


async def _bare_accept(
    work: Path, count: int, domain_targets: dict[str, list[int]], connections: int
) -> BareAccept:
    """The multi-domain corpus into ``bench.bare_smtp`` (its own process)."""
    port = free_port()
    db_path = work / "bare-smtp.db"
    proc = start_python(
        "bare-smtp", ["-m", "bench.bare_smtp", str(port), str(db_path)], work / "logs"
    )
    try:
        await wait_port(port, 30)
        warm = corpus.messages(len(corpus.samples()), [], domains=domain_targets)
        await _send_all(port, warm, 4)  # warm-up: one of each
        wall, latency = await _send_all(
            port, corpus.messages(count, [], domains=domain_targets), connections
        )
    finally:
        proc.stop()
    return BareAccept(wall, latency)


# -- results --------------------------------------------------------------------------------

ACCEPT_PATH = (
    "one SMTP transaction per message (MAIL FROM, RCPT TO, DATA) until 250 at the intake "
    "listener, over the multi-domain run's sessions of mail_to_ticket: before 250 it reads the "
    "header block for the dedup key (mailparse.quick_dedup_key in a worker thread, no body "
    "parse), looks the key up and inserts + commits the raw message into intake's SQLite "
    "database (services.intake.smtp.store_message, make_engine); meanwhile the intake's mail "
    "processor turns the messages already accepted into tickets in the same process"
)
BARE_ACCEPT_PATH = (
    "aiosmtpd (own process, bench.bare_smtp) that inserts + commits each raw message as a "
    "row (id, sender, recipients, raw, time) of a SQLite table through the same driver "
    "(services.common.db.make_engine: SQLAlchemy async + aiosqlite, WAL, synchronous=NORMAL, "
    "in-process write queue) before 250; no parsing, no dedup lookup, nothing after"
)


def _accept_result(count: int, conns: int, multi: Run, one: Run, bare_smtp: BareAccept) -> Result:
    value = count / multi.send
    baseline = count / bare_smtp.wall
    log(f"mail_accept: help desk {value:.1f} msg/s; bare aiosmtpd + SQLite {baseline:.1f} msg/s")
    return result(
        "mail_accept",
        value,
        baseline,
        "messages/s",
        "ratio >= 0.5",
        value / baseline >= 0.5,
        {
            "messages": count,
            "smtp_connections": conns,
            "corpus": f"the mail_to_ticket mix over {len(corpus.DOMAINS)} sender domains",
            "path": ACCEPT_PATH,
            "baseline_path": BARE_ACCEPT_PATH,
        },
        {
            "helpdesk_seconds": round(multi.send, 3),
            "helpdesk_data_latency": latency_summary(multi.data_latency),
            "bare_seconds": round(bare_smtp.wall, 3),
            "bare_data_latency": latency_summary(bare_smtp.latency),
            "one_domain_helpdesk_per_s": round(one.messages / one.send, 2),
            "one_domain_helpdesk_data_latency": latency_summary(one.data_latency),
        },
        higher_is_better=True,
    )


def _to_ticket_result(
    mix: list[corpus.Sample],
    count: int,
    conns: int,
    multi: Run,
    one: Run,
    stack_run: tuple[float, list[float]],
    stack_c1: tuple[float, list[float]],
    setup_s: float,
) -> Result:
    value = count / multi.wall
    baseline = count / stack_run[0]
    log(
        f"mail_to_ticket: help desk {value:.1f} msg/s ({multi.tickets} tickets, "
        f"{multi.comments} comments over {multi.domains} domains; SMTP accepted all in "
        f"{multi.send:.1f}s); bare stack c={conns} {baseline:.1f}/s; one domain "
        f"{count / one.wall:.1f} msg/s against bare c=1 {count / stack_c1[0]:.1f}/s"
    )
    return result(
        "mail_to_ticket",
        value,
        baseline,
        "messages/s",
        "ratio >= 0.5 (multi-domain corpus)",
        value / baseline >= 0.5,
        {
            "messages": count,
            "smtp_connections": conns,
            "mix": [sample.name for sample in mix],
            "mix_source": "tests/data/email/*.eml (the parser's test corpus), each copy with "
            "its own Message-ID",
            "sender_domains": list(corpus.DOMAINS),
            "corpus": f"copy i from domain i % {len(corpus.DOMAINS)} (one organisation each, "
            "the corpus senders it writes from, rewritten to its domain, its contacts, the "
            "replying ones referents), "
            "From/Return-Path/envelope sender rewritten; replies point at the "
            f"{TARGETS_PER_DOMAIN} open tickets (web requests) of their own organisation",
            "one_domain_corpus": "the corpus as it is (rossi.it, two senders of other "
            "domains as its contacts), replies pointing at create_ticket's open tickets of "
            "the bench organisation; the processor keeps one domain's mail in order",
            "excluded": corpus.EXCLUDED,
            "path": "SMTP DATA at the intake listener until each message's ticket 'created' "
            "event (new tickets) or 'comment_added' event (replies) is on NATS",
            "baseline_path": f"the bare service stack (bench.stack: gRPC front, row write, "
            f"Temporal workflow + activity, JetStream publish), {count} requests at "
            f"concurrency {conns} (the SMTP sessions); the one-domain run against it at "
            "concurrency 1",
        },
        {
            "tickets": multi.tickets,
            "comments": multi.comments,
            "helpdesk_seconds": round(multi.wall, 3),
            "helpdesk_smtp_accept_seconds": round(multi.send, 3),
            "helpdesk_data_latency": latency_summary(multi.data_latency),
            "bare_stack_seconds": round(stack_run[0], 3),
            "bare_stack_latency": latency_summary(stack_run[1]),
            "multi_domain": multi.summary(stack_run[0], stack_run[1], conns),
            "one_domain": one.summary(stack_c1[0], stack_c1[1], 1),
            "setup_seconds": round(setup_s, 3),
        },
        higher_is_better=True,
    )
