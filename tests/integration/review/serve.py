"""`python -m tests.integration.review.serve BOOTSTRAP DATABASE_URL PORT`: the review service as the fuzz test
needs it (generous bulk limit, a fresh consumer group), in a process of its own.

Why a process and not a thread of the test: CPython before 3.11.9 keeps the AST constructor's recursion
counter per interpreter, not per thread (python/cpython#106905). Hypothesis parses source in the test
thread while the server imports and compiles in its own; two threads converting ASTs at once end in
"SystemError: AST constructor recursion depth mismatch" (seen three times in CI's full run, on 3.11.7)."""

from __future__ import annotations

import sys

import uvicorn

from services.review.app import create_app
from tests.integration.review.helpers import review_settings


def main(argv: list[str]) -> None:
    bootstrap, database_url, port = argv
    # Generous bulk limits: the fuzzer would otherwise mostly see (documented) 429s.
    app = create_app(review_settings(bootstrap, database_url, bulk_per_minute=10_000), configure_logs=False)
    uvicorn.run(app, host="127.0.0.1", port=int(port), log_config=None, log_level="warning")


if __name__ == "__main__":
    main(sys.argv[1:])
