"""Prometheus metrics of the intake service (served at /metrics with FastStream's own)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from services.intake.service.apply import BatchOutcome

ACCEPTED = Counter(
    "wijkmatch_intake_accepted_total",
    "Valid events processed for the first time, by result (applied, late, ignored_erased)",
    ["type", "source", "result"],
)
REJECTED = Counter(
    "wijkmatch_intake_rejected_total",
    "Messages rejected to intake-rejected, by topic, type and source (unknown unless a type of EVENTS.md "
    "and a registered source)",
    ["topic", "type", "source"],
)
DUPLICATES = Counter(
    "wijkmatch_intake_duplicates_total", "Redelivered messages that changed nothing", ["type", "source"]
)
POOL_EVENTS = Counter("wijkmatch_intake_pool_events_total", "Pool events written to the outbox")
BATCH_SIZE = Histogram(
    "wijkmatch_intake_batch_size",
    "Messages per consumed batch",
    buckets=(1, 5, 10, 50, 100, 250, 500, 1000, 2000, 5000),
)
BATCH_SECONDS = Histogram(
    "wijkmatch_intake_batch_seconds",
    "Validate + apply + commit time of one batch",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
EVENT_TO_COMMIT_SECONDS = Histogram(
    "wijkmatch_intake_event_to_commit_seconds",
    "Kafka record timestamp to database commit",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
LAG = Gauge(
    "wijkmatch_intake_consumer_lag",
    "High watermark minus committed position, per partition (as of the last batch)",
    ["topic", "partition"],
)
DB_HEALTHY = Gauge("wijkmatch_intake_db_healthy", "1 while batches commit, 0 while retrying")


def count(outcome: BatchOutcome) -> None:
    for (result, event_type, source), n in outcome.counts.items():
        if result in {"applied", "late", "ignored_erased"}:
            ACCEPTED.labels(event_type, source, result).inc(n)
        elif result == "duplicate":
            DUPLICATES.labels(event_type, source).inc(n)
        elif result == "duplicate_rejected":
            DUPLICATES.labels("rejected", "unknown").inc(n)
    for (topic, event_type, source), n in outcome.rejected_by_topic.items():
        REJECTED.labels(topic, event_type, source).inc(n)
    POOL_EVENTS.inc(outcome.pool_events)


def lag_seen() -> bool:
    """Whether any partition showed lag at its last observation."""
    return any(sample.value > 0 for metric in LAG.collect() for sample in metric.samples)
