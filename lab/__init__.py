"""The outcomes and policy lab: simulated years, the results monitor, policy what-ifs (docs/lab.md).

Not a service: nothing in services/ or schemas/ imports it (import-linter). It uses schemas/, the
solver's public entry point, the matcher's pure problem builder and the dev-stack generator.
"""
