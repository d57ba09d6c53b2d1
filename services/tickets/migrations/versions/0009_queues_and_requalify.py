"""queues by urgency: each ticket's next service-level due instant, and the indexes of
the queue orders

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_tickets = sa.table(
    "tickets",
    sa.column("id", sa.Integer),
    sa.column("status", sa.String),
    sa.column("taken_in_charge_at", sa.DateTime(timezone=True)),
    sa.column("taken_in_charge_due", sa.DateTime(timezone=True)),
    sa.column("first_feedback_at", sa.DateTime(timezone=True)),
    sa.column("first_feedback_due", sa.DateTime(timezone=True)),
    sa.column("resolution_due", sa.DateTime(timezone=True)),
    sa.column("next_due_at", sa.DateTime(timezone=True)),
    sa.column("next_due_target", sa.String),
)


def upgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("next_due_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("next_due_target", sa.String(length=20), nullable=False, server_default="")
        )
        batch_op.create_index("ix_tickets_next_due", ["next_due_at", "id"], unique=False)
        batch_op.create_index("ix_tickets_updated", ["updated_at", "id"], unique=False)
    # The tickets already there: the nearest due instant of a target not yet reached.
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(_tickets).where(_tickets.c.status.not_in(("SOLVED", "CLOSED")))
    ).all()
    for r in rows:
        candidates = [
            (due, target)
            for due, met, target in (
                (r.taken_in_charge_due, r.taken_in_charge_at, "TAKEN_IN_CHARGE"),
                (r.first_feedback_due, r.first_feedback_at, "FIRST_FEEDBACK"),
                (r.resolution_due, None, "RESOLUTION"),
            )
            if due is not None and met is None
        ]
        if candidates:
            due, target = min(candidates, key=lambda c: c[0])
            bind.execute(
                sa.update(_tickets)
                .where(_tickets.c.id == r.id)
                .values(next_due_at=due, next_due_target=target)
            )


def downgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index("ix_tickets_updated")
        batch_op.drop_index("ix_tickets_next_due")
        batch_op.drop_column("next_due_target")
        batch_op.drop_column("next_due_at")
