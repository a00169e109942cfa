"""The matcher reports ready only once its consumer has joined the group (issue 12, as intake's
tests/integration/intake/test_readiness.py).

A group join takes seconds (the bundled broker waits about half the session timeout; real Kafka delays a new
group's first rebalance by 3 s). Before, /readyz said ok while the join was still under way: whoever trusted
it (`wijkmatch up`, Kubernetes, the benchmarks) saw the first pool events wait for the join, and no region
was owned, so no round could start. Against the real broker and PostgreSQL."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import select

from devstack.generate import generate_problem
from schemas.topics import DECISIONS, POOL
from services.matcher.app import create_app
from services.matcher.pool.tables import units
from services.matcher.settings import MatcherSettings
from tests.support.matcher_support import pool_events_for, produce_pool

pytestmark = pytest.mark.integration


async def test_ready_only_once_the_consumer_holds_its_partitions(
    matcher_settings: MatcherSettings, kafka_bootstrap: str, region: str
) -> None:
    app = create_app(matcher_settings)
    answers: list[tuple[int, dict]] = []
    async with app.start_lifespan_context():
        service = app.service
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://matcher"
        ) as client:
            deadline = asyncio.get_running_loop().time() + 60
            while True:
                response = await client.get("/readyz")
                answers.append((response.status_code, response.json()))
                if response.status_code == 200:
                    held = service.consumer.listener.partitions
                    break
                assert asyncio.get_running_loop().time() < deadline, answers[-1]
                await asyncio.sleep(0.05)
        # The one member of its group holds every partition of its topics when it says ready, and the
        # scheduler may start rounds for the regions of its pool partitions.
        assert held and {POOL, DECISIONS} <= {tp.topic for tp in held}
        assert service.consumer.owned_pool_partitions() == {tp.partition for tp in held if tp.topic == POOL}
        # The join was still under way right after start: readiness said so by name, not "ok".
        assert answers[0][0] == 503 and answers[0][1]["consumer_group"] == "joining", answers[0]
        assert answers[-1][1]["consumer_group"] == "ok" and answers[-1][1]["database"] == "ok"

        # Ready means consuming: a pool event sent now is applied without waiting for a join.
        problem = generate_problem(1, 1, seed=5)
        unit = next(e for e in pool_events_for(problem, region) if e["type"].endswith("pool.unit.upserted"))
        await produce_pool(kafka_bootstrap, region, [unit])
        deadline = asyncio.get_running_loop().time() + 30
        while True:
            async with service.engine.connect() as conn:
                found = (
                    (await conn.execute(select(units.c.id).where(units.c.region == region))).scalars().all()
                )
            if found:
                break
            assert asyncio.get_running_loop().time() < deadline, "the unit was not applied"
            await asyncio.sleep(0.1)
        assert found == [problem["units"][0]["id"]]
