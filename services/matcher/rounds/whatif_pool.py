"""Policy what-ifs (POST /v1/regions/{region}/whatif) solved in their own worker process.

Like a round's solve (rounds/worker.py), a what-if never runs the solver in the API's process: its Python
model building would compete with consuming, heartbeats and health checks for the GIL, and a solve that
runs long could not be stopped. The what-if process runs at a lower CPU priority than the round solvers
(`whatif_nice`), so rounds go first, and a wall-clock deadline (`whatif_deadline_s`) kills it — the
next what-if starts a fresh process.

Pins the solver reports invalid (a unit taken since) are held out of both sides, as a round does
(`runner.drop_pins`), so one stale pin does not make every what-if of the region fail until a round runs.
"""

from __future__ import annotations

import asyncio
from typing import Any

from services.matcher.rounds.worker import SolverPool


class WhatIfTimeout(Exception):
    """The what-if ran past its wall-clock deadline and was stopped."""


def compare_job(problem: dict[str, Any], changes: list[str], time_limit_s: float) -> dict[str, Any]:
    """Runs inside the what-if process: the comparison of the pool as it is and with `changes`.
    ValueError (an unknown or refused change, an invalid problem) reaches the caller as it is."""
    import copy

    from services.matcher.pool import whatif
    from services.matcher.rounds.runner import drop_pins, invalid_pin_indices
    from services.matcher.solver import solve_problem

    base = solve_problem(copy.deepcopy(problem), time_limit_s=time_limit_s, workers=1, deterministic=True)
    dropped = 0
    if base["status"] == "INVALID_INPUT":
        bad = invalid_pin_indices(base)
        if bad:
            problem = drop_pins(problem, bad)
            dropped = len(bad)
            base = None  # solved again below, without the stale pins
    changed = whatif.apply_changes(problem, changes)
    diff = whatif.compare(problem, changed, time_limit_s, base=base)
    return {**diff, "pins_held_out": dropped}


class WhatIfPool:
    """One spawn-based process for what-ifs (a `SolverPool` of one); a what-if past its deadline kills it
    and the next one starts a fresh process."""

    def __init__(self, nice: int) -> None:
        self._pool = SolverPool(1, nice)

    async def compare(
        self, problem: dict[str, Any], changes: list[str], time_limit_s: float, deadline_s: float
    ) -> dict[str, Any]:
        try:
            return await asyncio.wait_for(
                self._pool.run(compare_job, problem, changes, time_limit_s), timeout=deadline_s
            )
        except TimeoutError:
            self._pool.abandon()
            raise WhatIfTimeout(f"the what-if took longer than {deadline_s:g} s and was stopped") from None

    def close(self) -> None:
        """At shutdown: a what-if still running is of no use to anyone."""
        self._pool.abandon()
