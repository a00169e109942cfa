"""The huge route rounds a column-generation round stopped at its limit too, not only the last finished one
(issue 15: at 3 M pairs the round cut short by the time limit is often the best point the LP reaches).

`_lp_by_columns` handing the stopped round back is tested in test_column_lp.py; this test checks that the
engine uses it: the stopped round's point goes through repair, and the result is at least as good as its
rounding."""

from __future__ import annotations

import numpy as np
import pytest

from schemas.problem import validate_problem
from services.matcher.solver import solve_problem
from services.matcher.solver.compile import compile_problem
from tests.support.checker import check_result
from tests.unit.solver._instances import few_first_columns, force_huge_route, region_problem


def test_the_engine_rounds_the_round_stopped_at_its_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    from services.matcher.solver import engine as engine_module
    from services.matcher.solver.repair import Feasibility

    p = region_problem(80, 30, 3)
    force_huge_route(monkeypatch)
    few_first_columns(monkeypatch)

    handed: list = []  # what _lp_by_columns gave the engine as the stopped round
    real_columns = engine_module._lp_by_columns

    def columns_spy(*args, **kwargs):
        out = real_columns(*args, **kwargs)
        handed.append((out[0], out[2]))
        return out

    repaired: list[np.ndarray] = []  # every point the engine repaired
    real_repair, real_greedy = Feasibility.repair, Feasibility.greedy

    def repair_spy(self: Feasibility, chosen: np.ndarray) -> np.ndarray:
        repaired.append(np.array(chosen))
        return real_repair(self, chosen)

    monkeypatch.setattr(engine_module, "_lp_by_columns", columns_spy)
    monkeypatch.setattr(Feasibility, "repair", repair_spy)

    # Deterministic mode: an iteration budget (per second of a 5 s budget) that ends inside a later round.
    for per_second in range(20, 201, 4):
        monkeypatch.setattr(engine_module, "HIGHS_LP_ITERATIONS_PER_SECOND", per_second)
        handed.clear()
        repaired.clear()
        result = solve_problem(p, workers=2, time_limit_s=5, deterministic=True)
        if handed and handed[0][1] is not None and handed[0][0] is not None:
            best, stopped = handed[0]
            if not np.array_equal(best.x > 0.5, stopped.x > 0.5):  # two different points to round
                break
    else:
        pytest.fail("no iteration budget ended inside a later column-generation round")

    assert not stopped.optimal
    support = np.nonzero(stopped.x > 0.5)[0]
    assert any(np.array_equal(r, support) for r in repaired), "the stopped round's point was never rounded"
    assert check_result(p, result) == []
    # The result is at least the stopped round's rounding (repair, then greedy fill), as the engine counts P.
    comp = compile_problem(validate_problem(p)[0])
    feas = Feasibility(comp)
    mine = real_greedy(feas, real_repair(feas, support))
    assert feas.is_feasible(mine)
    assert result["objective"]["priority"] >= engine_module.constant_p(comp) + feas.model_p(mine)
