"""The reported bound on P is a true bound: the dual bound and the Lagrangian bound hold for any
multipliers, not only for an optimal LP's."""

from __future__ import annotations

import numpy as np
import pytest

from schemas.problem import validate_problem
from services.matcher.solver import solve_problem
from services.matcher.solver.compile import compile_problem
from services.matcher.solver.engine import constant_p
from services.matcher.solver.lp import lagrangian_bound, solve_stage1_lp, stage1_matrix
from tests.unit.solver._instances import optimal_region, region_problem


def _dual_bound(comp, y: np.ndarray) -> float:
    a, b, obj, ub = stage1_matrix(comp)
    y = np.clip(y, 0.0, None)
    return float(y @ b + np.maximum(obj - a.T @ y, 0.0) @ ub)


@pytest.mark.parametrize("seed", [11, 12])
def test_bounds_hold_for_arbitrary_multipliers(seed: int) -> None:
    comp, model_optimum = optimal_region(40, 16, seed)
    lp = solve_stage1_lp(comp, 10)
    assert lp is not None and lp.optimal
    assert lp.bound >= model_optimum - 1e-6
    assert lagrangian_bound(comp, lp.duals) >= model_optimum - 1e-6
    rng = np.random.default_rng(seed)
    for _ in range(20):
        y = lp.duals * rng.uniform(0, 2, len(lp.duals)) + rng.exponential(1000, len(lp.duals)) * (
            rng.random(len(lp.duals)) < 0.3
        )
        assert _dual_bound(comp, y) >= model_optimum - 1e-6
        assert lagrangian_bound(comp, y) >= model_optimum - 1e-6


def test_lp_over_part_of_the_pairs_still_bounds_all_of_them() -> None:
    p = region_problem(40, 16, 13)
    best = solve_problem(p, workers=2, time_limit_s=20)
    parsed, _ = validate_problem(p)
    comp = compile_problem(parsed)
    model_optimum = best["objective"]["priority"] - constant_p(comp)
    part = np.zeros(comp.n_pairs, dtype=bool)
    part[::3] = True
    lp = solve_stage1_lp(comp, 10, part)
    assert lp is not None
    assert lp.bound >= model_optimum - 1e-6
    assert lagrangian_bound(comp, lp.duals) >= model_optimum - 1e-6
