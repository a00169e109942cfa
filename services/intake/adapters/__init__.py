"""Intake adapters: database tables and repositories, Kafka consumer, HTTP gateway, metrics."""
