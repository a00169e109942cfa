"""Prometheus series of the review service."""

from __future__ import annotations

from prometheus_client import Counter

EVENTS = Counter("wijkmatch_review_events_total", "Events consumed by review", ["topic", "outcome"])
DECISIONS = Counter("wijkmatch_review_decisions_total", "Decisions taken", ["action", "outcome"])
AUTH_FAILURES = Counter("wijkmatch_review_auth_failures_total", "Requests refused by authentication")
