"""The matcher as real processes: SIGKILL mid-round, and two instances sharing regions by partition."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from devstack.generate import generate_problem
from services.platform.db import create_engine
from tests.conftest import TEST_PARTITIONS
from tests.support.checker import check_result
from tests.support.matcher_support import (
    MatcherProcess,
    TopicWatcher,
    matcher_env,
    pool_events_for,
    produce_pool,
    regions_on_distinct_partitions,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]


async def _rows(url: str, sql: str, **params: Any) -> list[Any]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(text(sql), params)).mappings().all())
    finally:
        await engine.dispose()


def _children(pid: int) -> list[int]:
    """The live child processes of `pid` (Linux /proc)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


async def _none_alive(pids: list[int]) -> bool:
    """True when none of `pids` runs any more (gone, or a zombie nobody has reaped yet)."""
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            continue
        if state not in ("Z", "X"):
            return False
    return True


async def test_sigkill_mid_round_redoes_the_round_once_with_no_duplicate_or_lost_proposals(
    kafka_bootstrap: str, migrated_database_url: str, tmp_path: Path
) -> None:
    region = f"kill-{uuid.uuid4().hex[:8]}"
    group = f"matcher-kill-{uuid.uuid4().hex[:6]}"
    env = matcher_env(
        migrated_database_url, kafka_bootstrap, group, "victim", WIJKMATCH_CHAOS="matcher.solve_delay_s=30"
    )
    victim = MatcherProcess(tmp_path / "victim.log", **env).start()
    survivor = None
    try:
        await victim.ready()
        async with TopicWatcher(kafka_bootstrap, regions={region}) as watcher:
            await produce_pool(
                kafka_bootstrap, region, pool_events_for(generate_problem(30, 20, seed=5), region)
            )
            await wait_until(
                lambda: _rows(
                    migrated_database_url,
                    "SELECT id FROM matcher.rounds WHERE region = :r AND status = 'running'",
                    r=region,
                ),
                timeout=60,
                what="a round in flight",
            )
            workers = _children(victim.process.pid)  # its solver workers (and multiprocessing's tracker)
            assert workers, "the matcher runs its solves in worker processes"
            victim.kill()
            assert victim.process.returncode == -9
            # The solver workers do not outlive their service (one was mid-solve, in the chaos delay).
            await wait_until(
                lambda: _none_alive(workers), timeout=15, what="the killed matcher's workers to exit"
            )

            survivor = MatcherProcess(
                tmp_path / "survivor.log",
                **matcher_env(migrated_database_url, kafka_bootstrap, group, "survivor"),
            ).start()
            await survivor.ready(timeout=90)
            done = await wait_until(
                lambda: _rows(
                    migrated_database_url,
                    "SELECT * FROM matcher.rounds WHERE region = :r AND status = 'completed'",
                    r=region,
                ),
                timeout=90,
                what="the redone round",
            )
            rounds = await _rows(
                migrated_database_url,
                "SELECT * FROM matcher.rounds WHERE region = :r ORDER BY started_at",
                r=region,
            )
            assert [(r["status"], r["instance"]) for r in rounds] == [
                ("abandoned", "victim"),
                ("completed", "survivor"),
            ]
            assert rounds[1]["trigger"] == "redo"
            completed = done[0]
            expected = {(a["case"], a["unit"]) for a in completed["result"]["assignments"] if not a["pinned"]}
            assert expected
            assert check_result(json.loads(completed["problem"]), completed["result"]) == []

            stored = await _rows(
                migrated_database_url,
                "SELECT id, case_id, unit_id FROM matcher.proposals WHERE region = :r",
                r=region,
            )
            assert {(p["case_id"], p["unit_id"]) for p in stored} == expected
            assert len(stored) == len(expected)
            await wait_until(
                lambda: len(watcher.of_type("match.proposed", region)) >= len(expected),
                timeout=30,
                what="published proposals",
            )
            published = watcher.of_type("match.proposed", region)
            assert sorted(e["data"]["proposal_id"] for e in published) == sorted(p["id"] for p in stored)
            assert len(watcher.of_type("round.completed", region)) == 1
    finally:
        victim.stop()
        if survivor is not None:
            survivor.stop()


async def test_two_instances_share_regions_by_partition_and_a_stopped_ones_regions_move(
    kafka_bootstrap: str, migrated_database_url: str, tmp_path: Path
) -> None:
    group = f"matcher-pair-{uuid.uuid4().hex[:6]}"
    regions = regions_on_distinct_partitions(TEST_PARTITIONS, f"pair-{uuid.uuid4().hex[:6]}")
    a = MatcherProcess(
        tmp_path / "a.log", **matcher_env(migrated_database_url, kafka_bootstrap, group, "a")
    ).start()
    b = MatcherProcess(
        tmp_path / "b.log", **matcher_env(migrated_database_url, kafka_bootstrap, group, "b")
    ).start()
    try:
        await a.ready(timeout=90)
        await b.ready(timeout=90)

        async def split() -> bool:
            owned_a, owned_b = await a.owned(), await b.owned()
            return bool(owned_a) and bool(owned_b) and not (owned_a & owned_b)

        await wait_until(split, timeout=60, what="both instances holding pool partitions")
        owned_a = await a.owned()
        for i, region in enumerate(regions):
            await produce_pool(
                kafka_bootstrap, region, pool_events_for(generate_problem(20, 12, seed=i), region)
            )

        async def all_done() -> bool:
            rows = await _rows(
                migrated_database_url,
                "SELECT DISTINCT region FROM matcher.rounds WHERE region = ANY(:rs) AND status = 'completed'",
                rs=regions,
            )
            return len(rows) == len(regions)

        await wait_until(all_done, timeout=120, what="a completed round in every region")
        states = {
            r["region"]: r["pool_partition"]
            for r in await _rows(
                migrated_database_url,
                "SELECT region, pool_partition FROM matcher.region_state WHERE region = ANY(:rs)",
                rs=regions,
            )
        }
        assert sorted(states.values()) == list(range(TEST_PARTITIONS))
        by_region = {}
        for region in regions:
            instances = {
                r["instance"]
                for r in await _rows(
                    migrated_database_url, "SELECT instance FROM matcher.rounds WHERE region = :r", r=region
                )
            }
            assert len(instances) == 1, (region, instances)
            by_region[region] = instances.pop()
            assert by_region[region] == ("a" if states[region] in owned_a else "b")
        assert set(by_region.values()) == {"a", "b"}

        # Stop a gracefully: its regions continue on b.
        # uvicorn re-raises the SIGTERM it handled once shutdown is complete.
        assert a.stop() in (0, -15), a.log_text()[-2000:]
        assert '"msg": "matcher stopped"' in a.log_text()
        moved = [r for r in regions if by_region[r] == "a"]
        for i, region in enumerate(moved):
            extra = generate_problem(6, 4, seed=100 + i)
            for c in extra["cases"]:
                c["id"] = "late-" + c["id"]
            for u in extra["units"]:
                u["id"] = "late-" + u["id"]
            await produce_pool(
                kafka_bootstrap,
                region,
                [e for e in pool_events_for(extra, region) if e["type"].split(".")[3] in ("case", "unit")],
            )

        async def moved_done() -> bool:
            rows = await _rows(
                migrated_database_url,
                "SELECT DISTINCT region FROM matcher.rounds "
                "WHERE region = ANY(:rs) AND status = 'completed' AND instance = 'b'",
                rs=moved,
            )
            return len(rows) == len(moved)

        await wait_until(
            moved_done, timeout=120, what="rounds of the stopped instance's regions on the other"
        )
    finally:
        a.stop()
        b.stop()
