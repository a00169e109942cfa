"""stats' timings are honest: every stage's engine calls are inside its seconds, the parts add up to no more
than solve_seconds, and HiGHS is skipped (not started) when its untimed root work cannot fit. No speed is
asserted here (speed lives in bench/)."""

from __future__ import annotations

import time

import pytest

from services.matcher.solver import engine as engine_module
from services.matcher.solver import solve_problem
from services.matcher.solver.clock import process_started
from tests.support.checker import check_result
from tests.unit.solver._instances import region_problem

PARTS = ("before_compile_seconds", "compile_seconds", "stage1_seconds", "stage2_seconds", "output_seconds")
ROUNDING = 5e-4 * (len(PARTS) + 1)  # every value is rounded to 4 decimals


def _check_timings(stats: dict) -> None:
    for name in PARTS:
        assert stats[name] >= 0, name
    assert sum(stats[name] for name in PARTS) <= stats["solve_seconds"] + ROUNDING
    engines = stats.get("highs_seconds", 0) + stats.get("cp_sat_seconds", 0) + stats.get("lp_seconds", 0)
    assert engines <= stats["stage1_seconds"] + stats["stage2_seconds"] + ROUNDING
    assert stats.get("lp_seconds", 0) <= stats["stage1_seconds"] + ROUNDING
    assert stats.get("warm_start_seconds", 0) <= stats["stage1_seconds"] + ROUNDING
    assert stats["slowdown"] >= 1
    assert stats["reserve_seconds"] > 0


def test_exact_path_timings_add_up() -> None:
    p = region_problem(60, 25, 3)
    r = solve_problem(p, workers=2, time_limit_s=10)
    assert r["stats"]["engine"] == "cp_sat"
    assert r["stats"].get("highs_seconds", 0) > 0  # HiGHS ran and is counted
    _check_timings(r["stats"])


def test_large_path_and_proof_attempt_count_every_stage(monkeypatch: pytest.MonkeyPatch) -> None:
    p = region_problem(80, 30, 1)
    monkeypatch.setattr(engine_module, "EXACT_MODEL_MAX_PAIRS", 10)
    r = solve_problem(p, workers=2, time_limit_s=10)
    assert r["stats"]["engine"] in ("lp_guided", "lp_guided+cp_sat")
    assert r["stats"]["lp_seconds"] > 0
    _check_timings(r["stats"])
    assert check_result(p, r) == []


def test_pure_assignment_timings_add_up() -> None:
    p = region_problem(40, 20, 2)
    p["care_capacity"], p["policy"]["mix_rules"], p["quotas"] = [], [], []
    for c in p["cases"]:
        c["care_needs"] = []
    r = solve_problem(p, workers=1, time_limit_s=5)
    assert r["stats"]["engine"] == "min_cost_flow"
    _check_timings(r["stats"])


def test_highs_is_skipped_when_its_root_cannot_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    p = region_problem(60, 25, 3)
    # Pretend HiGHS's untimed presolve and root LP need far more than any share of the limit.
    monkeypatch.setattr(engine_module, "HIGHS_ROOT_SECONDS_PER_PAIR", 10.0)
    monkeypatch.setattr(engine_module, "CANONICAL_ROOT_SECONDS_PER_PAIR", 10.0)
    r = solve_problem(p, workers=2, time_limit_s=5)
    assert "highs_seconds" not in r["stats"]
    assert any("HiGHS skipped" in note for note in r["stats"]["notes"])
    assert r["stats"]["cp_sat_seconds"] > 0
    assert r["status"] in ("OPTIMAL", "FEASIBLE")
    assert check_result(p, r) == []
    _check_timings(r["stats"])


def test_process_start_is_before_now() -> None:
    # The CLI's clock starts when the process did: pytest has been running (imports at least) for a while.
    assert process_started() < time.perf_counter()
