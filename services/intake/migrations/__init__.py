"""Alembic migrations of the intake service (schema `intake`)."""
