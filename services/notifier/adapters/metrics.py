"""Prometheus series of the notifier."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS = Counter(
    "wijkmatch_notifier_events_total", "Consumed events by topic and outcome", ["topic", "outcome"]
)
OFFERS = Counter("wijkmatch_notifier_offers_total", "Offer events produced", ["type"])
OFFERS_WITHOUT_RECIPIENT = Counter(
    "wijkmatch_notifier_offers_without_recipient_total",
    "Offers made before the notifier knew a recipient: the unit's corporation or the case's referrer "
    "(it gets the offer once the pool names it)",
    ["recipient"],
)
ANSWERS = Counter("wijkmatch_notifier_http_answers_total", "HTTP answers by outcome", ["outcome"])
ATTEMPTS = Counter("wijkmatch_notifier_webhook_attempts_total", "Webhook attempts by verdict", ["verdict"])
ATTEMPT_SECONDS = Histogram(
    "wijkmatch_notifier_webhook_attempt_seconds",
    "Duration of one webhook attempt",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
DEAD_LETTERS = Counter(
    "wijkmatch_notifier_webhook_dead_letters_total", "Deliveries moved to the dead-letter table", ["reason"]
)
ENDPOINTS_DISABLED = Counter(
    "wijkmatch_notifier_endpoints_disabled_total", "Endpoints disabled because the receiver answered 410"
)
TARGETS_REFUSED = Counter(
    "wijkmatch_notifier_webhook_targets_refused_total",
    "Webhook attempts refused before sending because the target resolved to a non-public address",
)
IN_FLIGHT = Gauge("wijkmatch_notifier_webhook_in_flight", "Webhook attempts in flight")
CARE_REQUESTS = Counter(
    "wijkmatch_notifier_care_requests_total",
    "Care request events: care.requested, care.confirmed, care.declined, care.expired (issue 16)",
    ["type"],
)
AUTH_FAILURES = Counter(
    "wijkmatch_notifier_auth_failures_total", "Admin API requests refused for a missing or invalid token"
)
