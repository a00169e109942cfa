"""Pool events in -> a round -> proposals out (real broker, real PostgreSQL, matcher in-process)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from devstack.generate import generate_problem
from schemas.events import DATA_MODELS, GROUPS, CloudEvent
from services.matcher.pool.problem import sha256_text
from services.matcher.pool.tables import proposals, rounds
from services.matcher.rounds.context import round_context
from services.matcher.rounds.replay import replay_round
from services.matcher.solver import solve_problem
from tests.support.checker import check_result
from tests.support.matcher_support import TopicWatcher, pool_events_for, produce_pool, wait_until

pytestmark = pytest.mark.integration


def _assert_valid_event(event: dict[str, Any]) -> None:
    envelope = CloudEvent.model_validate(event)
    DATA_MODELS[envelope.type].model_validate(envelope.data)


async def _rounds(service: Any, region: str) -> list[dict[str, Any]]:
    async with service.sessions() as session:
        rows = (
            (
                await session.execute(
                    select(rounds).where(rounds.c.region == region).order_by(rounds.c.started_at)
                )
            )
            .mappings()
            .all()
        )
    return [dict(r) for r in rows]


async def test_pool_events_become_proposals_that_keep_every_rule_and_equal_the_optimum(
    matcher: Any, kafka_bootstrap: str, region: str
) -> None:
    source = generate_problem(40, 25, seed=7)
    async with TopicWatcher(kafka_bootstrap, regions={region}) as watcher:
        await produce_pool(kafka_bootstrap, region, pool_events_for(source, region))
        completed = await wait_until(
            lambda: watcher.of_type("round.completed", region), timeout=90, what="round.completed"
        )
        recorded = await wait_until(
            lambda: _completed(matcher, region), timeout=30, what="the recorded completed round"
        )
        problem = json.loads(recorded["problem"])
        result = recorded["result"]
        assert recorded["problem_sha256"] == sha256_text(recorded["problem"])
        assert completed[0]["data"]["problem_sha256"] == recorded["problem_sha256"]
        assert completed[0]["data"]["duration_seconds"] >= completed[0]["data"]["solve_seconds"] > 0

        # The round saw exactly what was sent (all open, all vacant, same reference data).
        assert sorted(c["id"] for c in problem["cases"]) == sorted(c["id"] for c in source["cases"])
        assert sorted(u["id"] for u in problem["units"]) == sorted(u["id"] for u in source["units"])
        assert problem["care_capacity"] == sorted(
            source["care_capacity"], key=lambda e: (e["area"], e["care_type"])
        )

        # Feasible by the independent checker, and optimal: re-solving gives the same P and F.
        assert check_result(problem, result) == []
        fresh = solve_problem(problem, time_limit_s=20, workers=1, seed=0)
        assert fresh["status"] == "OPTIMAL"
        assert result["objective"]["priority"] == fresh["objective"]["priority"]
        assert result["objective"]["fit"] == fresh["objective"]["fit"]

        # One match.proposed per new assignment, all valid events, no personal data fields.
        expected = {(a["case"], a["unit"]) for a in result["assignments"] if not a["pinned"]}
        await wait_until(
            lambda: len(watcher.of_type("match.proposed", region)) >= len(expected),
            timeout=30,
            what="proposals",
        )
        proposed = watcher.of_type("match.proposed", region)
        assert {(e["data"]["case"], e["data"]["unit"]) for e in proposed} == expected
        assert len(proposed) == len(expected)
        for event in [*proposed, *completed]:
            _assert_valid_event(event)
            assert event["data"]["region"] == region
        assert all(e["data"]["round_id"] == recorded["id"] for e in proposed)
        # The context (issue 9): every proposal and the round carry it, as computed over the recorded problem.
        context = round_context(problem, result)
        for e in proposed:
            d = e["data"]
            assert d["eligible_units"] >= 1 and d["rank"] >= 1 and d["group"] in GROUPS
            assert {k: d[k] for k in context.for_pair(d["case"], d["unit"])} == context.for_pair(
                d["case"], d["unit"]
            )
        unplaced = completed[0]["data"]["unplaced"]
        assert [(u["case"], u["reason"]) for u in unplaced] == [
            (u["case"], u["reason"]) for u in context.unplaced
        ]
        assert len(unplaced) == sum(completed[0]["data"]["unplaced_by_reason"].values())

        async with matcher.sessions() as session:
            stored = (
                (await session.execute(select(proposals).where(proposals.c.region == region)))
                .mappings()
                .all()
            )
        assert {(p["case_id"], p["unit_id"]) for p in stored} == expected
        assert {p["status"] for p in stored} == {"pending"}

        # Replay of the recorded round is identical.
        outcome = replay_round(recorded)
        assert outcome.identical, outcome.differences()
        assert outcome.reproducible_by == "deterministic"


async def _completed(service: Any, region: str) -> dict[str, Any] | None:
    for row in await _rounds(service, region):
        if row["status"] == "completed":
            return row
    return None
