"""followers and resends: contacts following a ticket (CC), and the answers re-sent by ID

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ticket_followers",
        sa.Column("ticket_id", _id(), nullable=False),
        sa.Column("contact_id", _id(), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"]),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"]),
        sa.PrimaryKeyConstraint("ticket_id", "contact_id"),
    )
    op.create_table(
        "ticket_answer_resends",
        sa.Column("id", sa.String(length=100), nullable=False),
        sa.Column("ticket_id", _id(), nullable=False),
        sa.Column("recipient_id", _id(), nullable=False),
        sa.Column("comment_ids", sa.JSON(), nullable=False),
        sa.Column("performed_by", sa.String(length=120), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["recipient_id"], ["contacts.id"]),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_ticket_answer_resends_ticket_id", "ticket_answer_resends", ["ticket_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_ticket_answer_resends_ticket_id", table_name="ticket_answer_resends")
    op.drop_table("ticket_answer_resends")
    op.drop_table("ticket_followers")
