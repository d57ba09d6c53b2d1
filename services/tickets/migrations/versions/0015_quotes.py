"""quotes: a quote on a ticket with its lines, in integer cents and hundredths

Revision ID: 0015
Revises: 0014
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _when(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "quotes",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("ticket_id", _id(), nullable=False),
        sa.Column("organization_id", _id(), nullable=False),
        sa.Column("sales_request_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("net_cents", _id(), nullable=False),
        sa.Column("vat_cents", _id(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        _when("expires_at", nullable=False),
        sa.Column("proposed_dates", sa.Text(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("created_by_id", _id(), nullable=False),
        sa.Column("created_by_name", sa.String(length=200), nullable=False),
        _when("created_at", nullable=False),
        _when("sent_at"),
        _when("reminded_at"),
        _when("decided_at"),
        sa.Column("decided_by_id", _id(), nullable=False),
        sa.Column("decided_by_name", sa.String(length=200), nullable=False),
        sa.Column("decline_reason", sa.Text(), nullable=False),
        sa.Column("request_key", sa.String(length=250), nullable=False),
        sa.Column("pdf", sa.LargeBinary(), nullable=True),
        sa.Column("event_seq", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_key"),
    )
    op.create_index("ix_quotes_ticket_id", "quotes", ["ticket_id"])
    op.create_index("ix_quotes_organization_id", "quotes", ["organization_id"])
    op.create_index("ix_quotes_status", "quotes", ["status"])
    op.create_table(
        "quote_lines",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("quote_id", _id(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("quantity_hundredths", _id(), nullable=False),
        sa.Column("unit", sa.String(length=10), nullable=False),
        sa.Column("unit_price_cents", _id(), nullable=False),
        sa.Column("vat_rate_hundredths", sa.Integer(), nullable=False),
        sa.Column("net_cents", _id(), nullable=False),
        sa.Column("vat_cents", _id(), nullable=False),
        sa.ForeignKeyConstraint(["quote_id"], ["quotes.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_quote_lines_quote_id", "quote_lines", ["quote_id"])


def downgrade() -> None:
    op.drop_index("ix_quote_lines_quote_id", table_name="quote_lines")
    op.drop_table("quote_lines")
    for name in ("status", "organization_id", "ticket_id"):
        op.drop_index(f"ix_quotes_{name}", table_name="quotes")
    op.drop_table("quotes")
