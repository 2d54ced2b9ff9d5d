"""Alembic environment: runs on the connection :func:`serving.migrate.migrate` hands in, inside
its transaction (so the whole upgrade commits or rolls back as one, and concurrent starters
queue on its lock)."""

from __future__ import annotations

from alembic import context

from serving.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
