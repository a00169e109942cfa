"""Review's entry points: the FastStream subscriber, the HTTP API and the web page."""
