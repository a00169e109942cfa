"""The notifier's adapters: Kafka subscribers, repositories, the delivery worker, HTTP."""
