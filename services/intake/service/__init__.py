"""Intake service layer: verdicts on consumed messages, a batch applied in one unit of work, erasure."""
