"""trigger fires: kind, error, and an index of fires not yet started

``kind`` tells an on-time fire from a catch-up started by a trigger's misfire policy;
``error`` says why a fire started nothing. The partial index finds fires whose claim
committed but whose execution was never recorded (the process died in between), so
another pass can start them.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNSTARTED = "execution_id IS NULL AND error IS NULL"


def upgrade() -> None:
    with op.batch_alter_table("trigger_fires", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "kind", sa.String(length=16), server_default=sa.text("'scheduled'"), nullable=False
            )
        )
        batch_op.add_column(sa.Column("error", sa.Text(), nullable=True))
        batch_op.create_index(
            "ix_trigger_fires_unstarted",
            ["fired_at"],
            unique=False,
            sqlite_where=sa.text(UNSTARTED),
            postgresql_where=sa.text(UNSTARTED),
        )


def downgrade() -> None:
    with op.batch_alter_table("trigger_fires", schema=None) as batch_op:
        batch_op.drop_index("ix_trigger_fires_unstarted")
        batch_op.drop_column("error")
        batch_op.drop_column("kind")
