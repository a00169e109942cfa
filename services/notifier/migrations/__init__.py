"""Alembic migrations of schema `notifier`."""
