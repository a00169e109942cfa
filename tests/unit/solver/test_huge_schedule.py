"""Issue 15 item 2, the huge path's schedule: the Lagrangian flow only where it can still lower the bound,
and a tighter output reserve in wall-clock mode (deterministic mode keeps its own, clock-free schedule)."""

from __future__ import annotations

import numpy as np
import pytest

from schemas.problem import validate_problem
from services.matcher.solver import engine as engine_module
from services.matcher.solver.compile import compile_problem
from services.matcher.solver.lp import LpResult
from tests.unit.solver._instances import few_first_columns, optimal_region, region_problem


def _round(objective: float, optimal: bool) -> LpResult:
    none = np.zeros(0)
    return LpResult(x=none, reduced_cost=none, bound=objective, objective=objective, seconds=0.0,
                    optimal=optimal, duals=none)  # fmt: skip


def test_the_lagrangian_is_useless_only_after_a_finished_round_close_to_the_bound() -> None:
    const, bound = 1_000, 1_000_000_000
    close = bound - const - 0.5 * engine_module.LAGRANGIAN_MIN_GAIN * bound
    far = bound - const - 2 * engine_module.LAGRANGIAN_MIN_GAIN * bound
    assert engine_module._lagrangian_useless(_round(close, True), bound, const)
    assert not engine_module._lagrangian_useless(_round(far, True), bound, const)
    # A stopped dual-simplex round's objective is no lower bound on the LP: never skipped on it.
    assert not engine_module._lagrangian_useless(_round(close, False), bound, const)
    assert not engine_module._lagrangian_useless(None, bound, const)


def test_no_lagrangian_flow_once_column_generation_has_priced_every_pair(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Huge route, deterministic mode, budget for every round: the last round prices every pair (the LP over
    # all pairs is solved), so the flow on the round before's duals cannot lower the bound and is not run;
    # the bound still holds.
    from services.matcher.solver.repair import Feasibility

    comp, model_optimum = optimal_region(80, 30, 25)
    feas = Feasibility(comp)
    match = engine_module.max_weight_matching(comp, engine_module.relaxed_weights(comp))
    start = feas.greedy(feas.repair(match))
    few_first_columns(monkeypatch)
    notes: list[str] = []
    best, bound, stopped = engine_module._lp_by_columns(
        comp, 10**12, match, True, 10**6, lambda: 1e9, notes, start=start
    )
    assert best is not None and best.optimal and stopped is None
    assert sum(n.startswith("LP round") for n in notes) >= 2, notes
    assert any("all priced" in n or n.startswith("Lagrangian bound skipped") for n in notes), notes
    assert not any(n.startswith("Lagrangian bound on") for n in notes), notes
    const = engine_module.constant_p(comp)
    assert bound >= const + model_optimum


def test_wall_clock_mode_keeps_back_less_for_the_output_on_huge_problems(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parsed, _ = validate_problem(region_problem(60, 24, 3))
    comp = compile_problem(parsed)
    eligible, people = len(comp.table.pair_case), len(comp.cases) + len(comp.units)
    below = engine_module.reserve_seconds(comp, 1.0, deterministic=False)
    assert below == engine_module.reserve_seconds(comp, 1.0, deterministic=True)  # not huge: one estimate
    monkeypatch.setattr(engine_module, "HUGE_PAIRS", 10)
    deterministic = engine_module.reserve_seconds(comp, 2.0, deterministic=True)
    assert deterministic == pytest.approx(2.0 * (0.5 + 1.5e-7 * eligible + 2e-5 * people))  # as before
    wall_clock = engine_module.reserve_seconds(comp, 2.0, deterministic=False)
    assert 0 < wall_clock < deterministic
