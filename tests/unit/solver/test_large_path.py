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


def test_the_wider_restricted_mip_lets_units_change_hands(monkeypatch: pytest.MonkeyPatch) -> None:
    # With one pair per case in the first restricted MIP the gap stays open; the wider neighbourhood
    # (each unit's best pairs by reduced cost) reaches the exact optimum, its absence does not.
    p = region_problem(150, 60, 6)
    exact = solve_problem(p, workers=2, time_limit_s=20)
    assert exact["status"] == "OPTIMAL"
    monkeypatch.setattr(engine_module, "EXACT_MODEL_MAX_PAIRS", 10)
    monkeypatch.setattr(engine_module, "PROOF_MAX_PAIRS", 10)
    monkeypatch.setattr(engine_module, "MIP_PAIRS_PER_CASE", 1)
    wide = solve_problem(p, workers=2, time_limit_s=10)
    assert any(n.startswith("wider restricted MIP") for n in wide["stats"]["notes"])
    assert check_result(p, wide) == []
    assert wide["objective"]["priority"] == exact["objective"]["priority"]
    monkeypatch.setattr(engine_module, "WIDE_PAIRS_PER_CASE", 0)
    monkeypatch.setattr(engine_module, "WIDE_PAIRS_PER_UNIT", 0)
    narrow = solve_problem(p, workers=2, time_limit_s=10)
    assert check_result(p, narrow) == []
    assert narrow["objective"]["priority"] < exact["objective"]["priority"]
