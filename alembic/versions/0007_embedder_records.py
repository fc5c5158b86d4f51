"""embedder records: what made stored vectors, and whose vectors a drift check compared

Revision ID: 0007
Revises: 0009
Create Date: 2026-11-30 14:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0007"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "embedders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("first_used_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_embedders")),
        sa.UniqueConstraint("name", name=op.f("uq_embedders_name")),
    )
    with op.batch_alter_table("drift_results") as batch:
        batch.add_column(sa.Column("embedder", sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("drift_results") as batch:
        batch.drop_column("embedder")
    op.drop_table("embedders")
