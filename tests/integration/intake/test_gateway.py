"""HTTP gateway against the real broker: 202 once the broker has it, 422/401/403/429 otherwise."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from devstack import samples
from schemas.topics import CASES, VACANCIES
from services.intake.entrypoints.gateway import create_gateway
from services.intake.settings import IntakeSettings
from services.platform.admission import validate_message
from services.platform.admission.registry import load_registry
from tests.integration.intake.conftest import read_topic

pytestmark = pytest.mark.integration

DEMO_KEY = "demo-key-wijkmatch-demo"
WOONSTAD_KEY = "demo-key-woonstad"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def gateway(kafka_bootstrap: str, clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    settings = IntakeSettings(
        kafka_bootstrap_servers=kafka_bootstrap, rate_limit_per_s=2.0, rate_limit_burst=3
    )
    app: FastAPI = create_gateway(settings, clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield client


async def test_valid_event_is_accepted_only_after_the_broker_has_it(
    gateway: httpx.AsyncClient, kafka_bootstrap: str, region: str
) -> None:
    event = samples.event("case.registered", samples.case(region, "C-http"))
    response = await gateway.post("/v1/events", json=event, headers={"Authorization": f"Bearer {DEMO_KEY}"})
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["id"] == event["id"]
    assert body["topic"] == CASES
    [record] = await read_topic(kafka_bootstrap, CASES, key=region)
    assert json.loads(record.value) == event
    assert (record.partition, record.offset) == (body["partition"], body["offset"])


async def test_invalid_event_gets_422_with_the_same_field_errors_as_the_consumer(
    gateway: httpx.AsyncClient, region: str
) -> None:
    event = samples.event("vacancy.published", samples.unit(region, "U-bad"))
    event["data"].update(rent="rent-as-text-zq", max_persons=0)
    response = await gateway.post("/v1/events", json=event, headers={"X-Api-Key": DEMO_KEY})
    assert response.status_code == 422
    _, key, value = samples.message(event)
    core = validate_message(
        topic=VACANCIES, partition=0, offset=0, key=key, value=value, registry=load_registry()
    )
    assert response.json()["errors"] == core.errors
    assert {e["path"] for e in response.json()["errors"]} == {"/data/rent", "/data/max_persons"}
    assert "rent-as-text-zq" not in response.text  # never echoes the input


async def test_missing_or_unknown_key_is_401(gateway: httpx.AsyncClient, region: str) -> None:
    event = samples.event("case.registered", samples.case(region, "C-1"))
    assert (await gateway.post("/v1/events", json=event)).status_code == 401
    unknown = await gateway.post("/v1/events", json=event, headers={"Authorization": "Bearer nope"})
    assert unknown.status_code == 401
    assert unknown.headers["www-authenticate"] == "Bearer"


async def test_sending_as_another_organisations_source_is_403(gateway: httpx.AsyncClient) -> None:
    # Valid for the demo organisation, but sent with Woonstad's key.
    event = samples.event("vacancy.published", samples.unit("test-region", "U-403"))
    response = await gateway.post("/v1/events", json=event, headers={"X-Api-Key": WOONSTAD_KEY})
    assert response.status_code == 403


async def test_rate_limit_per_organisation_answers_429_with_retry_after(
    gateway: httpx.AsyncClient, clock: FakeClock
) -> None:
    bad = {"not": "an event"}  # cheap requests: the limit applies before validation
    statuses = [
        (await gateway.post("/v1/events", json=bad, headers={"X-Api-Key": DEMO_KEY})).status_code
        for _ in range(4)
    ]
    assert statuses == [422, 422, 422, 429]
    limited = await gateway.post("/v1/events", json=bad, headers={"X-Api-Key": DEMO_KEY})
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    # Another organisation has its own bucket.
    other = await gateway.post("/v1/events", json=bad, headers={"X-Api-Key": WOONSTAD_KEY})
    assert other.status_code == 422
    clock.now += 0.5  # 2 tokens/s: one token back
    again = await gateway.post("/v1/events", json=bad, headers={"X-Api-Key": DEMO_KEY})
    assert again.status_code == 422


async def test_openapi_documents_the_events_endpoint_to_an_organisation(gateway: httpx.AsyncClient) -> None:
    assert (await gateway.get("/openapi.json")).status_code == 401
    assert (await gateway.get("/openapi.json", headers={"X-Api-Key": "nope"})).status_code == 401
    spec = (await gateway.get("/openapi.json", headers={"X-Api-Key": DEMO_KEY})).json()
    assert "/v1/events" in spec["paths"]
    assert (await gateway.get("/docs")).status_code == 404  # no interactive docs on the public port
    assert (await gateway.get("/healthz")).status_code == 200
    assert (await gateway.get("/readyz")).status_code == 200
    assert (await gateway.get("/metrics")).status_code == 404  # metrics: internal port only (below)


async def test_the_gateway_process_serves_metrics_only_on_its_internal_port(
    kafka_bootstrap: str, region: str, tmp_path
) -> None:
    """`wijkmatch intake gateway` as a real process: /metrics (which names organisations) is not on the
    public port but on WIJKMATCH_INTAKE_GATEWAY_METRICS_PORT."""
    import asyncio
    import os
    import subprocess
    import sys

    from devstack.localbroker import free_port

    public, internal = free_port(), free_port()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "WIJKMATCH_INTAKE_GATEWAY_PORT": str(public),
        "WIJKMATCH_INTAKE_GATEWAY_METRICS_PORT": str(internal),
    }
    log_path = tmp_path / "gateway.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "intake", "gateway"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{public}", timeout=10) as client:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 60
            while True:
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert loop.time() < deadline, log_path.read_text()[-2000:]
                await asyncio.sleep(0.2)
            event = samples.event("case.registered", samples.case(region, "C-metrics"))
            response = await client.post("/v1/events", json=event, headers={"X-Api-Key": DEMO_KEY})
            assert response.status_code == 202, response.text
            public_metrics = await client.get("/metrics")
        assert public_metrics.status_code == 404
        assert "wijkmatch_intake_gateway_requests_total" not in public_metrics.text
        async with httpx.AsyncClient(timeout=10) as client:
            metrics = (await client.get(f"http://127.0.0.1:{internal}/metrics")).text
        assert (
            'wijkmatch_intake_gateway_requests_total{organisation="wijkmatch-demo",outcome="accepted"}'
            in (metrics)
        )
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
