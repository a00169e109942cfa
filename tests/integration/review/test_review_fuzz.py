"""schemathesis fuzzes the review API from its own OpenAPI document, with a valid admin token for every
region, over real HTTP against the real broker and PostgreSQL: no request may produce a 5xx, and every
2xx answer must match the documented response schema."""

from __future__ import annotations

import contextlib
import itertools
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, response_schema_conformance

from tests.integration.review.helpers import token

ROOT = Path(__file__).resolve().parents[3]


pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def review_server(kafka_bootstrap: str, migrated_database_url: str) -> Iterator[str]:
    """The review service on a loopback port, in its own process (see serve.py for why not a thread)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.integration.review.serve",
            kafka_bootstrap,
            migrated_database_url,
            str(port),
        ],
        cwd=ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the review service did not start (exit code {process.poll()})")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


ADMIN = {"Authorization": f"Bearer {token('admin', ['*'], 'fuzz-admin')}"}
EXAMPLES_PER_OPERATION = 30


def test_openapi_is_served_with_every_endpoint_to_a_signed_in_caller(review_server: str) -> None:
    assert httpx.get(f"{review_server}/openapi.json").status_code == 401
    paths = httpx.get(f"{review_server}/openapi.json", headers=ADMIN).json()["paths"]
    for path in (
        "/v1/proposals",
        "/v1/proposals/{proposal_id}",
        "/v1/proposals/{proposal_id}/approve",
        "/v1/proposals/{proposal_id}/reject",
        "/v1/proposals/bulk-approve",
        "/v1/rounds",
        "/v1/audit",
    ):
        assert path in paths
    assert httpx.get(f"{review_server}/docs").status_code == 404  # no interactive docs on the API port
    assert httpx.get(f"{review_server}/metrics").status_code == 404  # the internal health port has them


def test_no_request_makes_the_api_fail(review_server: str) -> None:
    # schemathesis' own pytest plugin does not run on pytest 9 yet; its strategies do, one per operation.
    document = httpx.get(f"{review_server}/openapi.json", headers=ADMIN).json()
    api = schemathesis.openapi.from_dict(document)
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 9
    seen: dict[int, int] = {}
    for operation, mode in itertools.product(operations, [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]):

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: Any) -> None:
            response = case.call_and_validate(
                base_url=review_server,
                headers={**ADMIN, **(case.headers or {})},
                checks=[not_a_server_error, response_schema_conformance],
            )
            seen[response.status_code] = seen.get(response.status_code, 0) + 1

        try:
            fuzz()
        except Unsatisfiable:
            # Negative data needs an input to break; operations with none have no negative cases.
            assert mode == GenerationMode.NEGATIVE and not operation.path_parameters and not operation.query
    # The fuzzer reached the handlers (answers) and the validation (422s), not only the token check.
    assert sum(seen.values()) >= 100 and seen.get(200, 0) > 0 and seen.get(422, 0) > 0, seen
    assert not any(code >= 500 for code in seen), seen
