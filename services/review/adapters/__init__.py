"""The review service's adapters: tables, Kafka consumer, repository, HTTP API and web page."""
