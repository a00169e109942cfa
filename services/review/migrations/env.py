"""Alembic environment of the review service (schema `review`)."""

from services.platform.migrations_env import run_migrations
from services.review.adapters.tables import metadata

run_migrations("review", target_metadata=metadata)
