"""Intake service layer: apply a batch of consumed messages in one unit of work; erase a case."""
