"""instant messaging: statuses DELIVERED and READ, the chats of IM tickets

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 10:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD = "status IN ('PENDING', 'SENT', 'FAILED', 'BOUNCED', 'SUPPRESSED')"
_NEW = "status IN ('PENDING', 'SENT', 'FAILED', 'BOUNCED', 'SUPPRESSED', 'DELIVERED', 'READ')"


def upgrade() -> None:
    with op.batch_alter_table("notify_deliveries") as batch:
        batch.drop_constraint(op.f("ck_notify_deliveries_status"), type_="check")
        batch.create_check_constraint(op.f("ck_notify_deliveries_status"), _NEW)
    op.create_table(
        "notify_im_chats",
        sa.Column("ticket_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("chat_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("ticket_id", name=op.f("pk_notify_im_chats")),
    )


def downgrade() -> None:
    op.drop_table("notify_im_chats")
    with op.batch_alter_table("notify_deliveries") as batch:
        batch.drop_constraint(op.f("ck_notify_deliveries_status"), type_="check")
        batch.create_check_constraint(op.f("ck_notify_deliveries_status"), _OLD)
