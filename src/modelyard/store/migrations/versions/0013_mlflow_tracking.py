"""mlflow tracking: datasets and logged models that MLflow runs read and wrote

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 04:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mlflow_datasets",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "experiment_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("source_type", sa.String(length=64), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("dataset_schema", sa.Text(), nullable=False),
        sa.Column("profile", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_mlflow_datasets_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mlflow_datasets")),
        sa.UniqueConstraint(
            "experiment_id", "name", "digest", name=op.f("uq_mlflow_datasets_experiment_id")
        ),
    )
    op.create_table(
        "mlflow_run_inputs",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column(
            "dataset_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("tags_json", sa.Text(), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["mlflow_datasets.id"],
            name=op.f("fk_mlflow_run_inputs_dataset_id_mlflow_datasets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["runs.id"],
            name=op.f("fk_mlflow_run_inputs_run_id_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "dataset_id", name=op.f("pk_mlflow_run_inputs")),
    )
    with op.batch_alter_table("mlflow_run_inputs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_mlflow_run_inputs_dataset_id"), ["dataset_id"], unique=False
        )
    op.create_table(
        "mlflow_run_models",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("model_id", sa.String(length=64), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["runs.id"],
            name=op.f("fk_mlflow_run_models_run_id_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "run_id", "model_id", "direction", name=op.f("pk_mlflow_run_models")
        ),
    )


def downgrade() -> None:
    op.drop_table("mlflow_run_models")
    with op.batch_alter_table("mlflow_run_inputs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mlflow_run_inputs_dataset_id"))
    op.drop_table("mlflow_run_inputs")
    op.drop_table("mlflow_datasets")
