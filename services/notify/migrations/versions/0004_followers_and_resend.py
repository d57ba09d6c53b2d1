"""resends: a delivery that re-sends an earlier one names it (its id and Message-ID)

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("notify_deliveries") as batch:
        batch.add_column(sa.Column("resend_of", sa.BigInteger(), nullable=True))
        batch.add_column(
            sa.Column(
                "resend_of_message_id", sa.String(length=255), nullable=False, server_default=""
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("notify_deliveries") as batch:
        batch.drop_column("resend_of_message_id")
        batch.drop_column("resend_of")
