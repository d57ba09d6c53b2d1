"""business-hours service levels: resolution target, clocks start, the clock's state

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("resolution_due", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("clocks_start_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("sla_clock", sa.JSON(), nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_column("sla_clock")
        batch_op.drop_column("clocks_start_at")
        batch_op.drop_column("resolution_due")
