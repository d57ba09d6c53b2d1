"""sales requests: prospects' mail routed to sales (seed 003)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 10:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "intake_sales_requests",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("inbound_message_id", sa.String(length=64), nullable=False),
        sa.Column("sender", sa.String(length=320), nullable=False),
        sa.Column("sender_name", sa.String(length=200), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("locale", sa.String(length=8), nullable=False),
        sa.Column("attachment_names", sa.JSON(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("inbound_message_id"),
    )
    op.create_index(
        "ix_intake_sales_requests_sender", "intake_sales_requests", ["sender"], unique=False
    )
    op.create_index(
        "ix_intake_sales_requests_received_at",
        "intake_sales_requests",
        ["received_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_intake_sales_requests_received_at", table_name="intake_sales_requests")
    op.drop_index("ix_intake_sales_requests_sender", table_name="intake_sales_requests")
    op.drop_table("intake_sales_requests")
