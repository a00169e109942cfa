"""The local development stack: bundled broker and embedded PostgreSQL launchers, the `up` supervisor,
the demo, the demo feed, sample events and the synthetic problem generator. Never imported by production
code (an import-linter contract keeps it so)."""
