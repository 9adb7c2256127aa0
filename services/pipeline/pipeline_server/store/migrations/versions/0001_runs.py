"""runs, their step results, and blobs not yet (or no longer) referenced

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Sequence = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("seq", Sequence, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("label", sa.Text, nullable=False, server_default=""),
        sa.Column("version", sa.Text, nullable=False, server_default=""),
        sa.Column("error", sa.Text, nullable=False, server_default=""),
        sa.Column("started_us", sa.BigInteger, nullable=False),
        sa.Column("finished_us", sa.BigInteger, nullable=True),
        sa.Column("duration_ms", sa.Float, nullable=False, server_default="0"),
        sa.Column("input_size", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("input_sha256", sa.String(64), nullable=False, server_default=""),
        sa.Column("input_key", sa.Text, nullable=True),
        sa.Column("output_size", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("output_sha256", sa.String(64), nullable=False, server_default=""),
        sa.Column("output_key", sa.Text, nullable=True),
        sa.Column("owner", sa.Text, nullable=True),
        sa.Column("lease_expires_us", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_runs"),
        sa.UniqueConstraint("run_id", name="uq_runs_run_id"),
    )
    op.create_index("ix_runs_status_lease", "runs", ["status", "lease_expires_us"])
    op.create_index("ix_runs_finished_us", "runs", ["finished_us"])
    op.create_table(
        "step_results",
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("step_name", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("result", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("run_id", "position", name="pk_step_results"),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["runs.run_id"],
            name="fk_step_results_run_id_runs",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "pending_blobs",
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_pending_blobs"),
    )


def downgrade() -> None:
    op.drop_table("pending_blobs")
    op.drop_table("step_results")
    op.drop_index("ix_runs_finished_us", table_name="runs")
    op.drop_index("ix_runs_status_lease", table_name="runs")
    op.drop_table("runs")
