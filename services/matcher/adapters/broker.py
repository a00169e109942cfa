"""The matcher's FastStream broker (light to import: the ASGI app builds it before the service exists)."""

from __future__ import annotations

from faststream.kafka import KafkaBroker


def matcher_broker(bootstrap_servers: str) -> KafkaBroker:
    """Metadata refreshed every 5 s, so new topics and partitions (and so rebalances) are seen soon."""
    return KafkaBroker(bootstrap_servers, logger=None, metadata_max_age_ms=5_000)
