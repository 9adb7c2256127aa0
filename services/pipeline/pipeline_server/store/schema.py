"""The run store's tables, as SQLAlchemy Core: one definition for SQLite and PostgreSQL.

Times are integer microseconds since the Unix epoch (UTC), the same on both
backends and exact, so a lease comparison never depends on a driver's idea of
time zones. Status is the pipeline.v1 enum's name ("RUNNING"), readable in psql.

Changing a table here needs a new migration in ``migrations/versions``; the
migration test checks that the two agree.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite's rowid alias is INTEGER PRIMARY KEY, not BIGINT; PostgreSQL needs BIGINT
# for tens of millions of runs over the years.
Sequence = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

runs = sa.Table(
    "runs",
    metadata,
    # Insertion order across every instance: ListRuns pages on it (newest first), so a
    # page token is a number that never shifts when runs are added or deleted.
    sa.Column("seq", Sequence, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(32), nullable=False, unique=True),
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
    # Set only in the same transaction that marks the run COMPLETED: a completed run
    # always names its zip, and a zip is referenced only once it is whole.
    sa.Column("output_key", sa.Text, nullable=True),
    # The instance running it and until when that instance has promised to be alive.
    sa.Column("owner", sa.Text, nullable=True),
    sa.Column("lease_expires_us", sa.BigInteger, nullable=True),
    sa.Index("ix_runs_status_lease", "status", "lease_expires_us"),
    sa.Index("ix_runs_finished_us", "finished_us"),
)

step_results = sa.Table(
    "step_results",
    metadata,
    sa.Column(
        "run_id",
        sa.String(32),
        sa.ForeignKey("runs.run_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("step_name", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    # The whole pipeline.v1.StepResult (row counts, findings, messages) as its JSON
    # form: one shape for both backends, readable with psql, versioned with the proto.
    sa.Column("result", sa.Text, nullable=False),
)

# Blobs that may exist without a run row pointing at them: written before the row
# refers to them, or left by a run deleted before its zips. The sweep deletes each
# blob and then its row, so a crash anywhere leaves at worst a row here, never an
# orphaned zip that nothing knows of, and never a run row pointing at a missing zip.
pending_blobs = sa.Table(
    "pending_blobs",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("run_id", sa.String(32), nullable=False),
    sa.Column("created_us", sa.BigInteger, nullable=False),
)
