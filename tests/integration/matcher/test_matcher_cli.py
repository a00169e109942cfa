"""`wijkmatch round REGION --local` and `wijkmatch replay ROUND_ID` against the real database and broker."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from devstack.generate import generate_problem
from services.matcher.cli import proposals_main, replay_main, round_main
from services.matcher.settings import MatcherSettings
from tests.support.matcher_support import TopicWatcher, pool_events_for, produce_pool, wait_until

pytestmark = pytest.mark.integration


async def test_round_local_then_replay_says_identical(
    matcher: Any,
    matcher_settings: MatcherSettings,
    kafka_bootstrap: str,
    region: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", matcher_settings.database_url)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    # The running matcher only applies the pool (its debounce is long); the CLI runs the round.
    matcher.scheduler.debounce_s = matcher.scheduler.max_delay_s = 3600
    await produce_pool(kafka_bootstrap, region, pool_events_for(generate_problem(25, 15, seed=8), region))
    await wait_until(lambda: _pool_ready(matcher, region), timeout=60, what="pool applied")
    async with TopicWatcher(kafka_bootstrap, regions={region}) as watcher:
        capsys.readouterr()
        assert await asyncio.to_thread(round_main, [region, "--local", "--json"]) == 0
        view = json.loads(capsys.readouterr().out)
        assert view["region"] == region and view["status"] == "completed" and view["trigger"] == "requested"
        placed = view["summary"]["placed"]
        assert placed > 0
        # --local publishes its outbox itself.
        await wait_until(
            lambda: len(watcher.of_type("match.proposed", region)) == placed, timeout=30, what="published"
        )

    assert await asyncio.to_thread(replay_main, [view["round_id"]]) == 0
    assert "identical" in capsys.readouterr().out
    assert await asyncio.to_thread(proposals_main, [region, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert len(listed) == placed and all(p["status"] == "pending" for p in listed)
    assert await asyncio.to_thread(replay_main, ["no-such-round"]) == 2


async def _pool_ready(service: Any, region: str) -> bool:
    from sqlalchemy import func, select

    from services.matcher.pool.tables import units

    async with service.sessions() as session:
        n = (await session.execute(select(func.count()).where(units.c.region == region))).scalar_one()
    return n == 15
