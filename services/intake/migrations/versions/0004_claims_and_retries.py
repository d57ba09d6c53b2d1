"""claims and retries: a lease per stored mail and IM update (several replicas), the
time of the next attempt and the count of failed attempts

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 10:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("intake_inbound_messages", "im_updates")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column("claimed_by", sa.String(length=64), nullable=False, server_default="")
            )
            batch.add_column(sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))
            batch.add_column(
                sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True)
            )
            batch.add_column(
                sa.Column("failures", sa.Integer(), nullable=False, server_default="0")
            )


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("failures")
            batch.drop_column("next_attempt_at")
            batch.drop_column("claimed_until")
            batch.drop_column("claimed_by")
