"""Adapters around the matcher core: the Kafka consumer of its input topics."""
