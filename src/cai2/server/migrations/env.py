"""Alembic environment of the service's tables, run programmatically by ``upgrade_schema``.

The caller passes an open connection in ``config.attributes["connection"]``; the version table is
``cai2_serve_alembic_version`` so other Alembic users of the same database are not disturbed.
"""

from alembic import context

from cai2.oversight._queue import OversightBase
from cai2.server._db import VERSION_TABLE, ServeBase, owns_table

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=[ServeBase.metadata, OversightBase.metadata],
    version_table=VERSION_TABLE,
    include_name=owns_table,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
