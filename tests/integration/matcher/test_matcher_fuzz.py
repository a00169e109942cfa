"""schemathesis fuzzes the matcher's API from its own OpenAPI document with a valid token (admin, auditor
and reviewer for every region), over real HTTP against `wijkmatch matcher` in its own process (the
CPython 3.11.7 AST rule: tests/integration/review/serve.py) and the real broker and PostgreSQL: no
request may produce a 5xx, and every 2xx answer must match the documented response schema. The process
also shows where its metrics are: not on the API port, on the internal health port."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
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

from services.matcher.adapters.consumer import TOPICS
from services.platform.auth import mint_dev_token
from tests.support.kafka_support import start_group_at_end
from tests.support.matcher_support import MatcherProcess, matcher_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STAFF = {"Authorization": f"Bearer {mint_dev_token('fuzz-staff', ['admin', 'auditor', 'reviewer'], ['*'])}"}
EXAMPLES_PER_OPERATION = 25


@pytest.fixture(scope="module")
def matcher_server(
    kafka_bootstrap: str, migrated_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MatcherProcess]:
    log = Path(tmp_path_factory.mktemp("matcher-fuzz")) / "matcher.log"
    group = f"matcher-fuzz-{uuid.uuid4().hex[:8]}"
    asyncio.run(start_group_at_end(kafka_bootstrap, group, TOPICS))  # no replay of earlier tests' events
    env = matcher_env(migrated_database_url, kafka_bootstrap, group, "fuzz")
    env["WIJKMATCH_MATCHER_ROUND_REQUESTS_BURST"] = "1000"  # the fuzzer would otherwise mostly see 429s
    matcher = MatcherProcess(log, **env).start()
    try:
        asyncio.run(matcher.ready(timeout=90))
        yield matcher
    finally:
        matcher.stop()


def test_metrics_are_on_the_health_port_and_the_document_needs_a_token(
    matcher_server: MatcherProcess,
) -> None:
    api = matcher_server.url
    assert httpx.get(f"{api}/metrics").status_code == 404
    assert httpx.get(f"{api}/healthz").status_code == 200  # the probes need no credentials
    metrics = httpx.get(f"http://127.0.0.1:{matcher_server.metrics_port}/metrics")
    assert metrics.status_code == 200 and "wijkmatch_matcher_" in metrics.text
    assert httpx.get(f"{api}/openapi.json").status_code == 401
    assert httpx.get(f"{api}/docs").status_code == 404
    paths = httpx.get(f"{api}/openapi.json", headers=STAFF).json()["paths"]
    assert {"/v1/rounds/{region}", "/v1/rounds/{round_id}", "/v1/regions/{region}/pool"} <= set(paths)


def test_no_request_makes_the_api_fail(matcher_server: MatcherProcess) -> None:
    base_url = matcher_server.url
    api = schemathesis.openapi.from_dict(httpx.get(f"{base_url}/openapi.json", headers=STAFF).json())
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) == 8  # six /v1 operations (the what-if included), /healthz and /readyz
    seen: dict[int, int] = {}
    started = time.monotonic()
    for operation, mode in itertools.product(operations, [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]):

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: Any) -> None:
            query = case.query or {}
            if isinstance(query.get("wait_s"), int | float) and query["wait_s"] > 0.2:
                query["wait_s"] = 0.2  # documented up to 600 s: a long wait would only slow the run
            response = case.call_and_validate(
                base_url=base_url,
                headers={**STAFF, **(case.headers or {})},
                checks=[not_a_server_error, response_schema_conformance],
                timeout=30,
            )
            seen[response.status_code] = seen.get(response.status_code, 0) + 1

        try:
            fuzz()
        except Unsatisfiable:
            assert mode == GenerationMode.NEGATIVE and not operation.path_parameters and not operation.query
    assert sum(seen.values()) >= 100 and seen.get(200, 0) > 0 and seen.get(422, 0) > 0, seen
    assert seen.get(202, 0) > 0 or seen.get(200, 0) > 0, seen
    assert not any(code >= 500 for code in seen), (seen, matcher_server.log_text()[-3000:])
    assert time.monotonic() - started < 300
