"""image properties

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 20:14:33.922435
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "image_properties",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sample_id", sa.Integer(), nullable=True),
        sa.Column("dataset_image_id", sa.Integer(), nullable=True),
        sa.Column("brightness", sa.Float(), nullable=False),
        sa.Column("contrast", sa.Float(), nullable=False),
        sa.Column("saturation", sa.Float(), nullable=False),
        sa.Column("sharpness", sa.Float(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(sample_id IS NULL) <> (dataset_image_id IS NULL)",
            name=op.f("ck_image_properties_one_owner"),
        ),
        sa.ForeignKeyConstraint(
            ["dataset_image_id"],
            ["dataset_images.id"],
            name=op.f("fk_image_properties_dataset_image_id_dataset_images"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sample_id"],
            ["samples.id"],
            name=op.f("fk_image_properties_sample_id_samples"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_image_properties")),
        sa.UniqueConstraint("dataset_image_id", name="uq_image_properties_dataset_image"),
        sa.UniqueConstraint("sample_id", name="uq_image_properties_sample"),
    )


def downgrade() -> None:
    op.drop_table("image_properties")
