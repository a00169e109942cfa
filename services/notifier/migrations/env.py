"""Alembic environment of the notifier service (schema `notifier`)."""

from services.notifier.adapters.tables import metadata
from services.platform.migrations_env import run_migrations

run_migrations("notifier", target_metadata=metadata)
