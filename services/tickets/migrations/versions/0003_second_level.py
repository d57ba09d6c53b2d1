"""second level: programming-ticket links, time entries, third-party hold, agent duty

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 16:30:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ticket_time_entries",
        sa.Column("id", sa.String(length=100), nullable=False),
        sa.Column("ticket_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("agent_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("hours", sa.Float(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_ticket_time_entries_ticket_id", "ticket_time_entries", ["ticket_id"], unique=False
    )
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("programming_tickets", sa.JSON(), nullable=False, server_default="[]")
        )
        batch_op.add_column(
            sa.Column(
                "awaiting_verification", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
        batch_op.add_column(
            sa.Column("hours_spent", sa.Float(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("hold_reason", sa.String(length=20), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("third_party_name", sa.String(length=200), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column(
                "third_party_reference", sa.String(length=200), nullable=False, server_default=""
            )
        )
        batch_op.add_column(
            sa.Column(
                "merged_into",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                nullable=True,
            )
        )
        batch_op.create_foreign_key("fk_tickets_merged_into", "tickets", ["merged_into"], ["id"])
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("on_call", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column("development_lead", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.drop_column("development_lead")
        batch_op.drop_column("on_call")
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_constraint("fk_tickets_merged_into", type_="foreignkey")
        for column in (
            "merged_into",
            "third_party_reference",
            "third_party_name",
            "hold_reason",
            "hours_spent",
            "awaiting_verification",
            "programming_tickets",
        ):
            batch_op.drop_column(column)
    op.drop_index("ix_ticket_time_entries_ticket_id", table_name="ticket_time_entries")
    op.drop_table("ticket_time_entries")
