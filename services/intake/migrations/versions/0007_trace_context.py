"""trace context: the W3C ``traceparent`` of the SMTP accept that stored each inbound
message, so that its processing (and the ticket it makes) joins the same trace

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 23:10:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "intake_inbound_messages"


def upgrade() -> None:
    with op.batch_alter_table(TABLE) as batch:
        batch.add_column(
            sa.Column("traceparent", sa.String(length=64), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table(TABLE) as batch:
        batch.drop_column("traceparent")
