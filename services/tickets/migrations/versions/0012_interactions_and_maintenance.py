"""interactions and maintenance: phone calls and remote sessions recorded on tickets, and
planned remote updates of an organisation's installation

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ticket_interactions",
        sa.Column("comment_id", sa.String(length=64), nullable=False),
        sa.Column("ticket_id", _id(), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("direction", sa.String(length=20), nullable=False),
        sa.Column("contact_id", _id(), nullable=True),
        sa.Column("with_whom", sa.String(length=200), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.Column("notify_customer", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["comment_id"], ["ticket_comments.id"]),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"]),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"]),
        sa.PrimaryKeyConstraint("comment_id"),
    )
    op.create_index(
        "ix_ticket_interactions_ticket_id", "ticket_interactions", ["ticket_id"], unique=False
    )
    op.create_table(
        "maintenance_windows",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("request_key", sa.String(length=200), nullable=True),
        sa.Column("organization_id", _id(), nullable=False),
        sa.Column("medium", sa.String(length=20), nullable=False),
        sa.Column("planned_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("planned_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("planned_by_agent_id", _id(), nullable=False),
        sa.Column("reminder_sent", sa.Boolean(), nullable=False),
        sa.Column("overdue", sa.Boolean(), nullable=False),
        sa.Column("event_seq", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_key"),
    )
    op.create_index(
        "ix_maintenance_windows_organization_id",
        "maintenance_windows",
        ["organization_id"],
        unique=False,
    )
    op.create_index(
        "ix_maintenance_start", "maintenance_windows", ["planned_start", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_maintenance_start", table_name="maintenance_windows")
    op.drop_index("ix_maintenance_windows_organization_id", table_name="maintenance_windows")
    op.drop_table("maintenance_windows")
    op.drop_index("ix_ticket_interactions_ticket_id", table_name="ticket_interactions")
    op.drop_table("ticket_interactions")
