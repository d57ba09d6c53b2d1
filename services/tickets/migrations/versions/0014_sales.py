"""sales office: sales requests with their conversation, the outbox of their events, and
the price list's versions

Revision ID: 0014
Revises: 0013
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "sales_requests",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("number", _id(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("owner_id", _id(), nullable=False),
        sa.Column("organization_id", _id(), nullable=False),
        sa.Column("contact_id", _id(), nullable=False),
        sa.Column("sender", sa.String(length=320), nullable=False),
        sa.Column("sender_name", sa.String(length=200), nullable=False),
        sa.Column("company", sa.String(length=200), nullable=False),
        sa.Column("phone", sa.String(length=50), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("locale", sa.String(length=5), nullable=False),
        sa.Column("message_id", sa.String(length=998), nullable=False),
        sa.Column("attachment_names", sa.JSON(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_key", sa.String(length=300), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("number"),
        sa.UniqueConstraint("request_key"),
    )
    op.create_index("ix_sales_requests_received", "sales_requests", ["received_at", "id"])
    op.create_index("ix_sales_requests_owner_id", "sales_requests", ["owner_id"])
    op.create_index("ix_sales_requests_organization_id", "sales_requests", ["organization_id"])
    op.create_index("ix_sales_requests_contact_id", "sales_requests", ["contact_id"])
    op.create_table(
        "sales_messages",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("sales_request_id", sa.String(length=64), nullable=False),
        sa.Column("inbound", sa.Boolean(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("author_id", _id(), nullable=False),
        sa.Column("author_name", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("mail_message_id", sa.String(length=998), nullable=True),
        sa.Column("request_key", sa.String(length=300), nullable=True),
        sa.Column("attachment_names", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["sales_request_id"], ["sales_requests.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("mail_message_id"),
        sa.UniqueConstraint("request_key"),
    )
    op.create_index(
        "ix_sales_messages_request", "sales_messages", ["sales_request_id", "created_at"]
    )
    op.create_table(
        "sales_events",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=100), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_index("ix_sales_events_unpublished", "sales_events", ["published_at", "created_at"])
    op.create_table(
        "price_lists",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size", _id(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("uploaded_by", sa.String(length=200), nullable=False),
        sa.Column("request_key", sa.String(length=300), nullable=True),
        sa.PrimaryKeyConstraint("version"),
        sa.UniqueConstraint("request_key"),
    )


def downgrade() -> None:
    op.drop_table("price_lists")
    op.drop_index("ix_sales_events_unpublished", table_name="sales_events")
    op.drop_table("sales_events")
    op.drop_index("ix_sales_messages_request", table_name="sales_messages")
    op.drop_table("sales_messages")
    for name in ("contact_id", "organization_id", "owner_id"):
        op.drop_index(f"ix_sales_requests_{name}", table_name="sales_requests")
    op.drop_index("ix_sales_requests_received", table_name="sales_requests")
    op.drop_table("sales_requests")
