"""web UI logins: argon2id password hashes on users, browser sessions

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 05:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("password_hash", sa.Text(), nullable=True))
    op.create_table(
        "browser_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_browser_sessions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_browser_sessions")),
    )
    with op.batch_alter_table("browser_sessions") as batch:
        batch.create_index(batch.f("ix_browser_sessions_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("browser_sessions") as batch:
        batch.drop_index(batch.f("ix_browser_sessions_user_id"))
    op.drop_table("browser_sessions")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("password_hash")
