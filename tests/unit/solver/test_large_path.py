"""The large-problem path (LP bound, LP rounding, restricted MIP, fit polishing) on small problems forced
onto it: every result is feasible, its bound is a true bound, and it agrees with the exact path's optimum
within the reported gap."""

from __future__ import annotations

import pytest

from services.matcher.solver import engine as engine_module
from services.matcher.solver import solve_problem
from tests.support.checker import check_result
from tests.unit.solver._instances import region_problem


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_large_path_is_feasible_and_its_bound_holds(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    p = region_problem(80, 30, seed)
    exact = solve_problem(p, workers=2, time_limit_s=20)
    assert exact["status"] == "OPTIMAL"
    monkeypatch.setattr(engine_module, "EXACT_MODEL_MAX_PAIRS", 10)
    monkeypatch.setattr(engine_module, "PROOF_MAX_PAIRS", 10)
    large = solve_problem(p, workers=2, time_limit_s=5)
    assert large["stats"]["engine"] == "lp_guided"
    assert check_result(p, large) == []
    best = exact["objective"]["priority"]
    obj = large["objective"]
    assert obj["priority"] <= best <= obj["priority_bound"]
    assert obj["gap"] == pytest.approx(
        (obj["priority_bound"] - obj["priority"]) / max(1, obj["priority_bound"])
    )


def test_lagrangian_bound_from_a_partial_lp_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    p = region_problem(120, 40, 4)
    exact = solve_problem(p, workers=2, time_limit_s=20)
    assert exact["status"] == "OPTIMAL"
    monkeypatch.setattr(engine_module, "EXACT_MODEL_MAX_PAIRS", 10)
    monkeypatch.setattr(engine_module, "FULL_LP_MAX_PAIRS", 10)
    monkeypatch.setattr(engine_module, "PROOF_MAX_PAIRS", 10)
    monkeypatch.setattr(engine_module, "LP_PAIRS_PER_CASE", 1)
    monkeypatch.setattr(engine_module, "LP_PAIRS_PER_UNIT", 2)
    large = solve_problem(p, workers=2, time_limit_s=5)
    assert check_result(p, large) == []
    assert large["objective"]["priority_bound"] >= exact["objective"]["priority"]


def test_mid_sized_problems_get_a_proof_attempt_after_the_large_path(monkeypatch: pytest.MonkeyPatch) -> None:
    p = region_problem(40, 15, 6)
    monkeypatch.setattr(engine_module, "EXACT_MODEL_MAX_PAIRS", 10)
    result = solve_problem(p, workers=2, time_limit_s=10)
    assert result["stats"]["engine"] == "lp_guided+cp_sat"
    assert result["status"] == "OPTIMAL"
    assert check_result(p, result) == []
