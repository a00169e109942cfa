"""The matcher's entry points: the HTTP API."""
