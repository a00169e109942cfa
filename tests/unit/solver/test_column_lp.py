"""The persistent HiGHS column-generation LP (`lp.ColumnLp`, issue 15): columns added between solves give
the same LP as one solve over all of them, and a solve stopped early still gives a valid bound on P."""

from __future__ import annotations

import numpy as np
import pytest

from schemas.problem import validate_problem
from services.matcher.solver import solve_problem
from services.matcher.solver.compile import compile_problem
from services.matcher.solver.lp import ColumnLp, solve_stage1_lp
from tests.unit.solver._instances import few_first_columns, force_huge_route, optimal_region, region_problem


def _compiled(seed: int, n_cases: int = 60, n_units: int = 24):
    parsed, _ = validate_problem(region_problem(n_cases, n_units, seed))
    return compile_problem(parsed)


@pytest.mark.parametrize("seed", [21, 22])
def test_adding_columns_between_solves_reaches_the_lp_over_all_of_them(seed: int) -> None:
    comp = _compiled(seed)
    full = solve_stage1_lp(comp, 10)  # GLOP over every pair, in one solve
    assert full is not None and full.optimal
    model = ColumnLp(comp)
    first = np.zeros(comp.n_pairs, dtype=bool)
    first[::4] = True
    assert model.add(first) == int(first.sum())
    part = model.solve(10)
    assert part is not None and part.optimal
    assert part.objective <= full.objective + 1e-6
    assert (part.x[~first] == 0).all()  # only the model's columns carry a value
    assert model.add(first) == 0  # nothing added twice
    everything = np.ones(comp.n_pairs, dtype=bool)
    assert model.add(everything) == comp.n_pairs - int(first.sum())
    again = model.solve(10)  # from the last basis
    assert again is not None and again.optimal
    assert again.objective == pytest.approx(full.objective, rel=1e-9, abs=1e-6)
    assert again.bound == pytest.approx(full.bound, rel=1e-7, abs=1e-4)


@pytest.mark.parametrize("seed", [23, 24])
def test_a_solve_stopped_early_still_bounds_p(seed: int) -> None:
    comp, model_optimum = optimal_region(40, 16, seed)
    model = ColumnLp(comp)
    some = np.zeros(comp.n_pairs, dtype=bool)
    some[::2] = True
    model.add(some)
    stopped = model.solve(iteration_limit=3)
    assert stopped is not None and not stopped.optimal
    assert stopped.bound >= model_optimum - 1e-6
    model.add(np.ones(comp.n_pairs, dtype=bool))
    finished = model.solve(iteration_limit=100_000)
    assert finished is not None and finished.optimal
    assert model_optimum - 1e-6 <= finished.bound <= stopped.bound + 1e-6


def test_the_huge_route_in_deterministic_mode_replays_bit_identically(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The persistent HiGHS LP under an iteration budget (small enough to stop a round): the same pairs, bound
    # and notes on every run, and still a valid result with a bound above the optimum.
    from services.matcher.solver import engine as engine_module
    from tests.support.checker import check_result

    p = region_problem(80, 30, 3)
    exact = solve_problem(p, workers=2, time_limit_s=20)
    assert exact["status"] == "OPTIMAL"
    force_huge_route(monkeypatch)
    monkeypatch.setattr(engine_module, "HIGHS_LP_ITERATIONS_PER_SECOND", 10)  # 30 iterations for 5 s
    runs = [solve_problem(p, workers=2, time_limit_s=5, deterministic=True) for _ in range(2)]
    assert runs[0]["stats"]["engine"] == "lp_guided"
    assert any("stopped at its limit" in n or "iteration budget" in n for n in runs[0]["stats"]["notes"])
    assert runs[0]["assignments"] == runs[1]["assignments"]
    assert runs[0]["objective"] == runs[1]["objective"]
    rounds = [[n for n in r["stats"]["notes"] if n.startswith("LP round")] for r in runs]
    assert rounds[0] == rounds[1]  # the same rounds, columns and bounds
    assert check_result(p, runs[0]) == []
    obj = runs[0]["objective"]
    assert obj["priority"] <= exact["objective"]["priority"] <= obj["priority_bound"]


def test_column_generation_hands_back_a_round_stopped_at_its_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    # Huge route (a start given), deterministic mode: with an iteration budget that ends inside a later round,
    # that stopped round comes back beside the last finished one (the engine rounds both); with budget for
    # every round there is no stopped round.
    from services.matcher.solver import engine as engine_module
    from services.matcher.solver.repair import Feasibility

    comp = _compiled(25, 80, 30)
    feas = Feasibility(comp)
    relaxed = engine_module.relaxed_weights(comp)
    match = engine_module.max_weight_matching(comp, relaxed)
    start = feas.greedy(feas.repair(match))
    monkeypatch.setattr(
        engine_module, "HIGHS_LP_ITERATIONS_PER_SECOND", 1 / engine_module.DETERMINISTIC_HIGHS_LP_SHARE
    )
    few_first_columns(monkeypatch)

    def run(iterations: int):
        notes: list[str] = []
        return engine_module._lp_by_columns(
            comp, 10**12, match, True, iterations + 0.5, lambda: 1e9, notes, start=start
        ), notes

    (best, _, stopped), notes = run(100_000)
    assert best is not None and best.optimal and stopped is None, notes
    finished_rounds = sum(n.startswith("LP round") for n in notes)
    seen = False
    for iterations in range(1, 400):
        (best, bound, stopped), notes = run(iterations)
        if stopped is None or best is None or not best.optimal:
            continue
        seen = True
        assert not stopped.optimal and stopped is not best
        assert ((stopped.x >= 0) & (stopped.x <= 1)).all()
        assert any("stopped at its limit" in n for n in notes)
        (_, bound_again, stopped_again), _ = run(iterations)  # deterministic: the same rounds and point
        assert (
            stopped_again is not None and np.array_equal(stopped_again.x, stopped.x) and bound_again == bound
        )
        break
    assert seen, f"no budget ended inside a later round ({finished_rounds} rounds with every iteration)"
