"""labels come back: per-class outcomes of labelled samples, review decisions

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 17:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "label_outcomes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_image_id", sa.Integer(), nullable=False),
        sa.Column("sample_id", sa.Integer(), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=False),
        sa.Column("ious", sa.JSON(), nullable=False),
        sa.Column("production_only", sa.Integer(), nullable=False),
        sa.Column("label_only", sa.Integer(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["category_id"],
            ["categories.id"],
            name=op.f("fk_label_outcomes_category_id_categories"),
        ),
        sa.ForeignKeyConstraint(
            ["dataset_image_id"],
            ["dataset_images.id"],
            name=op.f("fk_label_outcomes_dataset_image_id_dataset_images"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sample_id"],
            ["samples.id"],
            name=op.f("fk_label_outcomes_sample_id_samples"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_label_outcomes")),
        sa.UniqueConstraint(
            "dataset_image_id", "category_id", name="uq_label_outcomes_image_class"
        ),
    )
    with op.batch_alter_table("label_outcomes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_label_outcomes_sample_id"), ["sample_id"], unique=False
        )

    with op.batch_alter_table("queue_items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("review_decision", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("reviewed_by", sa.String(length=256), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("queue_items", schema=None) as batch_op:
        batch_op.drop_column("reviewed_by")
        batch_op.drop_column("reviewed_at")
        batch_op.drop_column("review_decision")

    with op.batch_alter_table("label_outcomes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_label_outcomes_sample_id"))
    op.drop_table("label_outcomes")
