"""External events through intake into the matcher, as real processes: `wijkmatch demo-feed` publishes a
synthetic region on the external topics, intake validates and emits pool events, the matcher proposes."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from devstack.generate import generate_problem
from services.intake.settings import IntakeSettings
from services.matcher.solver import solve_problem
from services.platform.db import create_engine
from tests.integration.intake.conftest import IntakeProcess
from tests.support.checker import check_result
from tests.support.matcher_support import MatcherProcess, matcher_env, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]


async def test_demo_feed_through_intake_yields_optimal_rule_abiding_proposals(
    kafka_bootstrap: str, migrated_database_url: str, tmp_path: Path
) -> None:
    region = f"feed-{uuid.uuid4().hex[:8]}"
    cases_n, units_n, seed = 40, 25, 4
    intake = IntakeProcess(
        IntakeSettings(
            database_url=migrated_database_url,
            kafka_bootstrap_servers=kafka_bootstrap,
            group_id=f"intake-feed-{uuid.uuid4().hex[:6]}",
        ),
        tmp_path / "intake.log",
    ).start()
    matcher = MatcherProcess(
        tmp_path / "matcher.log",
        **matcher_env(migrated_database_url, kafka_bootstrap, f"matcher-feed-{uuid.uuid4().hex[:6]}", "feed"),
    ).start()
    try:
        await matcher.ready(timeout=90)
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "DATABASE_URL": migrated_database_url,
            "WIJKMATCH_MATCHER_URL": matcher.url,
            "COLUMNS": "200",
        }
        env.pop("WIJKMATCH_ORGANISATIONS", None)  # the demo registry, as `make demo` uses it
        feed = await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable,
                "-m",
                "services.cli",
                "demo-feed",
                "--region",
                region,
                "--cases",
                str(cases_n),
                "--units",
                str(units_n),
                "--seed",
                str(seed),
                "--timeout",
                "150",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert feed.returncode == 0, feed.stdout[-3000:] + feed.stderr[-3000:] + intake.log_text()[-2000:]
        assert f"round {region}-" in feed.stdout
        assert f"/v1/regions/{region}/proposals" in feed.stdout

        source = generate_problem(cases_n, units_n, seed=seed)
        expected_care = sorted(source["care_capacity"], key=lambda e: (e["area"], e["care_type"]))
        engine = create_engine(migrated_database_url)
        try:

            async def snapshot() -> tuple[list, list]:
                # One consistent view of the rounds and proposals (a round may commit meanwhile).
                async with engine.connect() as conn:
                    conn = await conn.execution_options(isolation_level="REPEATABLE READ")
                    async with conn.begin():
                        rounds = (
                            (
                                await conn.execute(
                                    text(
                                        "SELECT * FROM matcher.rounds WHERE region = :r "
                                        "AND status = 'completed' "
                                        "ORDER BY started_at"
                                    ),
                                    {"r": region},
                                )
                            )
                            .mappings()
                            .all()
                        )
                        running = (
                            await conn.execute(
                                text(
                                    "SELECT count(*) FROM matcher.rounds "
                                    "WHERE region = :r AND status = 'running'"
                                ),
                                {"r": region},
                            )
                        ).scalar_one()
                        stored = (
                            await conn.execute(
                                text("SELECT case_id, unit_id FROM matcher.proposals WHERE region = :r"),
                                {"r": region},
                            )
                        ).all()
                return (list(rounds), list(stored)) if running == 0 else ([], [])

            all_cases = {c["id"] for c in source["cases"]}

            async def settled() -> tuple[list, list] | None:
                # The external topics are consumed independently (no cross-topic order), so an early round
                # may run before the care capacity or some cases arrived (seen on a loaded CI machine: a
                # round with all care capacity and no case yet); wait until the rounds saw all of both.
                rounds, stored = await snapshot()
                if not rounds or json.loads(rounds[-1]["problem"])["care_capacity"] != expected_care:
                    return None
                if {c["id"] for r in rounds for c in json.loads(r["problem"])["cases"]} != all_cases:
                    return None
                return rounds, stored

            rounds, stored = await wait_until(settled, timeout=120, what="a round that saw the whole feed")
        finally:
            await engine.dispose()

        last = rounds[-1]
        problem = json.loads(last["problem"])
        # Everything that went in through intake reached the matcher's pool (open or already proposed)
        # and the last round saw all care capacity: that is what the wait above checks (it fails loudly
        # after 120 s otherwise).
        for row in rounds:
            assert check_result(json.loads(row["problem"]), row["result"]) == []
        fresh = solve_problem(problem, time_limit_s=30, workers=1)
        assert fresh["status"] == "OPTIMAL"
        assert last["result"]["objective"]["priority"] == fresh["objective"]["priority"]
        assert last["result"]["objective"]["fit"] == fresh["objective"]["fit"]
        proposed = {
            (a["case"], a["unit"]) for r in rounds for a in r["result"]["assignments"] if not a["pinned"]
        }
        assert {(c, u) for c, u in stored} == proposed
        assert "Demo Household" not in (tmp_path / "matcher.log").read_text()
    finally:
        matcher.stop()
        intake.stop()
