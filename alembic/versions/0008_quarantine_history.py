"""quarantine history: quarantines that a corrected line replaced

Revision ID: 0008
Revises: 0005
Create Date: 2026-11-25 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0008"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "quarantine_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sample_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("raw", sa.Text(), nullable=True),
        sa.Column("quarantined_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("replaced_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["sample_id"],
            ["samples.id"],
            name=op.f("fk_quarantine_history_sample_id_samples"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quarantine_history")),
    )
    with op.batch_alter_table("quarantine_history", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_quarantine_history_sample_id"), ["sample_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("quarantine_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_quarantine_history_sample_id"))
    op.drop_table("quarantine_history")
