"""What-ifs in their own process (services/matcher/rounds/whatif_pool.py): stale pins are held out as a
round holds them out, and a what-if past its wall-clock deadline is stopped and the next one still runs."""

from __future__ import annotations

import asyncio

import pytest

from devstack.generate import generate_problem
from services.matcher.rounds.whatif_pool import WhatIfPool, WhatIfTimeout, compare_job
from services.matcher.solver import solve_problem


def _problem_with_a_stale_pin() -> tuple[dict, dict]:
    problem = generate_problem(40, 16, 3, "region")
    problem["pinned"], problem["forbidden"] = [], []
    case = max(problem["cases"], key=lambda c: c["household_size"])
    unit = min(problem["units"], key=lambda u: u["max_persons"])
    assert case["household_size"] > unit["max_persons"]  # the pin breaks the size rule: invalid
    problem["pinned"] = [{"case": case["id"], "unit": unit["id"]}]
    return problem, {"case": case["id"], "unit": unit["id"]}


def test_a_stale_pin_is_held_out_of_both_sides_instead_of_failing_the_what_if() -> None:
    problem, pin = _problem_with_a_stale_pin()
    assert solve_problem(problem, deterministic=True, workers=1)["status"] == "INVALID_INPUT"
    diff = compare_job(problem, ["policy.quota_bonus=0"], 5.0)
    assert diff["pins_held_out"] == 1
    assert diff["status"]["current"] != "INVALID_INPUT" and diff["status"]["changed"] != "INVALID_INPUT"
    # the held-out pair is in neither side (its case and unit are left out, as a round does)
    listed = {d["case"] for d in diff["households_with_a_different_outcome"]}
    assert pin["case"] not in listed


def test_an_unknown_change_is_a_value_error() -> None:
    problem = generate_problem(20, 8, 1, "region")
    with pytest.raises(ValueError, match="unknown change"):
        compare_job(problem, ["policy.nationality=1"], 5.0)


async def test_a_what_if_past_its_deadline_is_stopped_and_the_next_one_runs_in_a_fresh_process() -> None:
    big = generate_problem(1500, 600, 2, "region")
    small = generate_problem(30, 12, 2, "region")
    pool = WhatIfPool(nice=0)
    try:
        with pytest.raises(WhatIfTimeout):
            await pool.compare(big, ["policy.quota_bonus=0"], 30.0, deadline_s=0.5)
        diff = await asyncio.wait_for(pool.compare(small, ["policy.quota_bonus=0"], 5.0, deadline_s=120), 150)
        assert diff["status"]["current"] in {"OPTIMAL", "FEASIBLE"}
    finally:
        pool.close()
