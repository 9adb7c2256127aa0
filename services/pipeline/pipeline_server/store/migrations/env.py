"""Alembic's entry point: migrate the connection the run store hands over.

The store runs migrations itself at start (``pipeline_server.store.migrate``),
under a lock, so this never opens a connection of its own.
"""

from __future__ import annotations

from alembic import context

from pipeline_server.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite cannot ALTER most things in place; batch mode rebuilds the table.
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
