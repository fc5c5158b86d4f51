"""results: embeddings, drift, quality, shadow

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 20:01:33.237760
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "drift_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("family", sa.String(length=32), nullable=False),
        sa.Column("feature", sa.String(length=128), nullable=False),
        sa.Column("detector", sa.String(length=64), nullable=False),
        sa.Column("class_name", sa.String(length=128), nullable=False),
        sa.Column("reference", sa.String(length=256), nullable=False),
        sa.Column("window", sa.String(length=16), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("statistic", sa.Float(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("p_value", sa.Float(), nullable=True),
        sa.Column("drift_detected", sa.Boolean(), nullable=False),
        sa.Column("n_reference", sa.Integer(), nullable=False),
        sa.Column("n_current", sa.Integer(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["job_runs.id"],
            name=op.f("fk_drift_results_run_id_job_runs"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drift_results")),
        sa.UniqueConstraint(
            "family",
            "feature",
            "detector",
            "class_name",
            "reference",
            "window",
            "window_end",
            name="uq_drift_results_check",
        ),
    )
    with op.batch_alter_table("drift_results", schema=None) as batch_op:
        batch_op.create_index("ix_drift_results_window_end", ["window_end"], unique=False)

    op.create_table(
        "quality_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("model_version", sa.String(length=128), nullable=False),
        sa.Column("prediction_source", sa.String(length=512), nullable=False),
        sa.Column("iou_threshold", sa.Float(), nullable=False),
        sa.Column("n_images", sa.Integer(), nullable=False),
        sa.Column("n_ground_truth", sa.Integer(), nullable=False),
        sa.Column("n_predictions", sa.Integer(), nullable=False),
        sa.Column("ap", sa.Float(), nullable=True),
        sa.Column("ap50", sa.Float(), nullable=True),
        sa.Column("mean_iou", sa.Float(), nullable=True),
        sa.Column("precision", sa.Float(), nullable=True),
        sa.Column("recall", sa.Float(), nullable=True),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name=op.f("fk_quality_results_dataset_id_datasets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["job_runs.id"],
            name=op.f("fk_quality_results_run_id_job_runs"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quality_results")),
    )
    with op.batch_alter_table("quality_results", schema=None) as batch_op:
        batch_op.create_index(
            "ix_quality_results_version_time", ["model_version", "computed_at"], unique=False
        )

    op.create_table(
        "class_quality",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("quality_result_id", sa.Integer(), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=False),
        sa.Column("class_name", sa.String(length=128), nullable=False),
        sa.Column("n_ground_truth", sa.Integer(), nullable=False),
        sa.Column("n_predictions", sa.Integer(), nullable=False),
        sa.Column("true_positives", sa.Integer(), nullable=False),
        sa.Column("false_positives", sa.Integer(), nullable=False),
        sa.Column("false_negatives", sa.Integer(), nullable=False),
        sa.Column("mean_iou", sa.Float(), nullable=True),
        sa.Column("precision", sa.Float(), nullable=True),
        sa.Column("recall", sa.Float(), nullable=True),
        sa.Column("f1", sa.Float(), nullable=True),
        sa.Column("false_positives_per_image", sa.Float(), nullable=False),
        sa.Column("ap", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["category_id"], ["categories.id"], name=op.f("fk_class_quality_category_id_categories")
        ),
        sa.ForeignKeyConstraint(
            ["quality_result_id"],
            ["quality_results.id"],
            name=op.f("fk_class_quality_quality_result_id_quality_results"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_class_quality")),
    )
    with op.batch_alter_table("class_quality", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_class_quality_quality_result_id"), ["quality_result_id"], unique=False
        )

    op.create_table(
        "image_embeddings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("embedder", sa.String(length=128), nullable=False),
        sa.Column("sample_id", sa.Integer(), nullable=True),
        sa.Column("dataset_image_id", sa.Integer(), nullable=True),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(sample_id IS NULL) <> (dataset_image_id IS NULL)",
            name=op.f("ck_image_embeddings_one_owner"),
        ),
        sa.ForeignKeyConstraint(
            ["dataset_image_id"],
            ["dataset_images.id"],
            name=op.f("fk_image_embeddings_dataset_image_id_dataset_images"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sample_id"],
            ["samples.id"],
            name=op.f("fk_image_embeddings_sample_id_samples"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_image_embeddings")),
        sa.UniqueConstraint(
            "embedder", "dataset_image_id", name="uq_image_embeddings_dataset_image"
        ),
        sa.UniqueConstraint("embedder", "sample_id", name="uq_image_embeddings_sample"),
    )
    op.create_table(
        "shadow_scores",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sample_id", sa.Integer(), nullable=False),
        sa.Column("reference_model", sa.String(length=128), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("n_production", sa.Integer(), nullable=False),
        sa.Column("n_reference", sa.Integer(), nullable=False),
        sa.Column("n_matched", sa.Integer(), nullable=False),
        sa.Column("mean_iou", sa.Float(), nullable=True),
        sa.Column("agreement", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sample_id"],
            ["samples.id"],
            name=op.f("fk_shadow_scores_sample_id_samples"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shadow_scores")),
        sa.UniqueConstraint("sample_id", "reference_model", name="uq_shadow_scores_sample"),
    )
    op.create_table(
        "instance_embeddings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("embedder", sa.String(length=128), nullable=False),
        sa.Column("predicted_instance_id", sa.Integer(), nullable=True),
        sa.Column("ground_truth_instance_id", sa.Integer(), nullable=True),
        sa.Column("category_id", sa.Integer(), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(predicted_instance_id IS NULL) <> (ground_truth_instance_id IS NULL)",
            name=op.f("ck_instance_embeddings_one_owner"),
        ),
        sa.ForeignKeyConstraint(
            ["category_id"],
            ["categories.id"],
            name=op.f("fk_instance_embeddings_category_id_categories"),
        ),
        sa.ForeignKeyConstraint(
            ["ground_truth_instance_id"],
            ["ground_truth_instances.id"],
            name=op.f("fk_instance_embeddings_ground_truth_instance_id_ground_truth_instances"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["predicted_instance_id"],
            ["predicted_instances.id"],
            name=op.f("fk_instance_embeddings_predicted_instance_id_predicted_instances"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_instance_embeddings")),
        sa.UniqueConstraint(
            "embedder", "ground_truth_instance_id", name="uq_instance_embeddings_ground_truth"
        ),
        sa.UniqueConstraint(
            "embedder", "predicted_instance_id", name="uq_instance_embeddings_predicted"
        ),
    )
    op.create_table(
        "shadow_class_scores",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shadow_score_id", sa.Integer(), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=False),
        sa.Column("matched", sa.Integer(), nullable=False),
        sa.Column("production_only", sa.Integer(), nullable=False),
        sa.Column("reference_only", sa.Integer(), nullable=False),
        sa.Column("class_disagreements", sa.Integer(), nullable=False),
        sa.Column("ious", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["category_id"],
            ["categories.id"],
            name=op.f("fk_shadow_class_scores_category_id_categories"),
        ),
        sa.ForeignKeyConstraint(
            ["shadow_score_id"],
            ["shadow_scores.id"],
            name=op.f("fk_shadow_class_scores_shadow_score_id_shadow_scores"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shadow_class_scores")),
    )
    with op.batch_alter_table("shadow_class_scores", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_shadow_class_scores_shadow_score_id"), ["shadow_score_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("shadow_class_scores", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_shadow_class_scores_shadow_score_id"))

    op.drop_table("shadow_class_scores")
    op.drop_table("instance_embeddings")
    op.drop_table("shadow_scores")
    op.drop_table("image_embeddings")
    with op.batch_alter_table("class_quality", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_class_quality_quality_result_id"))

    op.drop_table("class_quality")
    with op.batch_alter_table("quality_results", schema=None) as batch_op:
        batch_op.drop_index("ix_quality_results_version_time")

    op.drop_table("quality_results")
    with op.batch_alter_table("drift_results", schema=None) as batch_op:
        batch_op.drop_index("ix_drift_results_window_end")

    op.drop_table("drift_results")
