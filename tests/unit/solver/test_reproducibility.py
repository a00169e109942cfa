"""Same problem and settings, same pairs: when both stages are proven optimal, and in deterministic mode."""

from __future__ import annotations

import multiprocessing
import time

import pytest

from services.matcher.solver import engine as engine_module
from services.matcher.solver import mip as mip_module
from services.matcher.solver import solve_problem
from tests.support.builders import case, problem, unit
from tests.support.checker import check_result
from tests.unit.solver._instances import region_problem


def symmetric_problem() -> dict:
    """Many equally good solutions: identical households and homes, a mix rule and a care entry."""
    cases = [case(f"c{i}", priority=100, care_needs=["ggz"] if i % 3 == 0 else []) for i in range(12)]
    cases += [case(f"r{i}", group="regular", priority=100) for i in range(6)]
    units = [unit(f"u{j}", nbh="BU01" if j % 2 else "BU02") for j in range(10)]
    return problem(
        cases,
        units,
        neighbourhoods=[
            {"code": "BU01", "municipality": "GM01", "households": 20, "group_counts": {"homeless": 2}}
        ],
        care_capacity=[{"area": "GM01", "care_type": "ggz", "slots": 2}],
        policy={"mix_rules": [{"scope": "neighbourhood", "groups": ["homeless"], "max_share": 0.25}]},
    )


def pair_set(result: dict) -> set[tuple[str, str]]:
    return {(a["case"], a["unit"]) for a in result["assignments"]}


def test_proven_optimal_runs_return_identical_pairs_whatever_workers_and_seed() -> None:
    p = symmetric_problem()
    results = [solve_problem(p, workers=w, seed=s) for w, s in [(1, 0), (2, 0), (2, 7), (1, 123), (2, 99)]]
    assert all(r["status"] == "OPTIMAL" for r in results)
    assert all(check_result(p, r) == [] for r in results)
    assert len({frozenset(pair_set(r)) for r in results}) == 1


def test_deterministic_mode_repeats_exactly_on_the_exact_model() -> None:
    p = region_problem(60, 25, 3)
    first = solve_problem(p, workers=2, deterministic=True, time_limit_s=2)
    second = solve_problem(p, workers=2, deterministic=True, time_limit_s=2)
    assert first["stats"]["engine"] == "cp_sat"
    assert pair_set(first) == pair_set(second)
    assert first["objective"] == second["objective"]


def test_deterministic_mode_repeats_exactly_on_the_large_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_module, "EXACT_MODEL_MAX_PAIRS", 100)
    monkeypatch.setattr(engine_module, "PROOF_MAX_PAIRS", 0)  # the large path alone (the proof: below)
    p = region_problem(150, 60, 5)
    first = solve_problem(p, workers=2, deterministic=True, time_limit_s=3)
    second = solve_problem(p, workers=2, deterministic=True, time_limit_s=3)
    assert first["stats"]["engine"] == "lp_guided"
    assert check_result(p, first) == []
    assert pair_set(first) == pair_set(second)


def test_highs_and_cp_sat_routes_agree_on_the_pairs_when_both_prove(monkeypatch: pytest.MonkeyPatch) -> None:
    p = region_problem(60, 25, 7)
    via_highs = solve_problem(p, workers=2, time_limit_s=20)
    monkeypatch.setattr(mip_module, "solve_stage2_mip", lambda *args, **kwargs: (None, False))
    via_cp_sat = solve_problem(p, workers=2, time_limit_s=20)
    assert via_highs["status"] == via_cp_sat["status"] == "OPTIMAL"
    assert "notes" not in via_highs["stats"]  # HiGHS proved the canonical pick
    assert pair_set(via_highs) == pair_set(via_cp_sat)


def _busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def test_deterministic_proof_attempt_repeats_exactly_under_competing_load(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 12 item 1: deterministic mode runs the proof after the large path (HiGHS under node limits from
    the size schedule, never the clock); one run alone, one beside two busy processes: the same result."""
    monkeypatch.setattr(engine_module, "EXACT_MODEL_MAX_PAIRS", 100)
    p = region_problem(150, 60, 5)
    calls: list[dict] = []
    real = mip_module.solve_stage2_mip

    def spy(*args: object, **kwargs: object) -> tuple:
        calls.append(kwargs)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(mip_module, "solve_stage2_mip", spy)
    quiet = solve_problem(p, workers=2, deterministic=True, time_limit_s=3)
    proof_calls = [c for c in calls if c.get("node_limit") is not None and c.get("start") is not None]
    assert proof_calls, "the proof attempt (HiGHS stage 2 from the large path's answer) did not run"
    ctx = multiprocessing.get_context("spawn")
    load = [ctx.Process(target=_busy, args=(60.0,)) for _ in range(2)]
    for proc in load:
        proc.start()
    try:
        loaded = solve_problem(p, workers=2, deterministic=True, time_limit_s=3)
    finally:
        for proc in load:
            proc.terminate()
            proc.join()
    assert quiet["stats"]["engine"] == "lp_guided+cp_sat"  # the proof's answer was taken
    assert check_result(p, quiet) == []
    assert pair_set(quiet) == pair_set(loaded)
    assert quiet["objective"] == loaded["objective"]
    assert quiet["status"] == loaded["status"] == "OPTIMAL"
