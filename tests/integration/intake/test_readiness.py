"""Intake reports ready only once its consumer has joined the group (issue 12, item 2).

A group join takes seconds (the bundled broker waits about half the session timeout; real Kafka delays a new
group's first rebalance by 3 s). Before, /readyz said ok while the join was still under way, and whoever
trusted it (`wijkmatch up`, Kubernetes, benchmarks) saw its first event wait ~3.5 s for the join. Now the
first ready answer comes when the partitions are held, against the real broker and PostgreSQL."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from devstack import samples
from schemas.topics import POOL
from services.intake.app import create_app
from services.intake.bootstrap import build_runtime
from services.intake.settings import IntakeSettings
from tests.integration.intake.conftest import produce, read_events

pytestmark = pytest.mark.integration


async def test_ready_only_once_the_consumer_holds_its_partitions(
    intake_settings: IntakeSettings, region: str
):
    runtime = build_runtime(intake_settings)
    app = create_app(intake_settings, runtime, configure_logs=False)
    answers: list[tuple[int, dict]] = []
    async with app.start_lifespan_context():
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://intake"
        ) as client:
            deadline = asyncio.get_running_loop().time() + 60
            while True:
                response = await client.get("/readyz")
                answers.append((response.status_code, response.json()["checks"]))
                if response.status_code == 200:
                    held = runtime.membership.partitions
                    break
                assert asyncio.get_running_loop().time() < deadline, answers[-1]
                await asyncio.sleep(0.05)
        # The one member of its group holds every partition of the four external topics when it says ready.
        assert held and {tp.topic for tp in held} == {
            "wijkmatch.vacancies.v1",
            "wijkmatch.cases.v1",
            "wijkmatch.care-capacity.v1",
            "wijkmatch.reference.v1",
        }
        # The join was still under way right after start: readiness said so by name, not "ok".
        assert answers[0][0] == 503 and answers[0][1]["consumer_group"] != "ok", answers[0]
        assert answers[-1][1]["consumer_group"] == "ok"

        vacancy = samples.event("vacancy.published", samples.unit(region, "unit-ready-1"))
        await produce(intake_settings.kafka_bootstrap_servers, [vacancy])
        deadline = asyncio.get_running_loop().time() + 60
        while not (pool := await read_events(intake_settings.kafka_bootstrap_servers, POOL, region)):
            assert asyncio.get_running_loop().time() < deadline, "no pool event"
            await asyncio.sleep(0.1)
        assert pool[0]["data"]["key"] == "unit-ready-1"
