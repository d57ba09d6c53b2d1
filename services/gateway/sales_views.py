"""What the pages show of a sales request and a price list, portal and console alike:
kinds and statuses in plain words, the list's rows, and the conversation."""

from __future__ import annotations

from dataclasses import dataclass

from helpdesk.v1 import sales_pb2 as spb
from services.gateway.texts import moment, size, translate
from services.gateway.views import when

KINDS = {
    spb.SALES_REQUEST_KIND_INFORMATION: "Information",
    spb.SALES_REQUEST_KIND_DEVELOPMENT_QUOTE: "Development quote",
    spb.SALES_REQUEST_KIND_TRAINING: "Training or optimisation days",
    spb.SALES_REQUEST_KIND_CUSTOMISATION: "Customisation",
    spb.SALES_REQUEST_KIND_PRICE_LIST: "Price list",
}
# The filters' and forms' keys for each kind and status.
KIND_KEYS = {
    spb.SALES_REQUEST_KIND_INFORMATION: "information",
    spb.SALES_REQUEST_KIND_DEVELOPMENT_QUOTE: "quote",
    spb.SALES_REQUEST_KIND_TRAINING: "training",
    spb.SALES_REQUEST_KIND_CUSTOMISATION: "customisation",
    spb.SALES_REQUEST_KIND_PRICE_LIST: "price_list",
}
STATUSES = {
    spb.SALES_REQUEST_STATUS_NEW: "New",
    spb.SALES_REQUEST_STATUS_CONTACTED: "Contacted",
    spb.SALES_REQUEST_STATUS_QUOTED: "Quoted",
    spb.SALES_REQUEST_STATUS_WON: "Won",
    spb.SALES_REQUEST_STATUS_LOST: "Lost",
}
STATUS_KEYS = {
    spb.SALES_REQUEST_STATUS_NEW: "new",
    spb.SALES_REQUEST_STATUS_CONTACTED: "contacted",
    spb.SALES_REQUEST_STATUS_QUOTED: "quoted",
    spb.SALES_REQUEST_STATUS_WON: "won",
    spb.SALES_REQUEST_STATUS_LOST: "lost",
}
KIND_BY_KEY = {v: k for k, v in KIND_KEYS.items()}
STATUS_BY_KEY = {v: k for k, v in STATUS_KEYS.items()}


@dataclass
class SalesRowView:
    id: str
    number: str
    kind: str
    requester: str
    company: str
    subject: str
    status: str
    status_key: str
    owner: str
    received: str
    received_iso: str


@dataclass
class SalesMessageView:
    inbound: bool
    kind: str
    author: str
    when: str
    when_iso: str
    body: str
    attachments: list[str]


@dataclass
class PriceListView:
    version: int
    title: str
    filename: str
    size: str
    uploaded: str
    uploaded_iso: str
    uploaded_by: str


def number(r: spb.SalesRequest) -> str:
    return f"V-{r.number}" if r.number else r.id


def row_view(r: spb.SalesRequest, locale: str) -> SalesRowView:
    received = when(r.received_at)
    return SalesRowView(
        id=r.id,
        number=number(r),
        kind=translate(locale, KINDS.get(r.kind, "")),
        requester=r.sender_name or r.sender,
        company=r.organization_name or r.company,
        subject=r.subject,
        status=translate(locale, STATUSES.get(r.status, "")),
        status_key=STATUS_KEYS.get(r.status, ""),
        owner=r.owner_name,
        received=moment(received, locale) if received else "",
        received_iso=received.isoformat() if received else "",
    )


# What a customer sees of the conversation: the mails, not the office's own records.
CUSTOMER_KINDS = frozenset({"message", "reply"})


def conversation(
    r: spb.SalesRequest, locale: str, customer: bool = False
) -> list[SalesMessageView]:
    """Every message, oldest first (for a customer only what was written to or by them);
    a request without its messages shows its body."""
    out = []
    for m in r.messages:
        if customer and (m.kind or "message") not in CUSTOMER_KINDS:
            continue
        created = when(m.created_at)
        out.append(
            SalesMessageView(
                inbound=m.inbound,
                kind=m.kind or "message",
                author=m.author_name or translate(locale, "sales office"),
                when=moment(created, locale) if created else "",
                when_iso=created.isoformat() if created else "",
                body=m.body,
                attachments=list(m.attachment_names),
            )
        )
    if not out and r.body:
        received = when(r.received_at)
        out.append(
            SalesMessageView(
                inbound=True,
                kind="message",
                author=r.sender_name or r.sender,
                when=moment(received, locale) if received else "",
                when_iso=received.isoformat() if received else "",
                body=r.body,
                attachments=list(r.attachment_names),
            )
        )
    return out


def price_list_view(p: spb.PriceList, locale: str) -> PriceListView:
    uploaded = when(p.uploaded_at)
    return PriceListView(
        version=p.version,
        title=p.title,
        filename=p.filename,
        size=size(p.size),
        uploaded=moment(uploaded, locale) if uploaded else "",
        uploaded_iso=uploaded.isoformat() if uploaded else "",
        uploaded_by=p.uploaded_by,
    )
