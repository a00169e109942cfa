"""Alembic environment of the __service__ service (schema `__service__`)."""

from services.platform.migrations_env import run_migrations

run_migrations("__service__", target_metadata=None)
