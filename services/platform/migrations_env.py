"""The body of every service's alembic env.py: `run_migrations("<svc>", target_metadata)` and nothing else."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy import Connection, MetaData, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from services.platform.db import async_url, quote_schema

PLATFORM_TABLES = frozenset({"inbox", "outbox"})


def run_migrations(schema: str, target_metadata: MetaData | None = None) -> None:
    """Run the current alembic command for one service, versioned in `<schema>.alembic_version`.

    Uses the connection handed over by `services.platform.migrations` when there is one; otherwise (the
    plain `alembic` CLI) connects to `DATABASE_URL` itself.
    """
    quote_schema(schema)
    config = context.config
    if context.is_offline_mode():
        context.configure(
            url=_database_url(config.attributes),
            target_metadata=target_metadata,
            literal_binds=True,
            version_table_schema=schema,
            dialect_opts={"paramstyle": "named"},
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_online(connection, schema, target_metadata)
    else:
        asyncio.run(_run_async(_database_url(config.attributes), schema, target_metadata))


def _database_url(attributes: dict[str, Any]) -> str:
    url = attributes.get("database_url")
    if url:
        return str(url)
    from services.platform.settings import ServiceSettings

    return ServiceSettings().database_url


async def _run_async(url: str, schema: str, target_metadata: MetaData | None) -> None:
    engine = create_async_engine(async_url(url), poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_run_online, schema, target_metadata)
    finally:
        await engine.dispose()


def _run_online(connection: Connection, schema: str, target_metadata: MetaData | None) -> None:
    # Serialise concurrent upgrades of the same service (two pods starting at once).
    connection.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"wijkmatch.migrations.{schema}"}
    )
    connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {schema}"))

    def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
        return name == schema if type_ == "schema" else True

    def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        # inbox/outbox are the platform's (create_platform_tables, tested on their own); a service's
        # metadata need not repeat them for `alembic check` to compare the rest.
        return not (type_ == "table" and reflected and compare_to is None and name in PLATFORM_TABLES)

    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table_schema=schema,
        include_schemas=True,
        include_name=include_name,
        include_object=include_object,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
