"""accepted_at: no schema change; an email ticket's arrival is the time the stored
inbound message's row already keeps (received_at, set when the listener accepted it)

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Nothing to add: intake passes ``intake_inbound_messages.received_at`` on."""


def downgrade() -> None:
    """Nothing to remove."""
