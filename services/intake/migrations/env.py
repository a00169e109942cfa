"""Alembic environment of the intake service (schema `intake`)."""

from services.intake.adapters.tables import metadata
from services.platform.migrations_env import run_migrations

run_migrations("intake", target_metadata=metadata)
