"""executions: indexes for the dashboard's list (newest first, optionally by status)

The executions list sorts by ``created_at`` (newest first) and pages with LIMIT/OFFSET;
without an index on it every page sorted the whole table (about 100 ms at 10,000
executions on SQLite, growing with the table). ``(status, created_at)`` serves the
list filtered by status, the overview's most common link.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.create_index("ix_executions_created_at", ["created_at"], unique=False)
        batch_op.create_index(
            "ix_executions_status_created_at", ["status", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.drop_index("ix_executions_status_created_at")
        batch_op.drop_index("ix_executions_created_at")
