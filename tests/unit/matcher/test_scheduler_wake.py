"""When a committed pool change wakes the round scheduler (issue 12 item 3): only for a region it did not
know had changes. A waiting region's due moment can only move later with a change, so waking for it was
a look (a connection and a statement) per consumer batch for nothing."""

from __future__ import annotations

import asyncio
from typing import Any

from services.matcher.rounds.scheduler import Scheduler


def scheduler() -> Scheduler:
    return Scheduler(
        None,  # type: ignore[arg-type]  # no look is taken here
        None,  # type: ignore[arg-type]
        debounce_s=1.0,
        max_delay_s=1.0,
        interval_s=0.5,
        concurrency=2,
        owned_partitions=lambda: None,
    )


async def test_a_change_wakes_the_scheduler_only_for_a_region_new_to_it() -> None:
    s = scheduler()
    s._waiting = {"waiting"}
    s.tasks["running"] = asyncio.get_running_loop().create_future()  # type: ignore[assignment]
    try:
        s.wake(["waiting", "running"])
        assert not s._wake.is_set()
        s.wake(["waiting", "new"])
        assert s._wake.is_set()
        s._wake.clear()
        s.wake()  # no regions named (a round ended, a request): always
        assert s._wake.is_set()
    finally:
        s.tasks.clear()


async def test_a_region_whose_round_ended_is_new_again() -> None:
    s = scheduler()
    s._waiting = {"r"}

    class Runner:
        async def run(self, region: str, **_: Any) -> None:
            return None

    s.runner = Runner()  # type: ignore[assignment]
    s.tasks["r"] = asyncio.current_task()  # type: ignore[assignment]
    await s._run("r")
    s._wake.clear()
    s.wake(["r"])  # handled by now, or due again: either way the scheduler must look
    assert s._wake.is_set()
