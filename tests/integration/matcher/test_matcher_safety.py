"""One round per region at a time, graceful shutdown abandoning a long round safely, parking refusals."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from sqlalchemy import func, select

from devstack.generate import generate_problem
from services.matcher.bootstrap import MatcherService
from services.matcher.pool import repository as repo
from services.matcher.pool.tables import cases, proposals, rounds
from services.matcher.rounds.runner import RoundRunner
from services.matcher.rounds.worker import SolverPool
from services.matcher.settings import MatcherSettings
from services.matcher.solver.params import SolveParams
from services.platform import chaos
from services.platform.db import create_engine
from tests.support.matcher_support import (
    pool_events_for,
    produce_decisions,
    produce_pool,
    rejected,
    wait_until,
)

pytestmark = pytest.mark.integration


async def _rounds(engine: Any, region: str) -> list[Any]:
    async with engine.connect() as conn:
        return list(
            (
                await conn.execute(
                    select(rounds.c.id, rounds.c.status, rounds.c.trigger, rounds.c.problem)
                    .where(rounds.c.region == region)
                    .order_by(rounds.c.started_at)
                )
            ).all()
        )


class _SlowSolverPool(SolverPool):
    """A solver that takes 3 s longer: a round stays in flight long enough to be raced."""

    async def solve_round(self, problem: dict[str, Any], parameters: Any) -> Any:
        await asyncio.sleep(3.0)
        return await super().solve_round(problem, parameters)


async def test_two_runners_never_run_the_same_region_at_once(
    matcher_settings: MatcherSettings, kafka_bootstrap: str, region: str
) -> None:
    # Feed the pool through a service, then stop it: the runners below are the only ones left.
    service = MatcherService(matcher_settings.model_copy(update={"debounce_s": 600.0, "max_delay_s": 600.0}))
    await service.start()
    try:
        await produce_pool(kafka_bootstrap, region, pool_events_for(generate_problem(20, 10, seed=1), region))
        await wait_until(lambda: _pool_has_cases(service, region), timeout=60, what="pool filled")
    finally:
        await service.stop()
    engine = create_engine(matcher_settings.database_url)
    slow, fast = _SlowSolverPool(1), SolverPool(1)
    try:
        await asyncio.gather(slow.start(), fast.start())
        one = RoundRunner(engine, slow, options=SolveParams(workers=1, deterministic=True), instance="one")
        two = RoundRunner(engine, fast, options=SolveParams(workers=1, deterministic=True), instance="two")
        first = asyncio.create_task(one.run(region, force=True))
        await wait_until(lambda: region in one.current, timeout=30, what="first round in flight")
        assert await two.run(region, force=True) is None  # locked: not a second round
        report = await first
        assert report is not None and report.status == "OPTIMAL"
        assert [r.status for r in await _rounds(engine, region)] == ["completed"]
        again = await two.run(region, force=True)  # the lock is free again
        assert again is not None
    finally:
        slow.close()
        fast.close()
        await engine.dispose()


async def _pool_has_cases(service: Any, region: str) -> bool:
    async with service.sessions() as session:
        n = (await session.execute(select(func.count()).where(cases.c.region == region))).scalar_one()
    return n == 20


async def test_graceful_shutdown_abandons_a_long_round_and_the_next_instance_redoes_it(
    matcher_settings: MatcherSettings, kafka_bootstrap: str, region: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_engine(matcher_settings.database_url)
    monkeypatch.setenv(chaos.ENV_VAR, "matcher.solve_delay_s=60")  # inherited by the solver processes
    slow = MatcherService(matcher_settings.model_copy(update={"shutdown_grace_s": 1.0}))
    await slow.start()
    try:
        await produce_pool(kafka_bootstrap, region, pool_events_for(generate_problem(20, 10, seed=2), region))
        await wait_until(lambda: _status_in(engine, region, "running"), timeout=60, what="a round in flight")
    finally:
        began = asyncio.get_running_loop().time()
        await slow.stop()
        stopped_in = asyncio.get_running_loop().time() - began
    assert stopped_in < 20  # did not wait for the 60 s solve
    assert [r.status for r in await _rounds(engine, region)] == ["running"]
    async with engine.connect() as conn:
        assert (
            await conn.execute(select(func.count()).where(proposals.c.region == region))
        ).scalar_one() == 0

    monkeypatch.delenv(chaos.ENV_VAR)
    successor = MatcherService(matcher_settings)
    await successor.start()
    try:
        await wait_until(lambda: _status_in(engine, region, "completed"), timeout=60, what="the redone round")
        found = await _rounds(engine, region)
        assert [(r.status, r.trigger) for r in found] == [("abandoned", "pool_change"), ("completed", "redo")]
    finally:
        await successor.stop()
        await engine.dispose()


async def _status_in(engine: Any, region: str, status: str) -> bool:
    return any(r.status == status for r in await _rounds(engine, region))


async def test_park_case_policy_keeps_a_refused_case_out_of_later_rounds(
    matcher_settings: MatcherSettings, kafka_bootstrap: str, region: str
) -> None:
    service = MatcherService(
        matcher_settings.model_copy(update={"refusal_policy": "park_case", "park_days": 3})
    )
    await service.start()
    try:
        await produce_pool(kafka_bootstrap, region, pool_events_for(generate_problem(20, 10, seed=6), region))

        async def first_proposal() -> Any:
            async with service.sessions() as session:
                return (
                    (await session.execute(select(proposals).where(proposals.c.region == region).limit(1)))
                    .mappings()
                    .first()
                )

        row = await wait_until(first_proposal, timeout=60, what="a proposal")
        target = {"proposal_id": row["id"], "case": row["case_id"], "unit": row["unit_id"]}
        await produce_decisions(kafka_bootstrap, region, [rejected(region, target)])

        async def parked() -> Any:
            async with service.sessions() as session:
                return (
                    await session.execute(
                        select(cases.c.status, cases.c.parked_until).where(
                            cases.c.region == region, cases.c.id == target["case"]
                        )
                    )
                ).first()

        state = await wait_until(lambda: _parked_state(parked), timeout=30, what="the case parked")
        assert state.status == "open"
        async with service.sessions() as session, session.begin():
            now = (await session.execute(select(func.now()))).scalar_one()
            await repo.request_round(session, region)
        assert 2.9 < (state.parked_until - now).total_seconds() / 86400 < 3.1

        async def round_after() -> Any:
            async with service.sessions() as session:
                return (
                    await session.execute(
                        select(rounds.c.problem).where(
                            rounds.c.region == region,
                            rounds.c.started_at > now,
                            rounds.c.status == "completed",
                        )
                    )
                ).first()

        later = await wait_until(round_after, timeout=60, what="a later round")
        problem = json.loads(later.problem)
        assert target["case"] not in {c["id"] for c in problem["cases"]}
    finally:
        await service.stop()


async def _parked_state(read: Any) -> Any:
    state = await read()
    return state if state is not None and state.parked_until is not None else None


async def test_round_records_older_than_the_retention_are_purged(
    matcher: Any, kafka_bootstrap: str, region: str
) -> None:
    from sqlalchemy import update

    await produce_pool(kafka_bootstrap, region, pool_events_for(generate_problem(10, 6, seed=4), region))
    engine = create_engine(matcher.settings.database_url)
    try:
        await wait_until(lambda: _status_in(engine, region, "completed"), timeout=60, what="a round")
        async with engine.begin() as conn:
            await conn.execute(
                update(rounds)
                .where(rounds.c.region == region)
                .values(started_at=func.now() - func.make_interval(0, 0, 0, 100))
            )
            await conn.execute(
                rounds.insert().values(
                    id=f"{region}-fresh",
                    region=region,
                    status="completed",
                    trigger="requested",
                    instance="test",
                    seq_at_build=0,
                    problem="{}",
                    problem_sha256="0" * 64,
                    parameters={},
                )
            )
        matcher.scheduler.retention_s = 30 * 86400
        assert await matcher.scheduler.purge_rounds() >= 1
        assert [r.id for r in await _rounds(engine, region)] == [f"{region}-fresh"]
    finally:
        await engine.dispose()
