"""sales forwarding: when each sales request was handed to the sales office
(SalesService.RecordSalesRequest; NULL: not yet, the sweep hands it over), and the web
form's company, phone and known contact kept apart from the body

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 19:45:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "intake_sales_requests"


def upgrade() -> None:
    with op.batch_alter_table(TABLE) as batch:
        batch.add_column(sa.Column("forwarded_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column("company", sa.String(length=200), nullable=False, server_default="")
        )
        batch.add_column(
            sa.Column("phone", sa.String(length=50), nullable=False, server_default="")
        )
        batch.add_column(
            sa.Column("contact_id", sa.BigInteger(), nullable=False, server_default="0")
        )
    op.create_index("ix_intake_sales_requests_forwarded_at", TABLE, ["forwarded_at"])


def downgrade() -> None:
    op.drop_index("ix_intake_sales_requests_forwarded_at", table_name=TABLE)
    with op.batch_alter_table(TABLE) as batch:
        batch.drop_column("contact_id")
        batch.drop_column("phone")
        batch.drop_column("company")
        batch.drop_column("forwarded_at")
