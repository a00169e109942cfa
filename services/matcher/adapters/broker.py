"""The matcher's FastStream broker (light to import: the ASGI app builds it before the service exists)."""

from __future__ import annotations

from faststream.kafka import KafkaBroker

from services.platform.observability import make_kafka_broker


def matcher_broker(bootstrap_servers: str) -> KafkaBroker:
    """The platform's broker (Kafka security settings, Prometheus middleware); metadata refreshed every
    5 s, so new topics and partitions (and so rebalances) are seen soon."""
    return make_kafka_broker(bootstrap_servers, "matcher", logger=None, metadata_max_age_ms=5_000)
