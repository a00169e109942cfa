"""Adapters around the matcher core: Kafka consumer, HTTP API, metrics."""
