"""cost ledger: replica gpu requests, project and deployment tags, traffic, replica usage

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 09:12:40.118204
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("deployment_replicas", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("gpu", sa.Double(), server_default=sa.text("0"), nullable=False)
        )

    op.create_table(
        "project_tags",
        sa.Column("project_id", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("value", sa.String(length=256), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_project_tags_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "key", name=op.f("pk_project_tags")),
    )
    op.create_table(
        "deployment_tags",
        sa.Column("deployment_id", _BIGINT, nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("value", sa.String(length=256), nullable=False),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name=op.f("fk_deployment_tags_deployment_id_deployments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("deployment_id", "key", name=op.f("pk_deployment_tags")),
    )
    op.create_table(
        "deployment_traffic",
        sa.Column("deployment_id", _BIGINT, nullable=False),
        sa.Column("bucket_ms", sa.BigInteger(), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("sampled_s", sa.Double(), nullable=False),
        sa.Column("replica_s", sa.Double(), nullable=False),
        sa.Column("idle_replica_s", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name=op.f("fk_deployment_traffic_deployment_id_deployments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("deployment_id", "bucket_ms", name=op.f("pk_deployment_traffic")),
    )
    op.create_table(
        "replica_usage",
        sa.Column("id", _BIGINT, autoincrement=True, nullable=False),
        sa.Column("deployment_id", _BIGINT, nullable=False),
        sa.Column("replica_id", sa.String(length=32), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("time_ms", sa.BigInteger(), nullable=False),
        sa.Column("interval_s", sa.Double(), nullable=False),
        sa.Column("cpu_cores", sa.Double(), nullable=False),
        sa.Column("rss_mb", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name=op.f("fk_replica_usage_deployment_id_deployments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_replica_usage")),
    )
    with op.batch_alter_table("replica_usage", schema=None) as batch_op:
        batch_op.create_index(
            "ix_replica_usage_dep_time", ["deployment_id", "time_ms"], unique=False
        )
        batch_op.create_index("ix_replica_usage_time", ["time_ms"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("replica_usage", schema=None) as batch_op:
        batch_op.drop_index("ix_replica_usage_time")
        batch_op.drop_index("ix_replica_usage_dep_time")

    op.drop_table("replica_usage")
    op.drop_table("deployment_traffic")
    op.drop_table("deployment_tags")
    op.drop_table("project_tags")
    with op.batch_alter_table("deployment_replicas", schema=None) as batch_op:
        batch_op.drop_column("gpu")
