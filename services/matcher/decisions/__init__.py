"""Staff decisions, offers and offer responses: what they do to proposals and the pool."""
