"""Bounces and automatic-reply rules: statuses BOUNCED and SUPPRESSED, a Message-ID index
(a bounce names the Message-ID it reports), and ``notify_inbound_mail`` (the message that
opened a ticket, which the acknowledgement answers).

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
    with op.batch_alter_table("notify_deliveries") as batch:
        batch.drop_constraint(op.f("ck_notify_deliveries_status"), type_="check")
        batch.create_check_constraint(
            op.f("ck_notify_deliveries_status"), "status IN ('PENDING', 'SENT', 'FAILED', 'BOUNCED', 'SUPPRESSED')"
        )
    op.create_index("ix_notify_deliveries_message_id", "notify_deliveries", ["message_id"])
    op.create_table(
        "notify_inbound_mail",
        sa.Column("ticket_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("sender", sa.String(length=320), nullable=False),
        sa.Column("auto_reply", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("ticket_id", name=op.f("pk_notify_inbound_mail")),
    )


def downgrade() -> None:
    op.drop_table("notify_inbound_mail")
    op.drop_index("ix_notify_deliveries_message_id", table_name="notify_deliveries")
    with op.batch_alter_table("notify_deliveries") as batch:
        batch.drop_constraint(op.f("ck_notify_deliveries_status"), type_="check")
        batch.create_check_constraint(
            op.f("ck_notify_deliveries_status"), "status IN ('PENDING', 'SENT', 'FAILED')"
        )
