"""Intake's entry points: the FastStream subscriber on the external topics and the HTTP gateway."""
