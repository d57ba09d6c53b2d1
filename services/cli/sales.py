"""The sales office and the price list from the command line (seeds 000/003/004).

helpdesk sales list [--status S] [--kind K] [--owner ID | --unassigned] [--limit N]
helpdesk sales show ID
helpdesk sales create --kind K --subject S --message TEXT|- [--dates TEXT]
                      [--contact ID | --email E [--name N] [--company C] [--phone P]]
helpdesk sales assign ID (--to AGENT_ID | --unassign)
helpdesk sales update ID [--status S] [--kind K] [--note WHY]
helpdesk sales reply ID --body TEXT|-
helpdesk price-list upload FILE [--title T]
helpdesk price-list show [--version N]
helpdesk price-list list
helpdesk price-list download [--version N] [--output FILE]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from helpdesk.v1 import sales_pb2
from services.cli import render
from services.cli.args import Verbs, positive_int
from services.cli.client import Client, CliError
from services.cli.commands import PAGE_SIZE, Result, pages, read_body, request_id
from services.cli.enums import EnumWords
from services.common.limits import MAX_ATTACHMENT_BYTES, MiB

SALES_KIND = EnumWords(sales_pb2.SalesRequestKind, "SALES_REQUEST_KIND_")
SALES_STATUS = EnumWords(sales_pb2.SalesRequestStatus, "SALES_REQUEST_STATUS_")
SALES_SOURCE = EnumWords(sales_pb2.SalesRequestSource, "SALES_REQUEST_SOURCE_")


def number(r: sales_pb2.SalesRequest) -> str:
    return f"V-{r.number}"


def requester(r: sales_pb2.SalesRequest) -> str:
    who = f"{r.sender_name} <{r.sender}>" if r.sender_name else r.sender
    return f"{who}, {r.organization_name}" if r.organization_name else who


def request_text(r: sales_pb2.SalesRequest) -> str:
    head = f"Sales request {number(r)}: {render.one_line(r.subject)}\n" + render.fields(
        [
            ("id", r.id),
            ("status", SALES_STATUS.label(r.status)),
            ("kind", SALES_KIND.label(r.kind)),
            ("from", requester(r)),
            ("company", r.company),
            ("phone", r.phone),
            ("via", SALES_SOURCE.label(r.source)),
            ("owner", render.ref(r.owner_name, r.owner_id)),
            ("language", r.locale),
            ("received", render.when(r.received_at)),
            ("updated", render.when(r.updated_at)),
            ("attachments", ", ".join(r.attachment_names)),
        ]
    )
    lines = [head]
    for x in r.messages:
        arrow = "<-" if x.inbound else "->"
        lines.append(f"\n{arrow} {render.when(x.created_at)} {x.kind} {x.author_name or '-'}")
        if x.body.strip():
            lines.append(render.block(x.body, "    "))
        if x.attachment_names:
            lines.append(f"    attachments: {render.one_line(', '.join(x.attachment_names))}")
    if not r.messages and r.body.strip():
        lines.append("\n" + render.block(r.body, "    "))
    return "\n".join(lines)


def sales_table(items: list[sales_pb2.SalesRequest]) -> str:
    return render.table(
        ["number", "received", "status", "kind", "from", "subject", "owner"],
        (
            [
                number(r),
                render.when(r.received_at),
                SALES_STATUS.label(r.status),
                SALES_KIND.label(r.kind),
                requester(r),
                render.clip(r.subject, render.SUBJECT_WIDTH),
                r.owner_name or "-",
            ]
            for r in items
        ),
    )


def sales_list(c: Client, a: argparse.Namespace) -> Result:
    request = sales_pb2.ListSalesRequestsRequest(
        status=a.status,
        kind=a.kind,
        owner_id=a.owner or 0,
        unassigned=a.unassigned,
        page_size=min(a.limit, PAGE_SIZE) if a.limit else PAGE_SIZE,
    )
    items = pages(c, c.sales.ListSalesRequests, request, "requests", a.limit)
    return Result(sales_table(items), sales_pb2.ListSalesRequestsResponse(requests=items))


def sales_show(c: Client, a: argparse.Namespace) -> Result:
    found = c.call(c.sales.GetSalesRequest, sales_pb2.GetSalesRequestRequest(id=a.id))
    return Result(request_text(found), found)


def sales_create(c: Client, a: argparse.Namespace) -> Result:
    made = c.call(
        c.sales.CreateSalesRequest,
        sales_pb2.CreateSalesRequestRequest(
            request_id=request_id(),
            kind=a.kind,
            subject=a.subject,
            message=read_body(a.message),
            preferred_dates=a.dates or "",
            contact_id=a.contact or 0,
            name=a.name or "",
            email=a.email or "",
            company=a.company or "",
            phone=a.phone or "",
            locale=a.lang or "",
        ),
    )
    return Result(request_text(made), made)


def sales_assign(c: Client, a: argparse.Namespace) -> Result:
    done = c.call(
        c.sales.AssignSalesRequest,
        sales_pb2.AssignSalesRequestRequest(id=a.id, owner_id=a.to or 0, unassign=a.unassign),
    )
    return Result(request_text(done), done)


def sales_update(c: Client, a: argparse.Namespace) -> Result:
    if not a.status and not a.kind:
        raise CliError("say what changes: --status and/or --kind")
    done = c.call(
        c.sales.UpdateSalesRequest,
        sales_pb2.UpdateSalesRequestRequest(
            id=a.id, status=a.status, kind=a.kind, note=a.note or ""
        ),
    )
    return Result(request_text(done), done)


def sales_reply(c: Client, a: argparse.Namespace) -> Result:
    done = c.call(
        c.sales.ReplyToSalesRequest,
        sales_pb2.ReplyToSalesRequestRequest(
            id=a.id, body=read_body(a.body), request_id=request_id()
        ),
    )
    return Result(request_text(done), done)


# Price list -------------------------------------------------------------------------


def price_list_text(p: sales_pb2.PriceList) -> str:
    return f"Price list v{p.version}: {render.one_line(p.title)}\n" + render.fields(
        [
            ("file", p.filename),
            ("size", f"{p.size} bytes"),
            ("sha256", p.sha256),
            ("uploaded", render.when(p.uploaded_at)),
            ("by", p.uploaded_by),
        ]
    )


def _without_content(p: sales_pb2.PriceList) -> sales_pb2.PriceList:
    copy = sales_pb2.PriceList()
    copy.CopyFrom(p)
    copy.content = b""
    return copy


def price_list_upload(c: Client, a: argparse.Namespace) -> Result:
    path = Path(a.file)
    try:
        size = path.stat().st_size
        if size > MAX_ATTACHMENT_BYTES:
            raise CliError(f"{path}: larger than {MAX_ATTACHMENT_BYTES // MiB} MiB")
        content = path.read_bytes()
    except OSError as err:
        raise CliError(f"cannot read {path}: {err.strerror or err}") from None
    uploaded = c.call(
        c.sales.UploadPriceList,
        sales_pb2.UploadPriceListRequest(
            title=a.title or path.stem,
            filename=path.name,
            content_type="application/pdf",
            content=content,
            request_id=request_id(),
        ),
    )
    shown = _without_content(uploaded)
    return Result(price_list_text(shown), shown)


def price_list_show(c: Client, a: argparse.Namespace) -> Result:
    found = c.call(c.sales.GetPriceList, sales_pb2.GetPriceListRequest(version=a.version or 0))
    return Result(price_list_text(found), found)


def price_list_list(c: Client, a: argparse.Namespace) -> Result:
    reply = c.call(c.sales.ListPriceLists, sales_pb2.ListPriceListsRequest())
    text = render.table(
        ["version", "title", "file", "size", "uploaded", "by"],
        (
            [
                f"v{p.version}",
                p.title,
                p.filename,
                p.size,
                render.when(p.uploaded_at),
                p.uploaded_by or "-",
            ]
            for p in reply.price_lists
        ),
    )
    return Result(text, reply)


def price_list_download(c: Client, a: argparse.Namespace) -> Result:
    found = c.call(
        c.sales.GetPriceList,
        sales_pb2.GetPriceListRequest(version=a.version or 0, with_content=True),
    )
    # The stored name without any directory part: the file lands where it was asked for.
    target = Path(a.output) if a.output else Path(Path(found.filename).name or "price-list.pdf")
    if target.exists() and not a.force:
        raise CliError(f"{target} exists: choose --output or add --force")
    try:
        target.write_bytes(found.content)
    except OSError as err:
        raise CliError(f"cannot write {target}: {err.strerror or err}") from None
    shown = _without_content(found)
    data = {"price_list": render.as_dict(shown), "path": str(target)}
    return Result(f"Saved price list v{found.version} to {target} ({found.size} bytes)", data)


def _status(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--status",
        type=SALES_STATUS,
        default=sales_pb2.SALES_REQUEST_STATUS_UNSPECIFIED,
        metavar="{" + ",".join(SALES_STATUS.words) + "}",
    )


def _kind(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--kind",
        type=SALES_KIND,
        default=sales_pb2.SALES_REQUEST_KIND_UNSPECIFIED,
        metavar="{" + ",".join(SALES_KIND.words) + "}",
    )


def add_commands(verbs: Verbs) -> None:
    """The ``sales`` and ``price-list`` groups of ``helpdesk``."""
    leaf = verbs.leaf
    sales = verbs.group("sales", "the sales office's requests (quotes, training, prospects)")
    p = leaf(sales, "list", sales_list, "sales requests, newest first")
    _status(p)
    _kind(p)
    owner = p.add_mutually_exclusive_group()
    owner.add_argument("--owner", type=positive_int, metavar="AGENT_ID")
    owner.add_argument("--unassigned", action="store_true", help="only those nobody owns")
    p.add_argument("--limit", type=positive_int, default=0, help="at most this many")
    p = leaf(sales, "show", sales_show, "one request and its conversation")
    p.add_argument("id")
    p = leaf(sales, "create", sales_create, "a request taken for a caller (front desk)")
    p.add_argument(
        "--kind",
        type=SALES_KIND,
        required=True,
        metavar="{" + ",".join(SALES_KIND.words) + "}",
    )
    p.add_argument("--subject", required=True)
    p.add_argument("--message", required=True, help="text, or - to read standard input")
    p.add_argument("--dates", help="the days proposed (training, customisation)")
    p.add_argument("--contact", type=positive_int, metavar="ID", help="a customer's contact")
    p.add_argument("--email", help="a prospect's address (without --contact)")
    p.add_argument("--name")
    p.add_argument("--company")
    p.add_argument("--phone")
    p.add_argument("--lang", choices=("it", "en"))
    p = leaf(sales, "assign", sales_assign, "give a request to someone of the sales office")
    p.add_argument("id")
    to = p.add_mutually_exclusive_group(required=True)
    to.add_argument("--to", type=positive_int, metavar="AGENT_ID")
    to.add_argument("--unassign", action="store_true", help="nobody owns it")
    p = leaf(sales, "update", sales_update, "change the status or kind")
    p.add_argument("id")
    _status(p)
    _kind(p)
    p.add_argument("--note", help="why (required for lost)")
    p = leaf(sales, "reply", sales_reply, "answer the requester by email")
    p.add_argument("id")
    p.add_argument("--body", required=True, help="text, or - to read standard input")

    prices = verbs.group("price-list", "the price list customers download (PDF)")
    p = leaf(prices, "upload", price_list_upload, "a new version (admin)")
    p.add_argument("file", help="the PDF")
    p.add_argument("--title", help="default: the file's name")
    p = leaf(prices, "show", price_list_show, "the latest version, or one")
    p.add_argument("--version", type=positive_int)
    leaf(prices, "list", price_list_list, "every version, newest first")
    p = leaf(prices, "download", price_list_download, "save the PDF")
    p.add_argument("--version", type=positive_int)
    p.add_argument("--output", "-o", metavar="FILE", help="default: its file name, here")
    p.add_argument("--force", action="store_true", help="overwrite FILE")
