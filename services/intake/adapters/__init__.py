"""Intake adapters: database tables and the repository."""
