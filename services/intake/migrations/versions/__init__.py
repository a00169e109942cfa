"""Alembic revisions of the intake service."""
