"""Intake's pure core: organisation registry and message validation (no I/O but loading the registry)."""
