"""The tickets service's tables: directory (organisations, contacts, agents) and tickets."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.sqltypes import BigId, UtcDateTime


class Base(DeclarativeBase):
    pass


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    name_key: Mapped[str] = mapped_column(String(200), unique=True)
    email_domains: Mapped[list[str]] = mapped_column(JSON, default=list)
    closed_ticket_policy: Mapped[str] = mapped_column(String(20), default="FOLLOW_UP")
    locale: Mapped[str] = mapped_column(String(5), default="it")
    # Seed 001: users see their department's tickets too.
    department_sees_tickets: Mapped[bool] = mapped_column(Boolean, default=False)
    # Mail from an unknown address of one of its domains makes a new contact (else: prospect).
    add_contacts_by_domain: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Contact(Base):
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    email_key: Mapped[str] = mapped_column(String(320), unique=True)
    phone: Mapped[str] = mapped_column(String(50), default="")
    role: Mapped[str] = mapped_column(String(20), default="USER")
    locale: Mapped[str] = mapped_column(String(5), default="it")
    department: Mapped[str] = mapped_column(String(100), default="")
    # Instant messaging: NULL when not linked; each identity is one contact's.
    telegram_user_id: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    whatsapp_number: Mapped[str | None] = mapped_column(String(32), unique=True, default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Agent(Base):
    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    email_key: Mapped[str] = mapped_column(String(320), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    # Second level: on-call developers hear of HIGH programming tickets at once;
    # development leads when nobody starts one in time.
    on_call: Mapped[bool] = mapped_column(Boolean, default=False)
    development_lead: Mapped[bool] = mapped_column(Boolean, default=False)
    # The agent's own messaging accounts: an URGENT page goes there too.
    telegram_user_id: Mapped[str] = mapped_column(String(64), default="")
    whatsapp_number: Mapped[str] = mapped_column(String(32), default="")
    # The alerts the agent turned off, as "<kind>.<channel>" ("digest.email"); [] = all on
    # (services.tickets.agent_notifications).
    notifications_off: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_org_status", "organization_id", "status"),
        Index("ix_tickets_assignee_status", "assignee_id", "status"),
        # The queues (services/tickets/queues.py): nearest due first, last changed first.
        Index("ix_tickets_next_due", "next_due_at", "id"),
        Index("ix_tickets_updated", "updated_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    request_id: Mapped[str | None] = mapped_column(String(200), unique=True)
    subject: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    requester_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    channel: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(20), default="")
    product: Mapped[str] = mapped_column(String(200), default="")
    version: Mapped[str] = mapped_column(String(100), default="")
    os: Mapped[str] = mapped_column(String(100), default="")
    criticality: Mapped[str] = mapped_column(String(20), default="")
    priority: Mapped[str] = mapped_column(String(20))
    level: Mapped[str] = mapped_column(String(5), default="L1")
    phone: Mapped[str] = mapped_column(String(50), default="")
    callback_number: Mapped[str] = mapped_column(String(50), default="")
    attachments_requested_by_email: Mapped[bool] = mapped_column(Boolean, default=False)
    follow_up_of: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    # Owned by the workflow: written only through record_ticket_change.
    status: Mapped[str] = mapped_column(String(20))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    taken_in_charge_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    first_feedback_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    solved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    close_reason: Mapped[str] = mapped_column(String(20), default="")
    taken_in_charge_due: Mapped[datetime | None] = mapped_column(UtcDateTime)
    first_feedback_due: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # [{"target": ..., "due_at": iso, "recorded_at": iso}]
    breaches: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    sla_breached: Mapped[bool] = mapped_column(Boolean, default=False)
    auto_close_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    event_seq: Mapped[int] = mapped_column(Integer, default=0)
    # Second level and third parties (workflow-owned, like the fields above).
    # [{"id": .., "title": .., "urgency": .., "status": .., "detached": ..}]
    programming_tickets: Mapped[list[dict[str, object]]] = mapped_column(JSON, default=list)
    awaiting_verification: Mapped[bool] = mapped_column(Boolean, default=False)
    hours_spent: Mapped[float] = mapped_column(Float, default=0.0)
    hold_reason: Mapped[str] = mapped_column(String(20), default="")
    third_party_name: Mapped[str] = mapped_column(String(200), default="")
    third_party_reference: Mapped[str] = mapped_column(String(200), default="")
    merged_into: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    # Business-hours service levels (workflow-owned): the resolution target, when the
    # clocks started, and the clock itself: {"calendar", "targets", "elapsed", "as_of",
    # "running", "calendar_name", "plan_name"} ({} for tickets timed by plain durations).
    resolution_due: Mapped[datetime | None] = mapped_column(UtcDateTime)
    clocks_start_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    sla_clock: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    # The nearest due instant of a target not reached yet, and which target it is
    # ("TAKEN_IN_CHARGE" | "FIRST_FEEDBACK" | "RESOLUTION"; NULL / "" when none is due).
    next_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    next_due_target: Mapped[str] = mapped_column(String(20), default="")
    # False until the ticket's workflow is known to be started (the reconciler's work list).
    workflow_started: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Comment(Base):
    __tablename__ = "ticket_comments"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    visibility: Mapped[str] = mapped_column(String(20))
    author_kind: Mapped[str] = mapped_column(String(20))
    author_id: Mapped[int] = mapped_column(BigId, default=0)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Attachment(Base):
    __tablename__ = "ticket_attachments"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    comment_id: Mapped[str | None] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigId)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class TimeEntry(Base):
    """Hours spent on a ticket (seed 002: the closure is agreed with the hours)."""

    __tablename__ = "ticket_time_entries"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    agent_id: Mapped[int] = mapped_column(BigId, default=0)
    hours: Mapped[float] = mapped_column(Float)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class TicketEvent(Base):
    __tablename__ = "ticket_events"
    __table_args__ = (Index("ix_ticket_events_ticket", "ticket_id", "occurred_at"),)

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    seq: Mapped[int] = mapped_column(Integer, default=0)
    type: Mapped[str] = mapped_column(String(40))
    actor_kind: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[int] = mapped_column(BigId, default=0)
    from_status: Mapped[str] = mapped_column(String(20), default="")
    to_status: Mapped[str] = mapped_column(String(20), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    # Agents only (an internal comment): never shown to customers.
    internal: Mapped[bool] = mapped_column(Boolean, default=False)
    # The authenticated principal behind the change (audit), e.g. "AGENT AGENT#3".
    performed_by: Mapped[str] = mapped_column(String(120), default="")
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Credential(Base):
    """Portal / desk login of one contact or agent (Argon2 hash, lock-out, reset code)."""

    __tablename__ = "credentials"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(20))  # "CONTACT" | "AGENT"
    principal_id: Mapped[int] = mapped_column(BigId)
    email_key: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Bumped by every password change: refresh tokens of an older version stop working.
    version: Mapped[int] = mapped_column(Integer, default=1)
    reset_code_hash: Mapped[str] = mapped_column(String(200), default="")
    reset_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class BusinessCalendar(Base):
    """Business hours of a contract: weekly intervals, holidays, closed days.

    Immutable once created (a contract names another calendar instead)."""

    __tablename__ = "calendars"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    name_key: Mapped[str] = mapped_column(String(200), unique=True)
    time_zone: Mapped[str] = mapped_column(String(64), default="Europe/Rome")
    # [[weekday 0=Monday..6, "HH:MM", "HH:MM"], ...]
    intervals: Mapped[list[list[int | str]]] = mapped_column(JSON, default=list)
    # ISO country code of the national holidays; "" for none.
    country: Mapped[str] = mapped_column(String(8), default="IT")
    # ["YYYY-MM-DD", ...], sorted.
    closed_dates: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class SlaPlan(Base):
    """Targets per priority in business minutes (seed 002 milestones). Immutable."""

    __tablename__ = "sla_plans"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    name_key: Mapped[str] = mapped_column(String(200), unique=True)
    # {"URGENT": {"taken_in_charge_minutes": .., "first_feedback_minutes": ..,
    #             "resolution_minutes": ..}, "HIGH": .., "NORMAL": .., "LOW": ..}
    targets: Mapped[dict[str, dict[str, int]]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class SupportContract(Base):
    """An organisation's contract: its calendar and SLA plan (NULL: the defaults) and its
    pending-ticket policy. The closed-ticket policy stays on the organisation."""

    __tablename__ = "contracts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), unique=True)
    calendar_id: Mapped[int | None] = mapped_column(ForeignKey("calendars.id"))
    sla_plan_id: Mapped[int | None] = mapped_column(ForeignKey("sla_plans.id"))
    # Business days; 0 = off.
    pending_reminder_business_days: Mapped[int] = mapped_column(Integer, default=0)
    pending_auto_solve_business_days: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Satisfaction(Base):
    """The requester's answer to the satisfaction survey of a closed ticket (seed 002): one
    per ticket, changeable for a while after the first answer."""

    __tablename__ = "ticket_satisfaction"

    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), primary_key=True)
    rating: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(Text, default="")
    # "TOKEN" (the survey link), "EMAIL" (a reply to the survey email), "REQUESTER", "STAFF"
    source: Mapped[str] = mapped_column(String(20), default="")
    first_answered_at: Mapped[datetime] = mapped_column(UtcDateTime)
    answered_at: Mapped[datetime] = mapped_column(UtcDateTime)
    changes: Mapped[int] = mapped_column(Integer, default=0)


class Follower(Base):
    """A contact of the ticket's organisation who follows it (CC) besides its requester:
    public answers and status emails go to them too, internal notes never."""

    __tablename__ = "ticket_followers"

    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), primary_key=True)
    # "AGENT" (added by the desk), "EMAIL_CC" (in the Cc of a mail), "MERGE".
    source: Mapped[str] = mapped_column(String(20), default="AGENT")
    added_at: Mapped[datetime] = mapped_column(UtcDateTime)


class AnswerResend(Base):
    """One ``ResendAnswers`` request (seed 000: a lost answer re-sent by the ticket's ID),
    kept under its key so that a retry sends nothing twice."""

    __tablename__ = "ticket_answer_resends"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    recipient_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    comment_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    performed_by: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Interaction(Base):
    """A phone call or remote session an agent recorded on a ticket (seed 000): the
    details of its comment, whose body is the summary."""

    __tablename__ = "ticket_interactions"

    comment_id: Mapped[str] = mapped_column(ForeignKey("ticket_comments.id"), primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    type: Mapped[str] = mapped_column(String(20))  # "PHONE_CALL" | "REMOTE_SESSION"
    direction: Mapped[str] = mapped_column(String(20), default="")  # "INBOUND" | "OUTBOUND"
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    with_whom: Mapped[str] = mapped_column(String(200), default="")
    duration_minutes: Mapped[int] = mapped_column(Integer)
    notify_customer: Mapped[bool] = mapped_column(Boolean, default=False)


class MaintenanceWindow(Base):
    """A planned remote update of an organisation's installation (seed 000), driven by its
    workflow ``maintenance-<id>``, which keeps this row current."""

    __tablename__ = "maintenance_windows"
    __table_args__ = (Index("ix_maintenance_start", "planned_start", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # The caller-scoped PlanMaintenance request_id: a retry finds its window.
    request_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    medium: Mapped[str] = mapped_column(String(20))  # "FILE_TRANSFER" | "PHYSICAL_MEDIA"
    planned_start: Mapped[datetime] = mapped_column(UtcDateTime)
    planned_end: Mapped[datetime] = mapped_column(UtcDateTime)
    summary: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="PLANNED")
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    planned_by_agent_id: Mapped[int] = mapped_column(BigId, default=0)
    reminder_sent: Mapped[bool] = mapped_column(Boolean, default=False)
    overdue: Mapped[bool] = mapped_column(Boolean, default=False)
    # Events of its workflow applied so far; an older snapshot never overwrites a newer.
    event_seq: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Article(Base):
    """A knowledge-base article (FAQ, guide): Markdown, in one language, with versions."""

    __tablename__ = "kb_articles"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # The creating caller's idempotency key (scoped to the caller), unique when set.
    request_key: Mapped[str | None] = mapped_column(String(300), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    product: Mapped[str] = mapped_column(String(200), default="")
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    locale: Mapped[str] = mapped_column(String(5), default="it")
    visibility: Mapped[str] = mapped_column(String(20))  # PUBLIC, ORGANIZATIONS, INTERNAL
    status: Mapped[str] = mapped_column(String(20))  # DRAFT, PUBLISHED
    version: Mapped[int] = mapped_column(Integer, default=1)
    author_id: Mapped[int] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    published_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    source_ticket_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    source_comment_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    deflections: Mapped[int] = mapped_column(BigId, default=0)


class ArticleOrganization(Base):
    """An organisation an ORGANIZATIONS article is shown to."""

    __tablename__ = "kb_article_organizations"

    article_id: Mapped[int] = mapped_column(ForeignKey("kb_articles.id"), primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id"), primary_key=True, index=True
    )


class ArticleVersion(Base):
    """One version of an article: who changed it, when, and the text it then had."""

    __tablename__ = "kb_article_versions"

    article_id: Mapped[int] = mapped_column(ForeignKey("kb_articles.id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    changed_by_id: Mapped[int] = mapped_column(BigId)
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    note: Mapped[str] = mapped_column(String(500), default="")


class ArticleDeflection(Base):
    """A customer answered by a suggested article before sending a ticket."""

    __tablename__ = "kb_deflections"

    request_key: Mapped[str] = mapped_column(String(300), primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("kb_articles.id"), index=True)
    contact_id: Mapped[int] = mapped_column(BigId, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class SearchEntry(Base):
    """The searchable text of a ticket or an article, one row per part: ``public``
    (a ticket's subject, description and public answers; an article) and ``internal``
    (a ticket's internal notes). The engine's index follows these rows: an FTS5 table
    kept by triggers on SQLite, a generated ``tsvector`` column with a GIN index on
    PostgreSQL (migration 0013)."""

    __tablename__ = "search_entries"
    __table_args__ = (Index("ux_search_entries_ref", "kind", "ref_id", "part", unique=True),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(10))  # ticket, article
    ref_id: Mapped[int] = mapped_column(BigId)
    part: Mapped[str] = mapped_column(String(10))  # public, internal
    title: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    locale: Mapped[str] = mapped_column(String(5))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class SalesRequest(Base):
    """A request to the sales office (seeds 003/004): a prospect's mail or web form,
    a customer's portal form, or one taken by the front desk; worked by a SALES agent."""

    __tablename__ = "sales_requests"
    __table_args__ = (Index("ix_sales_requests_received", "received_at", "id"),)

    # uuid4 hex for new ones; intake's stored row ID for the ones it hands over.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # "V-<number>" for people: in order of arrival, unique (a retry takes the next one).
    number: Mapped[int] = mapped_column(BigId, unique=True)
    kind: Mapped[str] = mapped_column(String(30))  # INFORMATION, TRAINING, ...
    status: Mapped[str] = mapped_column(String(20), default="NEW")
    source: Mapped[str] = mapped_column(String(20))  # EMAIL, WEB_FORM, PORTAL, FRONT_DESK
    owner_id: Mapped[int] = mapped_column(BigId, default=0, index=True)
    organization_id: Mapped[int] = mapped_column(BigId, default=0, index=True)
    contact_id: Mapped[int] = mapped_column(BigId, default=0, index=True)
    sender: Mapped[str] = mapped_column(String(320))
    sender_name: Mapped[str] = mapped_column(String(200), default="")
    company: Mapped[str] = mapped_column(String(200), default="")
    phone: Mapped[str] = mapped_column(String(50), default="")
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text, default="")
    locale: Mapped[str] = mapped_column(String(5), default="it")
    # The stored email it came from ("web:..." for the web form); "" for portal and desk.
    message_id: Mapped[str] = mapped_column(String(998), default="")
    attachment_names: Mapped[list[str]] = mapped_column(JSON, default=list)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # The creating caller's idempotency key (scoped to the caller), unique when set.
    request_key: Mapped[str | None] = mapped_column(String(300), unique=True)


class SalesMessage(Base):
    """One entry of a sales request's conversation: the requester's mails, the sales
    office's replies, and the recorded changes (status, owner)."""

    __tablename__ = "sales_messages"
    __table_args__ = (Index("ix_sales_messages_request", "sales_request_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    sales_request_id: Mapped[str] = mapped_column(ForeignKey("sales_requests.id"))
    inbound: Mapped[bool] = mapped_column(Boolean, default=False)
    kind: Mapped[str] = mapped_column(String(20))  # message, reply, status, assigned
    author_id: Mapped[int] = mapped_column(BigId, default=0)
    author_name: Mapped[str] = mapped_column(String(200), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    # An inbound mail's Message-ID: a second delivery adds nothing. NULL for the rest.
    mail_message_id: Mapped[str | None] = mapped_column(String(998), unique=True)
    # A reply's caller-scoped request_id: a retry sends nothing twice.
    request_key: Mapped[str | None] = mapped_column(String(300), unique=True)
    attachment_names: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class SalesEvent(Base):
    """The outbox of the sales office's events: written in the change's transaction,
    published to NATS (``helpdesk.sales.<type>``) afterwards, by ID at most once each."""

    __tablename__ = "sales_events"
    __table_args__ = (Index("ix_sales_events_unpublished", "published_at", "created_at"),)

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    subject: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, object]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    published_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class PriceList(Base):
    """One version of the price list (a PDF): the newest is the one customers download."""

    __tablename__ = "price_lists"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    title: Mapped[str] = mapped_column(String(300))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigId)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    uploaded_at: Mapped[datetime] = mapped_column(UtcDateTime)
    uploaded_by: Mapped[str] = mapped_column(String(200), default="")
    request_key: Mapped[str | None] = mapped_column(String(300), unique=True)
