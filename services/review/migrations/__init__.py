"""Alembic migrations of the review service (schema `review`)."""
