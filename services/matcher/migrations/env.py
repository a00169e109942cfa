"""Alembic environment of the matcher service (schema `matcher`)."""

from services.matcher.pool.tables import metadata
from services.platform.migrations_env import run_migrations

run_migrations("matcher", target_metadata=metadata)
