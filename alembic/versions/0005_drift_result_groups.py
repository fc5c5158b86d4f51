"""drift results count the images behind per-object checks

Revision ID: 0005
Revises: 0007
Create Date: 2026-11-25 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0005"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("drift_results", schema=None) as batch_op:
        batch_op.add_column(sa.Column("n_reference_groups", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("n_current_groups", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("drift_results", schema=None) as batch_op:
        batch_op.drop_column("n_current_groups")
        batch_op.drop_column("n_reference_groups")
