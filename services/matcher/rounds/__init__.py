"""Matching rounds: scheduling, running the solver in a worker process, recording and publishing."""
