"""When rounds start: maximum delay under steady traffic, on demand over HTTP; health endpoints."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from devstack.generate import generate_problem
from services.matcher.entrypoints.http import create_api
from services.matcher.pool.tables import rounds
from services.matcher.settings import MatcherSettings
from services.platform.auth import mint_dev_token
from tests.integration.matcher.conftest import running_matcher
from tests.support.matcher_support import pool_events_for, produce_pool, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
async def slow_debounce_matcher(matcher_settings: MatcherSettings) -> Any:
    async with running_matcher(matcher_settings, debounce_s=30.0, max_delay_s=2.0) as service:
        yield service


async def _completed(service: Any, region: str) -> list[Any]:
    async with service.sessions() as session:
        return list(
            (
                await session.execute(
                    select(rounds.c.id, rounds.c.started_at, rounds.c.trigger).where(
                        rounds.c.region == region, rounds.c.status == "completed"
                    )
                )
            ).all()
        )


async def test_steady_traffic_cannot_starve_a_region_past_the_maximum_delay(
    slow_debounce_matcher: Any, kafka_bootstrap: str, region: str
) -> None:
    events = pool_events_for(generate_problem(40, 30, seed=9), region)
    reference = [e for e in events if e["type"].split(".")[3] not in ("case", "unit")]
    trickle = [e for e in events if e["type"].split(".")[3] in ("case", "unit")]
    await produce_pool(kafka_bootstrap, region, reference)
    started = time.monotonic()
    first_round_at = None
    # One event every 0.25 s for up to 15 s: never quiet for the 30 s debounce window.
    for event in trickle[:60]:
        await produce_pool(kafka_bootstrap, region, [event])
        if first_round_at is None and await _completed(slow_debounce_matcher, region):
            first_round_at = time.monotonic() - started
            break
        await asyncio.sleep(0.25)
    assert first_round_at is not None, "no round while the pool kept changing"
    assert first_round_at < 15.0


async def test_http_round_request_runs_a_round_and_lists_its_proposals(
    matcher: Any, kafka_bootstrap: str, region: str
) -> None:
    await produce_pool(kafka_bootstrap, region, pool_events_for(generate_problem(20, 10, seed=2), region))
    await wait_until(lambda: _completed(matcher, region), timeout=60, what="the first round")
    api = create_api(matcher)
    admin = mint_dev_token("test-admin", ["admin", "auditor"], [region])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api),
        base_url="http://matcher",
        headers={"Authorization": f"Bearer {admin}"},
    ) as client:
        answer = await client.post(f"/v1/rounds/{region}", params={"wait_s": 60})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["round"]["trigger"] == "requested"
        assert body["round"]["status"] == "completed"
        assert len(body["round"]["problem_sha256"]) == 64
        round_id = body["round"]["round_id"]

        record = (await client.get(f"/v1/rounds/{round_id}", params={"full": "true"})).json()
        assert record["result"]["status"] in ("OPTIMAL", "FEASIBLE")
        assert record["parameters"]["deterministic"] is True

        proposals = (await client.get(f"/v1/regions/{region}/proposals")).json()["proposals"]
        assert proposals and all(p["status"] == "pending" for p in proposals)
        pool = (await client.get(f"/v1/regions/{region}/pool")).json()
        assert pool["cases"].get("proposed", 0) == len(proposals)

        assert (await client.post("/v1/rounds/Not_A_Region")).status_code == 422
        assert (await client.get(f"/v1/rounds/{uuid.uuid4()}")).status_code == 404

        live = await client.get("/healthz")
        ready = await client.get("/readyz")
        assert live.status_code == 200 and live.json()["status"] == "ok"
        assert ready.status_code == 200 and ready.json()["database"] == "ok"
        assert (await client.get("/metrics")).status_code == 404  # the internal health port serves them
        from prometheus_client import REGISTRY, generate_latest

        metrics = generate_latest(REGISTRY).decode()
        assert f'wijkmatch_matcher_rounds_total{{region="{region}",status="OPTIMAL"}}' in metrics


async def test_liveness_fails_when_the_consumer_stops_making_progress_with_work_pending(matcher: Any) -> None:
    ok, _ = await matcher.liveness()
    assert ok
    probe = matcher.consumer_probe
    saved = probe._last
    try:
        probe._last = time.monotonic() - 3600  # no progress for an hour ...
        matcher.consumer.in_flight = True  # ... while a batch is stuck in the database
        ok, details = await matcher.liveness()
        assert not ok and details["consumer"]["ok"] is False
    finally:
        probe._last = saved
        matcher.consumer.in_flight = False


@pytest.fixture
async def long_interval_matcher(matcher_settings: MatcherSettings) -> Any:
    async with running_matcher(matcher_settings, debounce_s=1.0, scheduler_interval_s=10.0) as service:
        yield service


async def test_a_round_starts_when_the_debounce_window_ends_not_at_the_next_scheduler_interval(
    long_interval_matcher: Any, kafka_bootstrap: str, region: str
) -> None:
    """Issue 12 item 3: the scheduler sleeps until the next region is due (at most its interval), so with a
    10 s interval and a 1 s debounce the round starts about 1 s after the last change, not up to 10 s."""
    from services.matcher.pool.tables import region_state

    await asyncio.sleep(0.5)  # the scheduler's first tick is behind it: it now sleeps up to 10 s
    await produce_pool(kafka_bootstrap, region, pool_events_for(generate_problem(20, 10, seed=4), region))
    done = await wait_until(lambda: _completed(long_interval_matcher, region), timeout=60, what="a round")
    async with long_interval_matcher.sessions() as session:
        last_change = (
            await session.execute(
                select(region_state.c.last_change_at).where(region_state.c.region == region)
            )
        ).scalar_one()
    waited = (done[0].started_at - last_change).total_seconds()
    assert 0.9 <= waited < 3.0, waited
