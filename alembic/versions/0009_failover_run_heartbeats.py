"""failover: run owners and heartbeats, abandoned runs, the leader lease

Revision ID: 0009
Revises: 0004
Create Date: 2026-11-25 09:00:00.000000

``job_runs.status`` is a VARCHAR(16) without a CHECK constraint (a non-native enum), so
the new ``abandoned`` status needs no change to the column.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0009"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("job_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("abandoned_by", sa.String(length=255), nullable=True))
        batch_op.create_index("ix_job_runs_status", ["status"], unique=False)

    op.create_table(
        "leader_leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=255), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=True),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("renewed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leader_leases")),
    )


def downgrade() -> None:
    # the older code knows no `abandoned`: such runs did fail
    op.execute("UPDATE job_runs SET status = 'failed' WHERE status = 'abandoned'")
    op.drop_table("leader_leases")
    with op.batch_alter_table("job_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_job_runs_status")
        batch_op.drop_column("abandoned_by")
        batch_op.drop_column("heartbeat_at")
        batch_op.drop_column("owner")
