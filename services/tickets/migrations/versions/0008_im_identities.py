"""instant messaging identities: contacts' and agents' Telegram user IDs and WhatsApp numbers

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("telegram_user_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("whatsapp_number", sa.String(length=32), nullable=True))
        batch_op.create_unique_constraint("uq_contacts_telegram_user_id", ["telegram_user_id"])
        batch_op.create_unique_constraint("uq_contacts_whatsapp_number", ["whatsapp_number"])
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("telegram_user_id", sa.String(length=64), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("whatsapp_number", sa.String(length=32), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.drop_column("whatsapp_number")
        batch_op.drop_column("telegram_user_id")
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_constraint("uq_contacts_whatsapp_number", type_="unique")
        batch_op.drop_constraint("uq_contacts_telegram_user_id", type_="unique")
        batch_op.drop_column("whatsapp_number")
        batch_op.drop_column("telegram_user_id")
