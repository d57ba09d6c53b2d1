"""Initial notify store: the delivery log ``notify_deliveries``.

Revision ID: 0001
Revises:
Create Date: 2026-11-23 13:02:45.007368

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``notify_deliveries`` with its uniqueness and listing indexes."""
    op.create_table(
        "notify_deliveries",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("ticket_id", sa.BigInteger(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("template", sa.String(length=64), nullable=False),
        sa.Column("locale", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('PENDING', 'SENT', 'FAILED')",
            name=op.f("ck_notify_deliveries_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_deliveries")),
        sa.UniqueConstraint(
            "event_id",
            "template",
            "recipient",
            name=op.f("uq_notify_deliveries_event_id_template_recipient"),
        ),
    )
    op.create_index(
        "ix_notify_deliveries_recipient_id", "notify_deliveries", ["recipient", "id"]
    )
    op.create_index(
        "ix_notify_deliveries_ticket_id_id", "notify_deliveries", ["ticket_id", "id"]
    )


def downgrade() -> None:
    """Drop the delivery log."""
    op.drop_index("ix_notify_deliveries_ticket_id_id", table_name="notify_deliveries")
    op.drop_index("ix_notify_deliveries_recipient_id", table_name="notify_deliveries")
    op.drop_table("notify_deliveries")
